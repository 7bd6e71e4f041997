"""The layers hold: no import circle, the worker never imports the producer, task names build no app."""

from __future__ import annotations

import subprocess
import sys

import grimp

from tests.support import ROOT


def _graph() -> grimp.ImportGraph:
    # Function-local imports count; imports under TYPE_CHECKING do not.
    return grimp.build_graph("worker", "producer", exclude_type_checking_imports=True)


def test_no_module_imports_itself_through_others():
    graph = _graph()
    circles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            # A package __init__ that only hands names on does not close a circle.
            if imported in ("worker", "producer"):
                continue
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                circles.append((module, *back))
    assert circles == []


def test_the_worker_never_imports_the_producer():
    graph = _graph()
    for module in graph.find_children("worker") | graph.find_descendants("worker"):
        assert not graph.chain_exists(importer=module, imported="producer", as_packages=True), module


def test_naming_a_task_or_queueing_a_batch_builds_no_celery_app():
    code = (
        "import sys, celery\n"
        "made = []\n"
        "init = celery.Celery.__init__\n"
        "celery.Celery.__init__ = lambda self, *a, **k: made.append(1) or init(self, *a, **k)\n"
        "import worker.tasknames, worker.batchqueue, worker.batch, worker.janitor\n"
        "import producer.client, producer.bridge\n"
        "from producer.client import Client\n"
        "assert 'worker.app' not in sys.modules and 'worker.tasks' not in sys.modules, 'app imported'\n"
        "assert not made, 'a Celery app was built'\n"
    )
    run_python(code)


def test_the_jieba_rs_pipeline_loads_nothing_it_does_not_run():
    # jieba's POS tagger and a second IDF table (jieba.analyse), and scipy (which datasketch's
    # LSH classes import, were datasketch used) each cost every process start-up time and
    # memory that jieba-rs never uses.
    code = (
        "import sys\n"
        "from worker.config import Settings\n"
        "from worker.pipeline import Analyser\n"
        "from worker.dedupe.index import MemoryIndex\n"
        "from worker import pipeline\n"
        "s = Settings.from_env({'NEWSFLOW_ENGINE': 'jieba-rs', 'NEWSFLOW_ENTITIES': 'pos'})\n"
        "a = Analyser.from_settings(s)\n"
        "a.warm()\n"
        "raw = {'id': 'a', 'text': '北韓領導人金正日在平壤會見俄羅斯外長。'}\n"
        "out = pipeline.process(raw, MemoryIndex(), a, s)\n"
        "assert out.result['keywords'], out.result\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'scipy', 'datasketch'}"
        " or m.startswith(('jieba.analyse', 'jieba.posseg'))))\n"
    )
    assert run_python(code).strip() == "[]"


def run_python(code: str) -> str:
    """What ``code`` prints, run in a fresh interpreter from the project's directory; it must exit 0."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_commands_without_redis_never_import_redis_py(tmp_path):
    article = tmp_path / "a.txt"
    article.write_text("北韓領導人金正日在平壤會見俄羅斯外長。", encoding="utf-8")
    code = (
        "import sys\n"
        "from producer.cli import main\n"
        f"assert main(['process', {str(article)!r}]) == 0\n"
        f"assert main(['segment', {str(article)!r}]) == 0\n"
        "print('redis' in sys.modules, 'producer.client' in sys.modules)\n"
    )
    printed = run_python(code).splitlines()
    assert '"status":"unique"' in printed[0]  # the result, then the segmented line, then the check
    assert printed[-1] == "False False"

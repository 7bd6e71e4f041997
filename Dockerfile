# One image for every newsflow service: worker, bridge, flower and the metrics exporter.
# docker-compose.yml builds it once (the worker service) and runs it for all four.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NEWSFLOW_LOG_FORMAT=json

WORKDIR /app
# Dependencies first, from the lock (`make lock`), each checked against its hash: the same
# versions every build, and a layer that only a lock change rebuilds.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY producer ./producer
COPY worker ./worker
# The project itself, with the locked setuptools and nothing fetched; pip check fails the build
# if the lock no longer satisfies pyproject.toml.
RUN pip install --no-deps --no-build-isolation . && pip check

# Never run as root. /data holds Flower's state across restarts.
RUN useradd --create-home --uid 10001 newsflow && mkdir /data && chown newsflow /data
USER newsflow
# Load jieba's dictionary once at build time, so its cache is in the image and workers start fast.
RUN python -c "from worker.batch import analyser; from worker.config import settings; analyser(settings()).warm()"

CMD ["newsflow", "worker", "--hostname", "celery@%h"]

"""The text stages, pure functions of text: no Redis, no Celery.

In the order they run (:mod:`worker.pipeline` composes them):

1. :mod:`~worker.stages.garbled`: reject or repair mis-decoded text;
2. :mod:`~worker.stages.normalise`: join hard wraps, drop repeated passages;
3. :mod:`~worker.stages.script`: ``hant``, ``hans``, ``mixed`` or ``other``
   (on the Simplified form from :func:`worker.stages.segment.to_simplified`);
4. :mod:`~worker.stages.fingerprint`: what dedupe compares (then the dedupe
   decision, :mod:`worker.dedupe`);
5. :mod:`~worker.stages.segment`: tokens and POS tags, in the original script;
6. :mod:`~worker.stages.entity_model` (the model's spans) and
   :mod:`~worker.stages.entities` (reconciled with the dictionaries);
7. :mod:`~worker.stages.keywords`.

:mod:`~worker.stages.interning` makes the loaded tables cheap to share with
forked worker children.
"""

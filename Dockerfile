# One image for every newsflow service: worker, bridge, flower and the metrics exporter.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NEWSFLOW_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY producer ./producer
COPY worker ./worker
RUN pip install '.[fast,ops]'

# Never run as root. /data holds Flower's state across restarts.
RUN useradd --create-home --uid 10001 newsflow && mkdir /data && chown newsflow /data
USER newsflow
# Load jieba's dictionary once at build time, so its cache is in the image and workers start fast.
RUN python -c "from worker.tasks import analyser; analyser().warm()"

CMD ["newsflow", "worker", "--hostname", "celery@%h"]

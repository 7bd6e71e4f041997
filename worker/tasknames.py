"""The Celery task names, apart from the app, so that naming a task builds no Celery app."""

# A batch task is small: it names a batch whose articles wait in Redis (worker.batchqueue).
PROCESS_BATCH = "newsflow.process_batch"
# The stable public task: send_task("newsflow.submit", kwargs={"articles": [...]}).
SUBMIT = "newsflow.submit"

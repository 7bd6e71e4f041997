"""newsflow's worker side: the Celery app, the text stages and the dedupe index.

Importing this package is cheap; jieba and OpenCC load only where they are used.
"""

__version__ = "0.1.0"

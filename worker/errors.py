"""The errors a user of newsflow meets, in one place.

Every error newsflow raises on purpose derives from :class:`NewsflowError`,
and each kind carries the exit code the ``newsflow`` command ends with when it
reaches the top (one line on stderr, never a traceback):

======================= ==== ==================================================
error                   code when
======================= ==== ==================================================
:class:`NotFound`       1    the id, result or dead entry asked for is not there
:class:`ConfigError`    2    a ``NEWSFLOW_*`` variable has a value newsflow cannot use
:class:`BadInput`       2    an argument or input file newsflow cannot read or accept
:class:`RedisUnavailable` 3  Redis cannot be reached, needs or refuses the password, or is read-only
:class:`NotReplicated`  6    fewer than NEWSFLOW_MIN_REPLICAS replicas took a write in time
======================= ==== ==================================================

``newsflow submit --wait`` and ``newsflow wait`` end with the outcome of the
articles, the worst one winning: 0 every article came out ``unique``,
``duplicate`` or ``near_duplicate``; 4 some were ``rejected`` (bad input, and
nothing else went wrong); 5 some ``failed`` (gave up after retries, in the dead
stream); 1 the timeout passed before every article had a result. 130: Ctrl-C.

A *rejected article* is bad input too (:class:`worker.article.Rejection`, a
:class:`BadInput`): it becomes a ``rejected`` result rather than an exit code.
A *failed* article (gave up after retries) is not an error of the user's; it
is described by :class:`worker.result_body.Failure`.

This module imports nothing, so every layer (the text stages included) can use it.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_REDIS = 3
EXIT_REJECTED = 4
EXIT_FAILED = 5
EXIT_TIMED_OUT = EXIT_NOT_FOUND
EXIT_NOT_REPLICATED = 6
EXIT_INTERRUPTED = 130


class NewsflowError(Exception):
    """The base of every error newsflow raises for a user to read."""

    exit_code = 1


class NotFound(NewsflowError, KeyError):
    """What was asked for (a result, a dead entry) is not stored."""

    exit_code = EXIT_NOT_FOUND

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class ConfigError(NewsflowError, ValueError):
    """A setting in the environment has a value newsflow cannot use."""

    exit_code = EXIT_USAGE


class BadInput(NewsflowError, ValueError):
    """An argument, a file or an article that newsflow cannot accept."""

    exit_code = EXIT_USAGE


class RedisUnavailable(NewsflowError):
    """Redis cannot take the work now: unreachable, wrong password, out of memory or read-only."""

    exit_code = EXIT_REDIS


class NotReplicated(NewsflowError):
    """Fewer than NEWSFLOW_MIN_REPLICAS replicas acknowledged a write in time: it is not confirmed.

    The write is on the primary and may well survive, but a failover now could
    lose it; ``newsflow submit`` sends such articles again (by the same id)
    until they are confirmed, then names those that never were.
    """

    exit_code = EXIT_NOT_REPLICATED

    def __init__(self, message: str, ids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.ids = ids

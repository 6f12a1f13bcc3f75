"""One family of user-facing errors.

Every error a user can cause (bad model name, corrupt image, empty pool, missing key, ...) is a
``CCSError`` whose message says what was asked, what is wrong and how to fix it. The app and the CLI
show ``str(err)``; anything that is not a ``CCSError`` is a bug.
"""
from __future__ import annotations


class CCSError(Exception):
    """Base class: the message is meant for the user, as is."""


class ModelLoadError(CCSError):
    """The model could not be loaded (unknown name or tag, missing or corrupt checkpoint, offline)."""


class HeadSpecError(CCSError, ValueError):
    """A head name or head set is malformed or out of range."""


class DataError(CCSError):
    """An image set, dataset or text pool is missing, empty or unreadable."""


class CacheError(CCSError):
    """The artifact cache cannot be used (e.g. the directory is not writable)."""


class JudgeError(CCSError):
    """An LLM labeller or judge is unavailable or answered unusably."""


class EndpointUnreachable(JudgeError):
    """The request never got an answer (connection refused, DNS, timeouts after the retries)."""

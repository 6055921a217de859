"""Which failures are worth retrying: network trouble, 429, 5xx, and what says so at its source.

Errors of our own declare it (infra/errors.py: TransientError / TerminalError). Bad input
(InputError), failed quality gates, wrong settings and refused keys give the same answer
on every try, so retrying them only delays the one-line error the user needs to see.
"""

from __future__ import annotations

import socket

import requests
from elasticsearch import ApiError
from elasticsearch import ConnectionError as EsConnectionError
from elasticsearch import ConnectionTimeout as EsConnectionTimeout
from google.api_core.exceptions import GoogleAPICallError

from infra.errors import TerminalError, TransientError

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def _status(exc: BaseException) -> int | None:
    for attr in ("status_code", "code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    meta = getattr(exc, "meta", None)
    status = getattr(meta, "status", None)
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same call later may succeed."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, TerminalError):
        return False
    if isinstance(exc, (EsConnectionError, EsConnectionTimeout)):
        return True
    if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
        return True
    if isinstance(exc, ApiError):
        return exc.meta.status in _TRANSIENT_STATUS
    if isinstance(exc, GoogleAPICallError):
        return _status(exc) in _TRANSIENT_STATUS
    return isinstance(exc, (requests.ConnectionError, requests.Timeout))

"""Errors raised when talking to a model backend over HTTP.

Callers (Celery tasks in particular) decide whether to retry by class alone:
`BackendUnavailable` is transient and worth a bounded retry, everything else is not.
"""

from __future__ import annotations


class BackendError(Exception):
    """A model backend could not give a usable answer."""

    def __init__(self, message: str, *, url: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.url = url
        self.status_code = status_code


class BackendUnavailable(BackendError):
    """Transient: connection refused or reset, a timeout, HTTP 5xx / 429. Safe to retry later
    (after `retry_after` seconds when the server said so)."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, url=url, status_code=status_code)
        self.retry_after = retry_after


class BackendResponseError(BackendError):
    """Permanent: the backend answered, but with something unusable (not JSON, missing fields,
    or a 4xx rejection of the request). Retrying the same request gives the same result."""


class BackendConfigurationError(BackendError):
    """Permanent: the endpoint is misconfigured on our side (e.g. the API key variable is unset)."""


class AnswerRefused(BackendResponseError):
    """Permanent for this one request: the server refused it (HTTP 400, 413, 422: too long for
    its context, say) or answered it with no text (a reasoning model out of tokens). Other
    requests to the same server may well succeed."""

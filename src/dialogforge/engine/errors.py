"""Errors raised by the engine. Names follow the `openai` SDK's error semantics.

`retryable` decides whether the client retries: 408, 409, 429, 5xx, timeouts and
dropped connections are retried; any other 4xx fails the item at once with the
server's message.
"""
from __future__ import annotations

# The base errors live in core (formats and workflows use them without the engine); re-exported here.
from ..core.errors import ConfigError as ConfigError
from ..core.errors import DialogforgeError as DialogforgeError
from ..core.errors import InputError as InputError


class APIError(DialogforgeError):
    retryable = False

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class APIConnectionError(APIError):
    """The connection failed or dropped before a full response arrived."""

    retryable = True


class APITimeoutError(APIConnectionError):
    retryable = True


class APIStatusError(APIError):
    """The server answered with an error status."""

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        s = self.status or 0
        return s in (408, 409, 429) or s >= 500


class RateLimitError(APIStatusError):
    """HTTP 429."""


class BadRequestError(APIStatusError):
    """HTTP 400 (and other non-retryable 4xx)."""


class AuthenticationError(APIStatusError):
    """HTTP 401/403."""


class NotFoundError(APIStatusError):
    """HTTP 404, typically a wrong model name or base URL."""


class StructuredOutputError(DialogforgeError):
    """The model's answer did not validate against the requested schema after all repair attempts."""


class ItemFailed(DialogforgeError):
    """A workflow gives up on one item; the message is recorded in the failures file."""


def status_error(status: int, message: str, retry_after: float | None = None) -> APIStatusError:
    cls: type[APIStatusError]
    if status == 429:
        cls = RateLimitError
    elif status in (401, 403):
        cls = AuthenticationError
    elif status == 404:
        cls = NotFoundError
    elif 400 <= status < 500 and status not in (408, 409):
        cls = BadRequestError
    else:
        cls = APIStatusError
    return cls(f"HTTP {status}: {message}", status=status, retry_after=retry_after)

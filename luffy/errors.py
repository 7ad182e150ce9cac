"""Domain errors: what services, tasks and CLI commands raise when a rule refuses something.

Services are called by controllers, task workers and the CLI alike, so they never raise HTTP
exceptions. Each domain error carries the contract's Chinese message (and, where it matters, the
field it is about); ``luffy/responses.py`` maps each class to its HTTP status and the envelope in
one place, and the CLI prints the message. Subclass the one whose status fits.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refusal the caller can act on. ``message`` is the contract's ``msg``."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """The request breaks a rule about its own content (HTTP 400)."""


class NotAuthenticated(DomainError):
    """No valid identity, or the identity is no longer allowed in (HTTP 401)."""


class Forbidden(DomainError):
    """A known identity that may not do this (HTTP 403)."""


class NotFound(DomainError):
    """The thing asked for does not exist or is not visible (HTTP 404)."""


class Conflict(DomainError):
    """The request clashes with the current state (HTTP 409)."""


class TooManyRequests(DomainError):
    """A limit or lockout refuses the request for ``retry_after`` seconds (HTTP 429)."""

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency (database, Redis, broker, provider) cannot serve now; try again (HTTP 503)."""

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after

"""The operator's own error tree.

Every failure a user can meet is one of these, so the CLI maps them to exit codes in one place
and never shows a traceback. SDK and HTTP errors are translated at the backend boundary
(``raise ... from exc``); whether an error is worth retrying is its *type*, never a parsed string.

::

    PlannerError
    ├── ConfigError              one problem in one agent file (file:line:col, field path, hint)
    ├── TemplateError            a bad or unresolvable ``{placeholder}``
    ├── ScheduleError            a cron expression or timezone that cannot be scheduled
    ├── SourceError              a git revision or directory that cannot be read
    ├── StateError               the ledger / local state database is unusable
    │   ├── StateUnavailable     the shared database cannot be reached now: retry later
    │   └── LockError            another applier holds the lock (names the holder)
    ├── PlanRefused              a safety rule stopped the apply (mass delete, protected, ...)
    │   └── NotApproved          an apply nobody approved (no --yes and no terminal to ask on)
    ├── NotFoundError            the API was asked for a job, trigger or run that does not exist
    ├── InvalidRequest           the API was asked something that cannot be answered as asked
    ├── EditError                an edit of an agent file cannot be made as asked (409)
    │   ├── EditConflict         the file changed since the revision the edit was made against
    │   └── EditInvalid          the edited file does not validate (422, file:line:col)
    └── BackendError             a remote system failed
        ├── RetryableError       try again later (``retry_after`` seconds, if the remote said)
        │   └── UnknownOutcome   a write timed out: re-read before retrying
        ├── RunWaiting           the run is suspended remotely (Mastra): poll it, do not retry
        └── PermanentError       retrying will not help
            ├── RunCancelled     the remote run was cancelled (a distinct run outcome)
            ├── NotFound         the remote object does not exist
            ├── AuthError        credentials missing or rejected
            └── Conflict         the remote refuses the change as it stands
"""

from __future__ import annotations

from dataclasses import dataclass


class PlannerError(Exception):
    """Base of every error the operator raises on purpose."""


@dataclass(frozen=True)
class Position:
    """Where in a file something is: 1-based line and column, as editors count."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class ConfigError(PlannerError):
    """One problem in one agent file, with enough context to fix it without reading code."""

    def __init__(
        self,
        message: str,
        *,
        file: str,
        line: int = 1,
        col: int = 1,
        path: str = "",
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.position = Position(file, line, col)
        self.path = path
        self.hint = hint
        super().__init__(self.render())

    @property
    def file(self) -> str:
        return self.position.file

    def render(self) -> str:
        where = f"{self.position}"
        field = f" {self.path}:" if self.path else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}:{field} {self.message}{hint}"


class TemplateError(PlannerError):
    """A template that does not parse, or a placeholder with no value."""


class ScheduleError(PlannerError):
    """A schedule or timezone that cannot be turned into fire times."""


class SourceError(PlannerError):
    """The desired state could not be read (missing directory, bad git revision...)."""


class StateError(PlannerError):
    """The operator's own state (ledger, local backend database) is unusable."""


class StateUnavailable(StateError):
    """The shared database cannot be reached now (down, restarting, no connection in time):
    nothing is wrong with what was asked, and the same request later may succeed."""


class LockError(StateError):
    """Another applier holds the apply lock."""


class PlanRefused(PlannerError):
    """A safety rule refused (part of) the plan; the message says which flag overrides it."""


class NotApproved(PlanRefused):
    """An apply that needs a person's yes (or ``--yes``) and did not get it."""


class NotFoundError(PlannerError):
    """No such applied job or trigger, run, or workflow (the API answers 404).

    Not ``NotFound``: that one is a remote object gone missing, worth re-planning; this is a
    caller asking for a name that was never applied. The message says how to list what exists.
    """


class InvalidRequest(PlannerError):
    """A request that cannot be answered as asked (the API answers 422, naming the field)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        self.field = field
        super().__init__(message)


class EditError(PlannerError):
    """An edit of an agent file that cannot be made as asked (the API answers 409).

    For example a job that already exists, a file that is not an agent mapping, or a server
    that reads no agent source. The message says what to do instead.
    """


class EditConflict(EditError):
    """The file changed since the revision the edit was made against: refused, never merged.

    ``current`` is the newer revision, so a client can show it and let the user re-apply the
    edit (their form stays filled); ``base`` is the one the edit was made against.
    """

    def __init__(self, message: str, *, file: str, base: str, current: str) -> None:
        self.file = file
        self.base = base
        self.current = current
        super().__init__(message)


class EditInvalid(EditError):
    """The file after the edit does not load or validate; ``errors`` say file:line:col."""

    def __init__(self, message: str, errors: tuple[ConfigError, ...]) -> None:
        self.errors = errors
        super().__init__(message)


class BackendError(PlannerError):
    """A remote system (Inngest, Composio, the local backend) failed."""

    def __init__(self, message: str, *, backend: str = "", status: int | None = None) -> None:
        self.backend = backend
        self.status = status
        prefix = f"{backend}: " if backend else ""
        super().__init__(f"{prefix}{message}")


class RetryableError(BackendError):
    """Transient: rate limited, unavailable, 5xx. ``retry_after`` is seconds, when known."""

    def __init__(
        self,
        message: str,
        *,
        backend: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, backend=backend, status=status)


class UnknownOutcome(RetryableError):
    """A write whose result is unknown (timeout): the caller must re-read before retrying."""


class PermanentError(BackendError):
    """Retrying the same request will not help."""


class RunCancelled(PermanentError):
    """Someone cancelled the remote run: not a failure to retry, nor one to alert on."""


class RunWaiting(BackendError):
    """The remote run is suspended, waiting for someone to resume it (Mastra ``suspend()``).

    Neither a failure nor a retry: the run is recorded ``waiting`` with ``awaiting`` (what the
    remote says it waits for) and polled (``runtime.waiting``) until it ends, so a run
    suspended for a day burns no retry attempts and never times out into "unknown outcome".
    """

    def __init__(self, message: str, *, backend: str = "", awaiting: object = None) -> None:
        self.awaiting = awaiting
        super().__init__(message, backend=backend)


class NotFound(PermanentError):
    """The remote object does not exist (any more)."""


class AuthError(PermanentError):
    """Credentials are missing or were rejected."""


class Conflict(PermanentError):
    """The remote refuses the change in its current state."""


def retryable(exc: BaseException) -> bool:
    """Whether trying the same thing again may succeed: decided by type, never by message.

    Our own errors say so (``RetryableError``); any other ``PlannerError`` (a permanent backend
    answer, a template that cannot render) will fail the same way again. Anything else is
    unexpected (a bug, an exhausted resource) and gets the benefit of the doubt.
    """
    if isinstance(exc, RetryableError):
        return True
    return not isinstance(exc, PlannerError)

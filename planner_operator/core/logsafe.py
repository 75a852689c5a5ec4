"""Log lines a sender cannot forge: control characters in logged text are escaped.

Much of what the operator logs arrives from outside: webhook path parameters (percent-decoded,
so ``%0A`` is a newline), delivery ids, header values, exception messages that quote a payload.
Written raw, a newline forges a whole log line (``... outcome=accepted`` for a delivery that was
refused), ``ESC`` drives the reader's terminal, ``NUL`` truncates lines in some log shippers,
and a lone surrogate makes the stream handler fail the write. So every record passes
:class:`EscapeFilter` on its way to a handler: the formatted message and the exception text
have C0/C1 controls, DEL, line and paragraph separators, bidirectional overrides and
surrogates replaced by visible escapes (``\\n``, ``\\x1b``, ``\\u2028``). The log's own line
structure (a traceback's lines) is kept; only the values inside are escaped.

The filter sits on the handlers (:func:`install`), not in each ``log.info`` call, so a log call
somebody adds later is covered too; the CLI installs it where it configures logging.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape(text: str) -> str:
    """``text`` with every character that could break or disguise a log line made visible."""
    return _UNSAFE.sub(_visible, text)


def format_exception(exc: BaseException) -> str:
    """A traceback like :func:`traceback.format_exception`'s, with each exception's message
    escaped (the frames are our own source lines; the messages may quote a payload)."""
    out: list[str] = []
    seen: set[int] = set()

    def walk(e: BaseException) -> None:
        seen.add(id(e))
        cause, context = e.__cause__, e.__context__
        if cause is not None and id(cause) not in seen:
            walk(cause)
            out.append("\nThe above exception was the direct cause of the following exception:\n\n")
        elif context is not None and not e.__suppress_context__ and id(context) not in seen:
            walk(context)
            out.append("\nDuring handling of the above exception, another exception occurred:\n\n")
        if e.__traceback__ is not None:
            out.append("Traceback (most recent call last):\n")
            out.extend(traceback.format_tb(e.__traceback__))
        only = "".join(traceback.format_exception_only(type(e), e)).rstrip("\n")
        out.append(escape(only) + "\n")

    walk(exc)
    return "".join(out).rstrip("\n")


class EscapeFilter(logging.Filter):
    """Escapes a record's message and exception text in place (so every handler gets it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it as logging always does
            return True
        record.msg, record.args = escape(message), None
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and not record.exc_text:
            record.exc_text = format_exception(exc)
        return True


_FILTER = EscapeFilter()


def install(loggers: Iterable[logging.Logger] = ()) -> None:
    """Put the filter on every handler of the root logger and of ``loggers`` (idempotent).

    Call it after logging is configured (uvicorn configures its own loggers when its
    ``Config`` is built): handlers added later are not covered.
    """
    for logger in (logging.getLogger(), *loggers):
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


def configure(fmt: str = "%(asctime)s %(levelname)s %(name)s %(message)s") -> None:
    """The long-running commands' logging: INFO to stderr, every line through the filter."""
    logging.basicConfig(level=logging.INFO, format=fmt)
    install()

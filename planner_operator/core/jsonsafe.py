"""Reading JSON that came from outside: bounded nesting, only real characters, finite numbers.

Webhook bodies are signed, but a valid signature says who sent the bytes, not that they are
sane, and a body is parsed twice (ingress to route it, the worker to run it). Python's ``json``
accepts things the rest of the operator cannot carry:

* nesting: ``json.loads`` raises ``RecursionError`` (not ``ValueError``) near 1,000 levels, and
  far shallower bodies still exhaust the stack in code that walks them recursively (templates,
  pydantic, ``json.dumps`` of the run record). :data:`MAX_DEPTH` levels are accepted; deeper is
  :class:`InvalidJSON`. Real payloads nest under 15 (Gmail, GitHub and Slack events alike).
* lone surrogates: ``"\\ud800"`` decodes to a ``str`` that UTF-8 cannot encode, so SQLite, the
  log and an HTTP executor fail on it wherever it lands. A surrogate is not a character; like a
  decoder meeting invalid UTF-8, it is read as U+FFFD. Senders in UTF-16 languages produce
  these honestly (a preview cut in the middle of an emoji), so the delivery is kept.
* ``NaN``, ``Infinity`` and numbers beyond a double (``1e400``): not JSON (RFC 8259), and
  ``json.dumps`` would write them back out as invalid JSON. :class:`InvalidJSON`.

:func:`loads` is the one place both readers go through, so ingress and the worker cannot
disagree about a body.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidJSON(ValueError):
    """Bytes that are not JSON the operator accepts; the message says what is wrong."""


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data`` (UTF-8 bytes or text); raises :class:`InvalidJSON`, nothing else."""
    try:
        value = json.loads(data, parse_constant=_constant, parse_float=_float)
    except RecursionError:
        raise InvalidJSON(f"the JSON is nested deeper than {max_depth} levels") from None
    except InvalidJSON:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        raise InvalidJSON(f"not JSON: {exc}") from None
    return _clean(value, max_depth)


def _constant(name: str) -> Any:
    raise InvalidJSON(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJSON(f"the number {text[:20]} is out of range")
    return value


def _text(value: str) -> str:
    return value if value.isascii() else _SURROGATE.sub("\ufffd", value)


def _clean(value: Any, max_depth: int) -> Any:
    """Check the depth and replace surrogates, without recursion (the depth is the input's)."""
    if isinstance(value, str):
        return _text(value)
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise InvalidJSON(f"the JSON is nested deeper than {max_depth} levels")
        if isinstance(node, dict):
            renamed = False
            for key, item in node.items():
                renamed = renamed or not key.isascii()
                if isinstance(item, str):
                    if not item.isascii():
                        node[key] = _text(item)
                elif isinstance(item, dict | list):
                    stack.append((item, depth + 1))
            if renamed:  # rare: rebuild with clean keys (later duplicates win, as in json)
                items = list(node.items())
                node.clear()
                node.update((_text(k), v) for k, v in items)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, str):
                    if not item.isascii():
                        node[index] = _text(item)
                elif isinstance(item, dict | list):
                    stack.append((item, depth + 1))
    return value

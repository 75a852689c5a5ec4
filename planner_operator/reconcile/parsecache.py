"""Reuse what loading a file gave last time, when the file is the same: no-op reconciles cheap.

A file's checked result (``loader`` + ``semantic.check_one``) is a function of its name, its
bytes and the code that loads it, so that triple is the key: the name, the file's git blob id
(``sha1("blob <size>\\0" + bytes)``: what a revision's tree already names, and what the same
bytes in the work tree hash to, so the two share entries) and :func:`loader_version`. The
cross-file checks (duplicate agent ids) are not cached: ``source.load`` runs them over every
file every time.

A work tree is hashed from the bytes read, every time, rather than trusting size and mtime:
the reads happen anyway (the torn-write check compares them) and hashing 2,000 files costs a
few milliseconds, while an mtime is only as fine as the kernel's coarse clock, so a quick
same-size edit can keep it (git and make have that bug; see BENCHMARKS.md for the figures).

The store (``state.parse_cache``) may be absent, locked or corrupt; then files are loaded cold
and the reconcile goes on: a cache must never be why a plan fails.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Protocol, TypeVar

import planner_operator.config
import planner_operator.core
import planner_operator.errors
from planner_operator.config import cached
from planner_operator.config.loader import LoadedFile
from planner_operator.errors import PlannerError
from planner_operator.state.parse_cache import ParseCache

log = logging.getLogger("planner_operator.reconcile.parsecache")

# The libraries whose behaviour a loaded result depends on (parsing, validation, time zones).
_LIBRARIES = ("pydantic", "pydantic-core", "ruamel.yaml", "ruamel.yaml.clib", "tzdata")


class Content(Protocol):
    """What the cache needs of a source file (``source.SourceFile``)."""

    @property
    def display(self) -> str: ...

    @property
    def data(self) -> bytes | None: ...

    @property
    def cacheable(self) -> bool:
        """Whether its result depends on its name and bytes alone."""
        ...


F = TypeVar("F", bound=Content)


@functools.cache
def loader_version() -> str:
    """A digest of everything a checked file depends on besides itself: the record format, the
    source of ``config``, ``core`` and ``errors`` (models, messages, cron and template checks)
    and the library versions. Any edit of that code, in a release or a work tree, is a new
    version, so a stale result can never be served."""
    digest = hashlib.sha256(f"format {cached.FORMAT}\n".encode())
    modules = [Path(str(planner_operator.errors.__file__))]
    for package in (planner_operator.config, planner_operator.core):
        root = Path(str(package.__file__)).parent
        modules += sorted(root.glob("*.py")) + sorted(root.glob("*.json"))
    for path in modules:
        digest.update(f"{path.name}\n".encode())
        digest.update(path.read_bytes())
    for name in _LIBRARIES:
        try:
            digest.update(f"{name} {metadata.version(name)}\n".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name} -\n".encode())
    return digest.hexdigest()[:32]


def blob_id(data: bytes) -> str:
    """Git's object id of a blob with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class FileCache:
    """``source.load``'s cache: reads every file's entry in one go, writes the new ones in one
    transaction (unless ``write`` is False); ``parsed`` names the files the last load parsed."""

    def __init__(
        self, store: ParseCache, version: str | None = None, *, write: bool = True
    ) -> None:
        self.store = store
        self.write = write
        self.version = version or loader_version()
        self.parsed: tuple[str, ...] = ()
        self.reused = 0

    def key(self, file: Content) -> str | None:
        if not file.cacheable or file.data is None:
            return None
        text = f"{self.version}\0{file.display}\0{blob_id(file.data)}"
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()

    def checked(self, files: Sequence[F], check: Callable[[F], LoadedFile]) -> list[LoadedFile]:
        """``[check(f) for f in files]``, with each result taken from the store when kept."""
        keys = [self.key(f) for f in files]
        try:
            found = self.store.get(k for k in keys if k is not None)
        except PlannerError as exc:
            log.warning("parse cache unreadable, loading every file: %s", exc)
            found = {}
        with _collector_paused():
            kept = {
                i: hit
                for i, (file, key) in enumerate(zip(files, keys, strict=True))
                if key is not None and (hit := _read(found.get(key), file.display)) is not None
            }
        out: list[LoadedFile] = []
        new: dict[str, str] = {}
        parsed: list[str] = []
        for i, (file, key) in enumerate(zip(files, keys, strict=True)):
            hit = kept.get(i)
            if hit is not None:
                out.append(hit)
                continue
            loaded = check(file)
            out.append(loaded)
            parsed.append(file.display)
            if key is not None:
                new[key] = cached.dumps(loaded)
        self.parsed, self.reused = tuple(parsed), len(files) - len(parsed)
        if not self.write:
            return out
        try:
            self.store.put(self.version, new)
        except PlannerError as exc:
            log.warning("parse cache not written (the next load parses again): %s", exc)
        return out


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Rebuilding 200 files' positions allocates ~100,000 small tuples, and every 700 of them
    the cyclic garbage collector runs, walking every older object of the process (a serving
    process holds millions): two thirds of a cached load went there. The objects made here are
    acyclic and kept, so the collector is paused for the loop; a collection may run after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(text: str | None, file: str) -> LoadedFile | None:
    if text is None:
        return None
    try:
        return cached.loads(text, file)
    except cached.BadRecord as exc:
        log.warning("parse cache: %s; loading it again", exc)
        return None

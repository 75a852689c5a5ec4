"""Whether the process behind a lease is provably gone, so its work can be taken back at once.

A worker killed mid-run leaves leased rows behind; waiting out the lease (60 s) is the only
safe choice when nothing more is known, because a live owner on another machine cannot be
asked. It is *provable* that an owner is gone only when it ran on this very machine and in
this process namespace, and the process is not there any more. Three traps make the obvious
test (same host name, ``kill(pid, 0)`` fails) unsafe, and each is closed here:

* **Another machine with the same host name** (two containers both called ``worker``, a
  cloned VM): the owner records the kernel's boot id, which differs between machines.
* **Another PID namespace on the same kernel** (two containers on one host share the boot id;
  pid 42 in one is not pid 42 in the other): the owner records the namespace's inode.
* **A pid reused** by a later process: the owner records its process's start time (clock ticks
  since boot, from ``/proc/<pid>/stat``); a live pid that started at another time is someone
  else, and the owner is gone.

Where any of these cannot be read (not Linux, no ``/proc``), the identity has no machine part and
is never judged gone: the lease runs out as before.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from planner_operator.state.lock import pid_alive

_PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    """One process, named well enough to tell later whether it still runs."""

    host: str
    machine: str  # "<boot id>.<pid namespace inode>"; "" when unknown (never judged gone)
    pid: int
    started: str  # start time in clock ticks since boot; "" when unknown

    def name(self, tag: str = "") -> str:
        """``host:pid:started:machine[:tag]``: a lease owner's name, readable in ``inbox``
        listings (host and pid first) and parsed back by :func:`parse`."""
        base = f"{self.host}:{self.pid}:{self.started}:{self.machine}"
        return f"{base}:{tag}" if tag else base


def parse(owner: str) -> Process | None:
    """The process a lease owner's name describes, or None for any other name (tests' ``w1``,
    ``inbox replay``'s owner, names written before start times were recorded)."""
    parts = owner.split(":")
    if len(parts) < 4 or not parts[1].isdigit():
        return None
    host, pid, started, machine = parts[:4]
    if started and not started.isdigit():
        return None
    return Process(host=host, machine=machine, pid=int(pid), started=started)


@functools.lru_cache(maxsize=1)
def machine() -> str:
    """This kernel's boot id and this process's PID namespace, or "" when either is unknown."""
    try:
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(_PROC / "self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return ""
    inode = namespace.partition("[")[2].rstrip("]")
    if not boot or not inode.isdigit():
        return ""
    return f"{boot}.{inode}"


def start_time(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot), or "" if it is not readable."""
    return _stat(pid)[1]


def _stat(pid: int) -> tuple[str, str]:
    """Process ``pid``'s state letter and start time from ``/proc``, "" where unreadable."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return "", ""
    # field 2, the command, is in parentheses and may hold spaces: count from the last ")"
    fields = stat.rpartition(")")[2].split()
    if len(fields) <= 19 or not fields[19].isdigit():
        return "", ""
    return fields[0], fields[19]


def current() -> Process:
    """This process (the pid is read each time: a forked child is another process)."""
    pid = os.getpid()
    return Process(socket.gethostname(), machine(), pid, start_time(pid))


def gone(owner: str) -> bool:
    """Whether the process ``owner`` names is provably not running (see the module docstring).

    False whenever it cannot be proven: another host or machine or namespace, a name without a
    machine part, this process itself.
    """
    found = parse(owner)
    here = current()
    if found is None or not found.machine or not found.started:
        return False
    if found.host != here.host or found.machine != here.machine or found.pid == here.pid:
        return False
    if not pid_alive(found.pid):
        return True
    state, started = _stat(found.pid)
    if state in ("Z", "X"):  # ended, not yet reaped by its parent: it runs no more
        return True
    return bool(started) and started != found.started  # the pid runs again, as someone else

"""What /proc/PID/stat says of a process (proc(5)): its state, parent and start time. The start time
(clock ticks since boot) tells a process from a later one that reuses its pid."""

from __future__ import annotations

from pathlib import Path


def fields(pid: int) -> list[str] | None:
    """The fields after the command name (which may hold spaces and parentheses); None: no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def state(pid: int) -> str | None:
    """R, S, D, Z (zombie), X (dead), …; None when there is no such process."""
    f = fields(pid)
    return f[0] if f else None


def parent(pid: int) -> int | None:
    f = fields(pid)
    return int(f[1]) if f else None


def start_ticks(pid: int) -> int | None:
    f = fields(pid)
    return int(f[19]) if f else None  # proc(5): field 22, starttime

"""The recorded state of one migration: DIR/migration.json, rewritten atomically after every change.

It holds the steps done (with timestamps and what each found), the current traffic shares, the
endpoints (old server, new server, front, proxy) and what llmctl started (pid + the kernel's start
time of that pid, so a reused pid is never mistaken for ours). Every step is idempotent: a re-run
skips a step marked done after re-checking that what it left is still live, and redoes it otherwise.
One command at a time changes a migration (an exclusive lock on DIR/.migration.lock).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any, Iterator

from llmctl.errors import CheckFailed, InputError

SCHEMA = "llmctl.migrate.state/v1"
FILE = "migration.json"

# phases, in the order a migration goes through them
STARTING, PARITY_FAILED, READY, SHIFTING, AT_FULL, FINALIZED, ROLLED_BACK = (
    "starting", "parity-failed", "ready", "shifting", "at-100", "finalized", "rolled-back")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Migration:
    def __init__(self, out_dir: str | Path, data: dict[str, Any]) -> None:
        self.dir = Path(out_dir)
        self.data = data

    # ------------------------------------------------------------------ files
    @property
    def path(self) -> Path:
        return self.dir / FILE

    @classmethod
    def load(cls, out_dir: str | Path) -> "Migration | None":
        path = Path(out_dir) / FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable migration state: {exc}", where=str(path)) from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise InputError(f"schema {data.get('schema') if isinstance(data, dict) else None!r}, expected {SCHEMA}",
                             where=str(path))
        return cls(out_dir, data)

    @classmethod
    def load_or_create(cls, out_dir: str | Path) -> "Migration":
        found = cls.load(out_dir)
        if found is not None:
            return found
        return cls(out_dir, {"schema": SCHEMA, "created": _now(), "updated": _now(), "phase": STARTING,
                             "shares": {"ollama": 100.0, "vllm": 0.0}, "endpoints": {}, "started": [],
                             "steps": []})

    @classmethod
    def require(cls, out_dir: str | Path) -> "Migration":
        found = cls.load(out_dir)
        if found is None:
            raise InputError(f"no migration recorded in {out_dir} ({FILE} is missing)",
                             hint="start one with `llmctl migrate ollama-to-vllm --from URL --out DIR --apply`")
        return found

    def save(self) -> None:
        from llmctl.fileio import write_atomic

        self.data["updated"] = _now()
        write_atomic(self.path, json.dumps(self.data, indent=2) + "\n")

    @contextlib.contextmanager
    def locked(self) -> Iterator["Migration"]:
        """Hold the migration's lock; a second command meanwhile fails at once instead of racing."""
        import fcntl

        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".migration.lock", "a") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CheckFailed(f"another `llmctl migrate` command is working on {self.dir}; "
                                  "wait for it to finish") from None
            fresh = Migration.load(self.dir)  # what the previous holder wrote
            if fresh is not None:
                self.data = fresh.data
                # with the lock held nobody else runs: a step still `running` lost its process
                self.fail_running("interrupted: the command running it ended before it finished",
                                  status="interrupted")
            try:
                yield self
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # ------------------------------------------------------------------ fields
    @property
    def phase(self) -> str:
        return self.data["phase"]

    def set_phase(self, phase: str) -> None:
        self.data["phase"] = phase
        self.save()

    @property
    def shares(self) -> dict[str, float]:
        return dict(self.data["shares"])

    def set_shares(self, shares: dict[str, float]) -> None:
        self.data["shares"] = {k: float(v) for k, v in shares.items()}
        self.save()

    @property
    def endpoints(self) -> dict[str, Any]:
        return self.data["endpoints"]

    def set_endpoint(self, name: str, value: Any) -> None:
        self.data["endpoints"][name] = value
        self.save()

    def started(self, role: str) -> dict[str, Any] | None:
        return next((s for s in self.data["started"] if s["role"] == role), None)

    def record_started(self, record: dict[str, Any]) -> None:
        self.data["started"] = [s for s in self.data["started"] if s["role"] != record["role"]] + [record]
        self.save()

    def forget_started(self, role: str) -> None:
        self.data["started"] = [s for s in self.data["started"] if s["role"] != role]
        self.save()

    # ------------------------------------------------------------------ steps
    def step(self, name: str) -> dict[str, Any] | None:
        """The latest record of step `name`."""
        return next((s for s in reversed(self.data["steps"]) if s["name"] == name), None)

    def is_done(self, name: str) -> bool:
        s = self.step(name)
        return s is not None and s["status"] == "done"

    def begin(self, name: str) -> dict[str, Any]:
        rec = {"name": name, "status": "running", "started_at": _now(), "finished_at": None}
        self.data["steps"].append(rec)
        self.save()
        return rec

    def finish(self, rec: dict[str, Any], status: str = "done", **detail: Any) -> None:
        rec.update(status=status, finished_at=_now(), **detail)
        self.save()

    def fail_running(self, reason: str, status: str = "failed") -> None:
        """After an error or an interruption: steps left `running` become `failed` (or `interrupted`)."""
        changed = False
        for s in self.data["steps"]:
            if s["status"] == "running":
                s.update(status=status, finished_at=_now(), reason=reason)
                changed = True
        if changed:
            self.save()

    def invalidate(self, *names: str) -> None:
        """Mark done steps as no longer holding (what they left is gone): the next run redoes them."""
        for name in names:
            s = self.step(name)
            if s is not None and s["status"] == "done":
                s["status"] = "stale"
        self.save()

"""A target that runs nothing: instances live in a class-level dict, every driver call is logged, and
a test can make readiness fail for the next instance. It is registered only inside the tests that use
it, to test rollout's decisions (first start, no-op, blue/green, failures, down) apart from any real
target's machinery."""

from __future__ import annotations

import json
from typing import Any

from llmctl.deploy.base import Context, Driver
from llmctl.errors import CheckFailed
from llmctl.typed import dump


class FakeDriver(Driver):
    name = "fake"
    blue_green = True
    calls: list[tuple[str, str]] = []  # (method, colour@port)
    instances: dict[str, dict[str, Any]] = {}  # colour -> record, while it exists
    stopped: set[str] = set()
    fail_ready: list[bool] = []  # popped per wait_ready: True makes that readiness fail

    @classmethod
    def reset(cls) -> None:
        cls.calls, cls.instances, cls.stopped, cls.fail_ready = [], {}, set(), []

    def _log(self, what: str, record: dict[str, Any]) -> None:
        self.calls.append((what, f"{record.get('color')}@{record.get('port')}"))

    def files(self, ctx: Context, service, color: str) -> dict[str, str]:
        return {"fake.json": json.dumps(dump(service), sort_keys=True)}  # any change to the service is a change

    def apply(self, ctx: Context, service, color: str) -> dict[str, Any]:
        record = {"color": color, "port": service.ports[0].host}
        self.instances[color] = record
        self.stopped.discard(color)
        self._log("apply", record)
        return record

    def wait_ready(self, ctx: Context, service, record: dict[str, Any]) -> None:
        self._log("wait_ready", record)
        if self.fail_ready and self.fail_ready.pop(0):
            raise CheckFailed(f"{record['color']} did not become ready")

    def stop(self, ctx: Context, record: dict[str, Any]) -> None:
        self._log("stop", record)
        self.stopped.add(record["color"])

    def start(self, ctx: Context, record: dict[str, Any]) -> None:
        self._log("start", record)
        self.stopped.discard(record["color"])

    def remove(self, ctx: Context, record: dict[str, Any], *, volumes: bool = False) -> list[str]:
        self._log("remove", record)
        gone = self.instances.pop(record.get("color"), None)
        return [f"fake {record.get('color')}"] if gone else []

    def running(self, ctx: Context, record: dict[str, Any]) -> bool:
        return record.get("color") in self.instances and record.get("color") not in self.stopped


class ProxiedFakeDriver(FakeDriver):
    """The fake as a target behind the traffic layer that cannot update a deployment made before it had
    a proxy (as systemd: such a deployment holds the public port in a unit of its own)."""

    name = "fake-proxied"
    proxied = True
    pre_proxy_updates = False

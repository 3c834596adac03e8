"""A bounded streaming load generator: worker threads send streamed chat completions in a loop and
count each one as finished (HTTP 200 and the closing `data: [DONE]`) or failed (an error status, a
refused or reset connection, or a stream cut before [DONE]). Used to show that an update drops nothing."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class LoadReport:
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    served_by: Counter = field(default_factory=Counter)  # X-Llmctl-Server of finished requests

    @property
    def total(self) -> int:
        return self.ok + len(self.failed)


class StreamLoad:
    def __init__(self, base_url: str, model: str, *, workers: int = 2, max_tokens: int = 24,
                 api_key: str | None = None, request_timeout_s: float = 60.0, max_requests: int = 100_000) -> None:
        self.url = base_url.rstrip("/") + "/v1/chat/completions"
        self.model = model
        self.workers = workers
        self.max_tokens = max_tokens
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = request_timeout_s
        self.max_requests = max_requests
        self.report = LoadReport()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> "StreamLoad":
        for i in range(self.workers):
            t = threading.Thread(target=self._run, args=(i,), daemon=True, name=f"load-{i}")
            t.start()
            self._threads.append(t)
        return self

    def wait_for(self, finished: int, timeout_s: float) -> None:
        """Until at least `finished` requests have completed (successfully or not)."""
        deadline = time.monotonic() + timeout_s
        while self.report.total < finished:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.report.total} of {finished} requests finished in {timeout_s:.0f}s; "
                                   f"failures: {self.report.failed[:3]}")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 120.0) -> LoadReport:
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise TimeoutError(f"load threads still running after {timeout_s:.0f}s: {alive}")
        return self.report

    def _run(self, index: int) -> None:
        with httpx.Client(timeout=self.timeout, headers=self.headers) as client:
            n = 0
            while not self._stop.is_set() and self.report.total < self.max_requests:
                n += 1
                outcome, server = self._one(client, f"worker {index} request {n}")
                with self._lock:
                    if outcome is None:
                        self.report.ok += 1
                        self.report.served_by[server] += 1
                    else:
                        self.report.failed.append(outcome)

    def _one(self, client: httpx.Client, label: str) -> tuple[str | None, str]:
        body = {"model": self.model, "stream": True, "max_tokens": self.max_tokens, "temperature": 0,
                "messages": [{"role": "user", "content": "Count slowly from one to fifty."}]}
        try:
            with client.stream("POST", self.url, json=body) as resp:
                server = resp.headers.get("x-llmctl-server", "?")
                if resp.status_code != 200:
                    resp.read()
                    return f"{label}: HTTP {resp.status_code} from {server}: {resp.text[:200]}", server
                done = False
                for line in resp.iter_lines():
                    if line.strip() == "data: [DONE]":
                        done = True
                if not done:
                    return f"{label}: stream from {server} ended before [DONE]", server
                return None, server
        except httpx.HTTPError as exc:
            return f"{label}: {type(exc).__name__}: {exc}", "?"

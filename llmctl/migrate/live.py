"""Read a running Ollama server's native API, read-only, every wait bounded.

Endpoints and shapes (ollama/ollama, tag v0.32.15): `GET /api/version` → `{"version"}`
(server/routes.go GenerateRoutes); `GET /api/tags` → ListResponse `{"models": [ListModelResponse{name,
model, modified_at, size, digest, details, capabilities}]}`; `GET /api/ps` → ProcessResponse
`{"models": [ProcessModelResponse{name, model, size, digest, details, expires_at, size_vram,
context_length}]}`; `POST /api/show` with ShowRequest `{"model", "verbose"}` → ShowResponse
`{license, modelfile, parameters, template, system, details{parent_model, format, family, families,
parameter_size, quantization_level}, messages, model_info, capabilities, modified_at}` (api/types.go).
"""

from __future__ import annotations

from typing import Any

from llmctl.errors import InputError

MAX_BODY = 32 << 20  # an /api/show answer without verbose is a few hundred KB at most
MAX_MODELS = 500


class Unreachable(Exception):
    pass


def _limits() -> tuple[float, float]:
    """(connect, read) seconds, as every network request of llmctl (LLMCTL_NET_TIMEOUT sets both)."""
    from llmctl.resolve.policy import timeouts

    return timeouts()


def _get(client: Any, method: str, url: str, body: dict | None, what: str) -> Any:
    """One request; the whole answer must arrive within the read limit (a server that trickles bytes
    does not hold the inventory up)."""
    import time

    import httpx

    _, read = _limits()
    deadline = time.monotonic() + read
    try:
        with client.stream(method, url, json=body) as r:
            data = bytearray()
            for chunk in r.iter_bytes():
                data += chunk
                if len(data) > MAX_BODY:
                    raise InputError(f"{what}: the answer is larger than {MAX_BODY >> 20} MiB", where=url)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the answer took too long")
            status = r.status_code
    except httpx.TimeoutException:
        raise Unreachable(f"{url} did not answer within {read:g} s") from None
    except httpx.HTTPError as exc:
        raise Unreachable(f"{url}: {type(exc).__name__}: {exc}") from None
    import json

    try:
        doc = json.loads(bytes(data).decode("utf-8"))
    except ValueError:
        doc = None
    if status >= 400:
        msg = doc.get("error") if isinstance(doc, dict) else bytes(data[:200]).decode("utf-8", "replace")
        raise InputError(f"{what} answered HTTP {status}: {msg}", where=url)
    if not isinstance(doc, dict):
        raise InputError(f"{what}: the answer is not a JSON object (is this an Ollama server?)", where=url)
    return doc


def reachable(base: str, timeout: float = 1.0) -> bool:
    """Whether `base` answers /api/version within `timeout` (for file sources that name a port)."""
    import httpx

    try:
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=timeout), trust_env=False) as c:
            return c.get(base.rstrip("/") + "/api/version").status_code == 200
    except httpx.HTTPError:
        return False


def read_server(base: str) -> dict[str, Any]:
    """{version, tags, ps, show: {name: answer}} of the server at `base`."""
    import httpx

    base = base.rstrip("/")
    connect, read = _limits()
    timeout = httpx.Timeout(read, connect=connect)
    try:
        with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client:
            version = _get(client, "GET", f"{base}/api/version", None, "/api/version")
            tags = _get(client, "GET", f"{base}/api/tags", None, "/api/tags")
            ps = _get(client, "GET", f"{base}/api/ps", None, "/api/ps")
            models = tags.get("models")
            if not isinstance(models, list):
                raise InputError("/api/tags: `models` is not a list", where=f"{base}/api/tags")
            if len(models) > MAX_MODELS:
                raise InputError(f"/api/tags lists {len(models)} models, more than {MAX_MODELS}", where=base)
            show: dict[str, Any] = {}
            for i, m in enumerate(models):
                name = m.get("name") if isinstance(m, dict) else None
                if not isinstance(name, str) or not name:
                    raise InputError(f"/api/tags: models[{i}] has no name", where=f"{base}/api/tags")
                show[name] = _get(client, "POST", f"{base}/api/show", {"model": name, "verbose": False},
                                  f"/api/show {name}")
    except Unreachable as exc:
        raise InputError(f"cannot read the Ollama server: {exc}", where=base,
                         hint="check the URL and that the server runs (`curl URL/api/version`)") from None
    return {"version": version.get("version"), "tags": tags, "ps": ps, "show": show}

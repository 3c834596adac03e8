"""What the online resolvers share: the error a network failure becomes, byte accounting, and reading
just the first bytes of a (possibly huge) remote file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class NetworkError(Exception):
    """The network failed (refused, timed out, 5xx): resolution falls back to the catalog with a warning."""


@dataclass
class Stats:
    requests: int = 0
    bytes_read: int = 0


STATS = Stats()


def httpx_timeout() -> Any:
    import httpx

    from llmctl.resolve.policy import timeouts

    connect, read = timeouts()
    return httpx.Timeout(read, connect=connect)


def read_prefix(client: Any, url: str, headers: dict[str, str], start: int, size: int,
                on_error: Any = None) -> bytes:
    """Bytes [start, start+size) of `url`, asked for with a Range request and read as a stream, so a server
    that ignores Range still sends no more than `size` bytes before the connection is closed."""
    want = {**headers, "Range": f"bytes={start}-{start + size - 1}"}
    STATS.requests += 1
    with client.stream("GET", url, headers=want, timeout=httpx_timeout()) as r:
        if r.status_code >= 400:
            r.read()
            STATS.bytes_read += len(r.content)
            if on_error is not None:
                on_error(r)
            r.raise_for_status()
        skip = start if r.status_code == 200 else 0  # Range ignored: the body starts at byte 0
        out = bytearray()
        for chunk in r.iter_bytes():
            STATS.bytes_read += len(chunk)
            if skip:
                cut = min(skip, len(chunk))
                chunk, skip = chunk[cut:], skip - cut
            out += chunk
            if len(out) >= size:
                break
        return bytes(out[:size])


def is_network_failure(exc: BaseException) -> bool:
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx is a dependency
        return False
    if isinstance(exc, (httpx.TransportError, httpx.TimeoutException)):
        return True
    if isinstance(exc, httpx.HTTPStatusError) and exc.response is not None and exc.response.status_code >= 500:
        return True
    return isinstance(exc, OSError)

"""A misbehaving HTTP server for hang tests, run as its own process:

    python bad_server.py silent PORT      accept connections, never answer a byte
    python bad_server.py midstream PORT   answer like an OpenAI-compatible server, then, two chunks
                                          into the first streamed reply, SIGKILL itself

It stands in for engines in states a real one reaches only by accident (a wedged process; a crash
mid-reply); the replies copy the shapes of vLLM's OpenAI server (GET /health 200 with an empty
body, /v1/models `{"object": "list", "data": [{"id": …}]}`, server-sent events ending
`data: [DONE]`). It binds 127.0.0.1 only and exits by itself after LIFETIME_S.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading

LIFETIME_S = 120.0
MODEL = "tiny"


def _reply(conn: socket.socket, status: str, body: bytes, ctype: str = "application/json") -> None:
    conn.sendall(f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body)


def _read_request(conn: socket.socket) -> tuple[str, str, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return "", "", b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = next((int(ln.split(":", 1)[1]) for ln in lines[1:] if ln.lower().startswith("content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return method, path, body


def _chunk(text: str) -> bytes:
    event = {"object": "chat.completion.chunk", "model": MODEL, "choices": [{"index": 0, "delta": {"content": text}}]}
    payload = f"data: {json.dumps(event)}\n\n".encode()
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


def _midstream(conn: socket.socket) -> None:
    while True:
        method, path, body = _read_request(conn)
        if not method:
            return
        if path == "/health":
            _reply(conn, "200 OK", b"")
        elif path == "/v1/models":
            _reply(conn, "200 OK", json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode())
        elif path == "/v1/chat/completions" and json.loads(body or b"{}").get("stream"):
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            conn.sendall(_chunk("Hello") + _chunk(" there"))
            os.kill(os.getpid(), signal.SIGKILL)  # die mid-reply, as a crashed engine does
        elif path == "/v1/chat/completions":
            reply = {"object": "chat.completion", "model": MODEL,
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}}]}
            _reply(conn, "200 OK", json.dumps(reply).encode())
        else:
            _reply(conn, "404 Not Found", b'{"detail":"Not Found"}')


def main() -> None:
    mode, port = sys.argv[1], int(sys.argv[2])
    threading.Timer(LIFETIME_S, lambda: os._exit(0)).start()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    held = []
    while True:
        conn, _ = srv.accept()
        if mode == "silent":
            held.append(conn)  # keep it open, say nothing
        else:
            threading.Thread(target=_midstream, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()

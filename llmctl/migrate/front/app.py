"""The ASGI application (Starlette): Ollama's native API served on top of an OpenAI-compatible backend.

Routes and answers follow ollama v0.32.15 server/routes.go GenerateRoutes (l.1841): `GET|HEAD /`
("Ollama is running"), `GET|HEAD /api/version`, `GET|HEAD /api/tags`, `GET /api/ps`,
`POST /api/show`, `/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`; and the front's own
`GET /health` (readiness: the backend serves every model).

Streaming keeps backpressure end to end: each backend SSE line is read from the socket only when the
previous NDJSON line has been handed to the server, whose `send` waits while the client's socket
buffer is full; nothing collects the whole answer except a non-streaming request, which Ollama also
answers in one object. A client that disconnects cancels the backend request (streaming: Starlette
cancels the body iterator; non-streaming: `_unless_disconnected`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from llmctl.migrate.front.config import FrontConfig, FrontModel, capabilities
from llmctl.migrate.front.names import NameIndex, display_shortest, full
from llmctl.migrate.front.options import OptionError, check_options, merged, to_openai
from llmctl.migrate.front.translate import (
    RequestError,
    StreamState,
    backend_error_message,
    created_at,
    embed_inputs,
    generate_messages,
    logprob_params,
    normalize,
    openai_message,
    response_format,
    think_params,
    with_modelfile,
)
from llmctl.typed import dump

log = logging.getLogger("llmctl.migrate.front")

NDJSON = "application/x-ndjson"  # server/routes.go streamResponse
# Largest request body read: a chat with several base64 images stays well below it; Ollama sets no limit
# (gin reads the body whole), the front bounds what one client can make it hold.
MAX_BODY_BYTES = 256 * 2**20  # default; --max-body-mib
# A Go time.Duration of math.MaxInt64: what a keep-alive of "forever" adds to now in /api/ps.
_FOREVER_NS = 2**63 - 1


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, ensure_ascii=False, separators=(",", ":")), status_code=status,
                    media_type="application/json; charset=utf-8")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def _line(data: Any) -> bytes:
    return (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


class Front:
    def __init__(self, config: FrontConfig, transport: httpx.AsyncBaseTransport | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES):
        self.config = config
        self.max_body_bytes = max_body_bytes
        self.index = NameIndex.build(((m.name, *m.aliases), m) for m in config.models)
        self._transport = transport
        self.client: httpx.AsyncClient | None = None
        self.started_ns = time.time_ns()

    # ------------------------------------------------------------------ backend

    async def open(self) -> None:
        t = self.config.timeouts
        headers = {}
        key = self.config.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        # One connection per request: a pooled idle connection the backend has closed meanwhile
        # (llama-server closes idle keep-alive connections) would fail the next request.
        self.client = httpx.AsyncClient(
            base_url=self.config.backend, headers=headers, transport=self._transport,
            timeout=httpx.Timeout(connect=t.connect_s, read=t.read_s, write=t.connect_s * 6, pool=t.connect_s * 6),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    def _unreachable(self, exc: Exception) -> RequestError:
        if isinstance(exc, httpx.TimeoutException):
            return RequestError(504, f"the model backend at {self.config.backend} did not answer in time "
                                     f"({type(exc).__name__})")
        return RequestError(502, f"cannot reach the model backend at {self.config.backend}: "
                                 f"{type(exc).__name__}: {exc or 'connection failed'}")

    async def _open_stream(self, path: str, body: dict[str, Any], model: str) -> httpx.Response:
        assert self.client is not None
        request = self.client.build_request("POST", path, json=body)
        try:
            resp = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if resp.status_code >= 400:
            try:
                raw = await resp.aread()
            except httpx.HTTPError:
                raw = b""
            finally:
                await resp.aclose()
            raise self._backend_error(resp.status_code, raw, model)
        return resp

    def _backend_error(self, status: int, raw: bytes, model: str) -> RequestError:
        message = backend_error_message(raw)
        if status == 404 and "model" in message.lower():
            # the backend does not serve the model (vLLM: "The model `x` does not exist."): Ollama's words
            return RequestError(404, f"model '{model}' not found")
        return RequestError(status, message)

    async def _events(self, resp: httpx.Response, state: StreamState) -> AsyncIterator[dict[str, Any]]:
        """The decoded `data:` objects of an SSE stream, one at a time as they arrive. A stream that
        ends before its `[DONE]` and before any finish_reason was cut off (the backend died)."""
        try:
            async for line in resp.aiter_lines():
                if not line or line.startswith(":"):
                    continue
                data = line[5:].strip() if line.startswith("data:") else line.strip()
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError:
                    raise RequestError(500, f"the backend sent a line that is not JSON: {data[:200]!r}") from None
                if isinstance(event, dict):
                    yield event
            if state.finish_reason is None:
                raise RequestError(502, "the model backend stream broke off before the answer ended")
        except httpx.HTTPError as exc:
            raise RequestError(502 if not isinstance(exc, httpx.TimeoutException) else 504,
                               f"the model backend stream broke off: {type(exc).__name__}: {exc}") from None
        finally:
            await resp.aclose()

    async def _post_json(self, path: str, body: dict[str, Any], model: str) -> dict[str, Any]:
        assert self.client is not None
        try:
            resp = await self.client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if resp.status_code >= 400:
            raise self._backend_error(resp.status_code, resp.content, model)
        try:
            return resp.json()
        except ValueError:
            raise RequestError(500, "the backend's answer is not JSON") from None

    # ------------------------------------------------------------------ request helpers

    async def _body(self, request: Request) -> dict[str, Any]:
        raw = bytearray()
        async for part in request.stream():  # read with a cap: a body is never held beyond the limit
            raw.extend(part)
            if len(raw) > self.max_body_bytes:
                raise RequestError(413, f"request body larger than {self.max_body_bytes / 2**20:g} MiB")
        if not raw.strip():
            raise RequestError(400, "missing request body")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RequestError(400, f"invalid JSON in request body: {exc}") from None
        if not isinstance(data, dict):
            raise RequestError(400, "the request body must be a JSON object")
        return data

    def _model(self, name: Any, *, missing: tuple[int, str]) -> FrontModel:
        if not isinstance(name, str) or not name.strip():
            raise RequestError(*missing)
        entry = self.index.find(name)
        if entry is None:
            raise RequestError(404, f"model '{name}' not found")
        return entry

    @staticmethod
    def _check_capabilities(model: FrontModel, name: str, endpoint: str, body: dict[str, Any]) -> None:
        """Refuse what the old server would have refused, when its capabilities are known (server/routes.go
        ChatHandler l.2610-2632 and GenerateHandler: thinking, then scheduleRunner -> CheckCapabilities)."""
        caps = capabilities(model)
        if caps is None:
            return
        think = body.get("think")
        if think not in (None, False) and "thinking" not in caps:
            raise RequestError(400, f'"{name}" does not support thinking')
        if "completion" not in caps:
            raise RequestError(400, f'"{name}" does not support {endpoint}')
        if body.get("tools") and "tools" not in caps:
            raise RequestError(400, f"{full(model.name)} does not support tools")

    @staticmethod
    def _options(model: FrontModel, body: dict[str, Any]) -> dict[str, Any]:
        try:
            request_opts = check_options(body.get("options"))
        except OptionError as exc:
            raise RequestError(500, str(exc)) from None  # modelOptions -> handleScheduleError default (500)
        return to_openai(merged(model.options, request_opts))

    async def _run(self, request: Request, path: str, payload: dict[str, Any], state: StreamState,
                   stream: bool) -> Response:
        payload = {**payload, "stream": True, "stream_options": {"include_usage": True}}
        state.sent()
        resp = await self._open_stream(path, payload, state.model)
        events = self._events(resp, state)
        if not stream:
            async def collect() -> None:
                try:
                    async for event in events:
                        state.event(event)
                finally:
                    await events.aclose()

            if not await _unless_disconnected(request, collect()):
                return Response(status_code=499)  # nobody is listening (Ollama's "request canceled" code)
            return _json(state.final(whole=True))

        async def body() -> AsyncIterator[bytes]:
            try:
                async for event in events:
                    chunk = state.event(event)
                    if chunk is not None:
                        yield _line(chunk)
                yield _line(state.final(whole=False))
            except RequestError as exc:
                log.warning("%s: stream ended with an error: %s", path, exc.message)
                yield _line({"error": exc.message})  # after the headers: an error line (streamResponse)
            finally:
                await events.aclose()

        return StreamingResponse(body(), media_type=NDJSON)

    # ------------------------------------------------------------------ handlers

    async def chat(self, request: Request) -> Response:
        body = await self._body(request)
        model = self._model(body.get("model"), missing=(400, "model is required"))
        params = logprob_params(body.get("logprobs"), body.get("top_logprobs"), chat=True)
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            raise RequestError(400, "messages must be a list")
        self._check_capabilities(model, body["model"], "chat", body)
        if not messages:  # load / unload (server/routes.go ChatHandler l.2504-2516, l.2645-2652)
            unload = _keep_alive_zero(body.get("keep_alive"))
            return _json({"model": body["model"], "created_at": created_at(),
                          "message": {"role": "assistant", "content": ""}, "done": True,
                          "done_reason": "unload" if unload else "load"})
        model_messages = [dump(m) for m in model.messages]
        msgs = with_modelfile([_lower_role(m) for m in messages], model.system, model_messages)
        payload: dict[str, Any] = {"model": model.served_name, "messages": [openai_message(m) for m in msgs]}
        payload.update(self._options(model, body))
        payload.update(params)
        payload.update(think_params(body.get("think")))
        fmt = response_format(body.get("format"))
        if fmt:
            payload["response_format"] = fmt
        if body.get("tools"):
            payload["tools"] = body["tools"]
        state = StreamState(model=body["model"], chat=True, include_top=bool(body.get("top_logprobs")))
        return await self._run(request, "/v1/chat/completions", payload, state, _stream(body))

    async def generate(self, request: Request) -> Response:
        body = await self._body(request)
        name = body.get("model")
        model = self._model(name, missing=(404, f"model '{name or ''}' not found"))
        params = logprob_params(body.get("logprobs"), body.get("top_logprobs"), chat=False)
        prompt = body.get("prompt") or ""
        if not isinstance(prompt, str):
            raise RequestError(400, "prompt must be a string")
        self._check_capabilities(model, name, "generate", body)
        if not prompt:  # load / unload (GenerateHandler l.404-416, l.478-485)
            unload = _keep_alive_zero(body.get("keep_alive"))
            return _json({"model": name, "created_at": created_at(), "response": "", "done": True,
                          "done_reason": "unload" if unload else "load"})
        raw, suffix = bool(body.get("raw")), body.get("suffix") or ""
        if raw and (body.get("template") or body.get("system") or body.get("context")):
            raise RequestError(400, "raw mode does not support template, system, or context")
        if body.get("template"):
            log.info("generate: a per-request template cannot be applied; the backend's chat template is used")
        fmt = response_format(body.get("format"))
        state = StreamState(model=name, chat=not (raw or suffix), shape="generate", include_top=bool(body.get("top_logprobs")))
        options = self._options(model, body)
        if raw or suffix:
            # the prompt as it is (raw), or fill-in-the-middle: the completions API
            payload: dict[str, Any] = {"model": model.served_name, "prompt": prompt, **options, **params}
            if suffix:
                payload["suffix"] = suffix
            if fmt:
                payload["response_format"] = fmt
            return await self._run(request, "/v1/completions", payload, state, _stream(body))
        messages = generate_messages(prompt, body.get("system"), model.system,
                                     [dump(m) for m in model.messages], body.get("images") or [],
                                     with_history=body.get("context") is None)
        payload = {"model": model.served_name, "messages": messages, **options,
                   **logprob_params(body.get("logprobs"), body.get("top_logprobs"), chat=True),
                   **think_params(body.get("think"))}
        if fmt:
            payload["response_format"] = fmt
        return await self._run(request, "/v1/chat/completions", payload, state, _stream(body))

    async def embed(self, request: Request) -> Response:
        start = time.monotonic_ns()
        body = await self._body(request)
        name = body.get("model")
        inputs = embed_inputs(body.get("input"))
        model = self._model(name, missing=(404, f"model '{name or ''}' not found"))
        if not inputs:
            return _json({"model": name, "embeddings": []})
        payload: dict[str, Any] = {"model": model.served_name, "input": inputs, "encoding_format": "float"}
        truncate = body.get("truncate")
        if truncate is not False:
            # Ollama truncates an over-long input to the context by default; vLLM does so when asked
            # (truncate_prompt_tokens -1 = its max model length). Backends without it ignore the key.
            payload["truncate_prompt_tokens"] = -1
        loaded = time.monotonic_ns()
        try:
            data = await self._post_json("/v1/embeddings", payload, name)
        except RequestError as exc:
            if truncate is False and exc.status == 400:
                raise RequestError(400, "the input length exceeds the context length") from None
            raise
        rows = sorted(data.get("data") or [], key=lambda d: d.get("index", 0))
        dims = body.get("dimensions") or 0
        vectors = []
        for row in rows:
            vec = normalize([float(v) for v in row.get("embedding") or []])
            if isinstance(dims, int) and 0 < dims < len(vec):
                vec = normalize(vec[:dims])  # cut, then normalise again (EmbedHandler)
            vectors.append(vec)
        out: dict[str, Any] = {"model": name, "embeddings": vectors,
                               "total_duration": max(time.monotonic_ns() - start, 1),
                               "load_duration": max(loaded - start, 1)}
        tokens = int((data.get("usage") or {}).get("prompt_tokens") or 0)
        if tokens:
            out["prompt_eval_count"] = tokens
        return _json(out)

    async def embeddings(self, request: Request) -> Response:
        """The legacy endpoint: one prompt, one vector as the model gives it, NOT normalised
        (server/routes.go EmbeddingsHandler)."""
        body = await self._body(request)
        name = body.get("model")
        if not isinstance(name, str) or not name.strip():
            raise RequestError(400, "model is required")
        model = self.index.find(name)
        if model is None:
            raise RequestError(404, f'model "{name}" not found, try pulling it first')
        prompt = body.get("prompt") or ""
        if not prompt:
            return _json({"embedding": []})
        data = await self._post_json("/v1/embeddings", {"model": model.served_name, "input": prompt,
                                                        "encoding_format": "float"}, name)
        rows = data.get("data") or [{}]
        return _json({"embedding": [float(v) for v in rows[0].get("embedding") or []]})

    async def tags(self, request: Request) -> Response:
        models = [self._list_entry(m) for m in self.config.models]
        if request.method == "HEAD":
            return Response(status_code=200, media_type="application/json; charset=utf-8")
        return _json({"models": models})

    def _list_entry(self, m: FrontModel) -> dict[str, Any]:
        """api/types.go ListModelResponse (l.822)."""
        show = m.show or {}
        name = display_shortest(m.name)
        entry: dict[str, Any] = {
            "name": name, "model": name,
            "modified_at": m.modified_at or show.get("modified_at") or created_at(self.started_ns),
            "size": m.size, "digest": m.digest.removeprefix("sha256:"),
            "details": m.details or show.get("details") or _details(),
        }
        caps = show.get("capabilities") or (["embedding"] if m.embedding else ["completion"])
        entry["capabilities"] = caps
        return entry

    async def ps(self, request: Request) -> Response:
        """api/types.go ProcessModelResponse (l.835). A model counts as loaded when the backend lists
        its served name in /v1/models; the backend never unloads it, so it expires "never" (what
        Ollama shows for a negative keep-alive: now + the longest Go duration)."""
        served = await self._served_names()
        now = time.time_ns()
        models = []
        for m in self.config.models:
            if m.served_name not in served:
                continue
            show = m.show or {}
            name = display_shortest(m.name)
            models.append({
                "name": name, "model": name, "size": m.size, "digest": m.digest.removeprefix("sha256:"),
                "details": m.details or show.get("details") or _details(),
                "expires_at": created_at(now + _FOREVER_NS), "size_vram": 0,
                "context_length": m.context_length or 0,
            })
        return _json({"models": models})

    async def _served_names(self) -> set[str]:
        try:
            return await self._backend_models()
        except RequestError:
            return set()

    async def _backend_models(self) -> set[str]:
        """The model ids the backend lists in /v1/models (RequestError when it cannot say)."""
        assert self.client is not None
        try:
            resp = await self.client.get("/v1/models", timeout=self.config.timeouts.connect_s)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if resp.status_code != 200:
            raise RequestError(503, f"the model backend answered /v1/models with {resp.status_code}: "
                                    f"{backend_error_message(resp.content)}")
        try:
            return {str(d.get("id")) for d in (resp.json().get("data") or []) if isinstance(d, dict)}
        except (ValueError, AttributeError):
            raise RequestError(503, "the model backend's /v1/models answer is not a model list") from None

    async def health(self, request: Request) -> Response:
        """Not Ollama's (its `/` says only that the server is up): 200 when the backend answers
        /v1/models and serves every model of front.json, else 503 with the reason - for a proxy's
        readiness check."""
        try:
            served = await self._backend_models()
        except RequestError as exc:
            return _json({"status": "unavailable", "error": exc.message}, 503)
        missing = sorted({m.served_name for m in self.config.models} - served)
        if missing:
            return _json({"status": "unavailable", "error": f"the backend does not serve {', '.join(missing)}"}, 503)
        return _json({"status": "ok"})

    async def show(self, request: Request) -> Response:
        body = await self._body(request)
        name = body.get("model") or body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise RequestError(400, "model is required")
        model = self.index.find(name)
        if model is None:
            raise RequestError(404, f"model '{display_shortest(name)}' not found")
        if model.show is not None:
            out = json.loads(json.dumps(model.show))
        else:
            out = {
                "parameters": _parameters_text(model.options),
                "template": model.template or "",
                "details": model.details or _details(),
                "model_info": {},
                "capabilities": ["embedding"] if model.embedding else ["completion"],
                "modified_at": model.modified_at or created_at(self.started_ns),
            }
            if model.system:
                out["system"] = model.system
            if model.messages:
                out["messages"] = [dump(m) for m in model.messages]
            out = {k: v for k, v in out.items() if v != ""} | {"model_info": {}}
        if body.get("system"):
            out["system"] = body["system"]
        return _json(out)

    async def version(self, request: Request) -> Response:
        return _json({"version": self.config.version})

    async def root(self, request: Request) -> Response:
        return PlainTextResponse("Ollama is running")


def _details() -> dict[str, Any]:
    """api/types.go ModelDetails (l.933) with nothing known."""
    return {"parent_model": "", "format": "", "family": "", "families": None, "parameter_size": "",
            "quantization_level": ""}


def _parameters_text(options: dict[str, Any]) -> str:
    lines = []
    for key, val in options.items():
        for v in val if isinstance(val, list) else [val]:
            lines.append(f"{key:<30} {json.dumps(v) if isinstance(v, str) else v}")
    return "\n".join(lines)


async def _unless_disconnected(request: Request, work) -> bool:
    """Run `work`; cancel it if the client disconnects first (then the backend request is closed and
    the engine stops generating for nobody). True when the work finished."""
    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()  # re-raise a RequestError from the work
    return True


def _stream(body: dict[str, Any]) -> bool:
    return body.get("stream") is not False  # Stream *bool: true unless sent false


def _keep_alive_zero(value: Any) -> bool:
    return value in (0, "0", "0s", "0m", "0h", 0.0)


def _lower_role(msg: Any) -> Any:
    if isinstance(msg, dict) and isinstance(msg.get("role"), str):
        return {**msg, "role": msg["role"].lower()}  # Message.UnmarshalJSON lower-cases the role
    return msg


def create_app(config: FrontConfig, *, transport: httpx.AsyncBaseTransport | None = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    front = Front(config, transport, max_body_bytes)

    def wrap(handler):
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestError as exc:
                if exc.status >= 500:
                    log.warning("%s %s: %d %s", request.method, request.url.path, exc.status, exc.message)
                return _error(exc.status, exc.message)
        return endpoint

    routes = [
        Route("/", wrap(front.root), methods=["GET", "HEAD"]),
        Route("/health", wrap(front.health), methods=["GET", "HEAD"]),
        Route("/api/version", wrap(front.version), methods=["GET", "HEAD"]),
        Route("/api/tags", wrap(front.tags), methods=["GET", "HEAD"]),
        Route("/api/ps", wrap(front.ps), methods=["GET"]),
        Route("/api/show", wrap(front.show), methods=["POST"]),
        Route("/api/chat", wrap(front.chat), methods=["POST"]),
        Route("/api/generate", wrap(front.generate), methods=["POST"]),
        Route("/api/embed", wrap(front.embed), methods=["POST"]),
        Route("/api/embeddings", wrap(front.embeddings), methods=["POST"]),
    ]

    async def not_found(request: Request, exc: HTTPException) -> Response:
        # gin's answers for an unknown path / a wrong method (HandleMethodNotAllowed)
        if exc.status_code == 405:
            return PlainTextResponse("405 method not allowed", status_code=405)
        return PlainTextResponse(f"{exc.status_code} page not found" if exc.status_code == 404 else
                                 str(exc.detail), status_code=exc.status_code)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await front.open()
        try:
            yield
        finally:
            await front.close()

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: not_found})
    app.state.front = front
    return app

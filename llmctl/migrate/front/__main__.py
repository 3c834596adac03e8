"""`python -m llmctl.migrate.front --config front.json [--host H] [--port N]`: run the front (uvicorn).

Exit codes: 2 bad configuration or arguments (a message, never a traceback). SIGTERM/SIGINT stop
accepting connections and let running answers finish for --graceful-timeout seconds; then uvicorn
re-raises the signal, so the process ends as killed by it (what service managers expect of a stop).
"""

from __future__ import annotations

import argparse
import logging
import sys

from llmctl.errors import InputError
from llmctl.typed import updated


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m llmctl.migrate.front",
                                description="Serve Ollama's native API on top of an OpenAI-compatible backend.")
    p.add_argument("--config", required=True, help="front.json (schema llmctl.migrate.front/v1)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=11434, help="port to listen on (default 11434, Ollama's)")
    p.add_argument("--connect-timeout", type=float, default=None, help="seconds to connect to the backend (overrides front.json)")
    p.add_argument("--read-timeout", type=float, default=None, help="seconds between two chunks of a backend answer (overrides front.json)")
    p.add_argument("--max-body-mib", type=float, default=256.0, help="largest request body accepted (default 256 MiB)")
    p.add_argument("--graceful-timeout", type=float, default=30.0, help="seconds running requests get to finish on SIGTERM")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = p.parse_args(argv)
    if not 0 < args.port < 65536:
        p.error(f"--port must be 1-65535, got {args.port}")
    if not args.max_body_mib > 0:
        p.error(f"--max-body-mib must be positive, got {args.max_body_mib}")

    from llmctl.migrate.front.config import load_front_config

    try:
        config = load_front_config(args.config)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.connect_timeout is not None or args.read_timeout is not None:
        t = updated(config.timeouts, **{k: v for k, v in (("connect_s", args.connect_timeout),
                                                               ("read_s", args.read_timeout)) if v is not None})
        if t.connect_s <= 0 or t.read_s <= 0:
            print("error: timeouts must be positive", file=sys.stderr)
            return 2
        config = updated(config, timeouts=t)
    try:
        import uvicorn

        from llmctl.migrate.front.app import create_app
    except ImportError as exc:
        print(f"error: the front needs Starlette and uvicorn ({exc.name} is missing)\n"
              "  hint: reinstall llmctl (pip install llmctl): starlette and uvicorn are among its dependencies", file=sys.stderr)
        return 2

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per backend request otherwise
    server = uvicorn.Server(uvicorn.Config(
        create_app(config, max_body_bytes=int(args.max_body_mib * 2**20)), host=args.host, port=args.port, log_level=args.log_level,
        timeout_graceful_shutdown=args.graceful_timeout, lifespan="on", access_log=False,
        server_header=False))
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        print(f"error: could not listen on {args.host}:{args.port}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

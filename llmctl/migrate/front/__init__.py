"""An Ollama-compatible front: Ollama's native API (/api/chat, /api/generate, /api/embed, /api/tags,
/api/show, /api/version, /api/ps) served on top of any OpenAI-compatible backend (vLLM), so clients
written for Ollama keep working after a migration.

Run: `python -m llmctl.migrate.front --config front.json --host 127.0.0.1 --port 11434`.
The web framework (Starlette, uvicorn) is imported only by `app` and `__main__`, so importing this
package (the config loader, the ServiceSpec builder) stays light.
"""

from llmctl.migrate.front.config import FrontConfig, FrontModel, load_front_config, parse_front_config
from llmctl.migrate.front.service import front_service

__all__ = ["FrontConfig", "FrontModel", "front_service", "load_front_config", "parse_front_config"]

"""The traffic layer: HAProxy as a plain process on the service's address and port, in front of the
engine replicas on private ports. Its configuration is rendered from the ServiceSpec (health checks
on the engine's readiness path, streamed answers passed on as they come); weights and drains change
at run time over its admin socket, so an update moves traffic without dropping a request."""

from llmctl.traffic.config import Server, render_config
from llmctl.traffic.proxy import Proxy
from llmctl.traffic.runtime import AdminSocket

__all__ = ["AdminSocket", "Proxy", "Server", "render_config"]

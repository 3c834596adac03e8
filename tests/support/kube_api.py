"""A recorded Kubernetes API server for kubectl (a real API server cannot run here).

It answers the discovery documents kubectl reads before `kubectl get secret` (GET /api, /apis,
/api/v1) and GET /api/v1/namespaces/<ns>/secrets/<name> from a dict of secrets. Shapes follow the
Kubernetes API reference (APIVersions, APIGroupList, APIResourceList, Secret, and the Status object
of a 404: reason NotFound), trimmed to the fields kubectl reads. Every request path is recorded, so a
test can see which namespace kubectl asked for.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
        {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
         "verbs": ["get", "list", "watch"]},
    ]},
}


class KubeApi:
    def __init__(self, secrets: dict[tuple[str, str], dict[str, str]]) -> None:
        self.secrets = secrets  # (namespace, name) -> data (base64 values)
        self.paths: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                api.paths.append(path)
                parts = path.strip("/").split("/")
                if path in DISCOVERY:
                    self._send(200, DISCOVERY[path])
                elif len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "secrets":
                    ns, name = parts[3], parts[5]
                    if (ns, name) in api.secrets:
                        self._send(200, {"kind": "Secret", "apiVersion": "v1", "type": "Opaque",
                                         "metadata": {"name": name, "namespace": ns},
                                         "data": api.secrets[(ns, name)]})
                    else:
                        self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                         "message": f'secrets "{name}" not found', "reason": "NotFound",
                                         "details": {"name": name, "kind": "secrets"}, "code": 404})
                else:
                    self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                     "message": "the server could not find the requested resource",
                                     "reason": "NotFound", "code": 404})

            def _send(self, code, doc):
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def kubeconfig(self, namespace: str = "default") -> str:
        return f"""apiVersion: v1
kind: Config
clusters:
- name: recorded
  cluster: {{server: "{self.url}"}}
users:
- name: me
  user: {{token: not-a-secret}}
contexts:
- name: recorded
  context: {{cluster: recorded, user: me, namespace: {namespace}}}
- name: other
  context: {{cluster: recorded, user: me}}
current-context: other
"""

    def __enter__(self) -> "KubeApi":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

"""A stand-in for a Kubernetes API server on loopback (no cluster runs here).

It speaks the REST paths the official `kubernetes` client uses for ConfigMaps, Services and
Deployments (read, create) and records every request, so tests can run the deployer's real
client code and check that a second apply creates nothing and never patches or replaces.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_COLLECTIONS = {
    "configmaps": r"/api/v1/namespaces/(?P<ns>[^/]+)/configmaps",
    "services": r"/api/v1/namespaces/(?P<ns>[^/]+)/services",
    "deployments": r"/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments",
}


class FakeKubernetesApi:
    """Objects by (collection, namespace, name), and the log of requests."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.requests: list[tuple[str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                return

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self):
                path = self.path.split("?", 1)[0]
                for collection, pattern in _COLLECTIONS.items():
                    match = re.fullmatch(pattern + r"(?:/(?P<name>[^/]+))?", path)
                    if match:
                        return collection, match.group("ns"), match.group("name")
                return None

            def do_GET(self) -> None:
                api.requests.append(("GET", self.path))
                route = self._route()
                key = route and (route[0], route[1], route[2])
                if key and key in api.objects:
                    self._reply(200, api.objects[key])
                else:
                    self._reply(
                        404,
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "status": "Failure",
                            "reason": "NotFound",
                            "code": 404,
                        },
                    )

            def do_POST(self) -> None:
                api.requests.append(("POST", self.path))
                route = self._route()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = (route[0], route[1], body["metadata"]["name"])
                if key in api.objects:
                    self._reply(
                        409,
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "status": "Failure",
                            "reason": "AlreadyExists",
                            "code": 409,
                        },
                    )
                    return
                api.objects[key] = body
                self._reply(201, body)

            def _refuse(self) -> None:
                api.requests.append((self.command, self.path))
                self._reply(
                    405, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 405}
                )

            do_PUT = do_PATCH = do_DELETE = _refuse

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeKubernetesApi:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

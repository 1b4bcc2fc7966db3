"""The viewer's local web server: static page + three.js files + a small JSON API.

Built on the standard library's :class:`http.server.ThreadingHTTPServer`. Only a fixed table
of files is served (the page's own files and four three.js modules from the local
``node_modules``): a request path is looked up in that table, never joined to a folder, so no
path from the browser reaches the file system. The API:

=========================  ====================================================================
``GET  /api/info``         template faces, slider centre and directions, units, colour map
``POST /api/decode``       ``{"code": [...]}`` -> ``{"vertices": [...]}`` (dataset unit, flat)
``POST /api/encode``       ``{"id": row}`` -> ``{"code": [...], "label": ...}``
``POST /api/reconstruct``  ``{"id": row}`` -> input, reconstruction, per-vertex error (mm)
=========================  ====================================================================

A bad request (unknown id, wrong code length, malformed JSON) gets HTTP 400 with
``{"error": message}``; the server keeps running.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import shutil
import subprocess
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from deep3dmm.errors import ConfigError, Deep3DMMError

__all__ = ["WEB_DIR", "THREE_FILES", "check_setup", "make_server", "setup_web"]

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"
PAGE_FILES = {"/": "index.html", "/index.html": "index.html", "/viewer.js": "viewer.js",
              "/viewer.css": "viewer.css"}  # fmt: skip
THREE_FILES = {  # URL under /vendor/three/ -> file under node_modules/three/
    "build/three.module.js": "build/three.module.js",
    "build/three.core.js": "build/three.core.js",
    "addons/controls/OrbitControls.js": "examples/jsm/controls/OrbitControls.js",
    "addons/exporters/PLYExporter.js": "examples/jsm/exporters/PLYExporter.js",
}
MAX_BODY = 1 << 20  # bytes of a JSON request


def _three_dir(web_dir: Path = WEB_DIR) -> Path:
    return web_dir / "node_modules" / "three"


def check_setup(web_dir: Path = WEB_DIR) -> None:
    """Raise :class:`ConfigError` when three.js is not installed beside the page."""
    missing = [name for name in THREE_FILES.values() if not (_three_dir(web_dir) / name).is_file()]
    if missing:
        raise ConfigError(
            f"three.js is not installed for the viewer (missing {missing[0]})",
            path=web_dir,
            fix=f"run `deep3dmm view --setup` once (npm ci --prefix {web_dir}; needs node/npm "
            "and the npm registry); the viewer then works offline",
        )


def setup_web(web_dir: Path = WEB_DIR) -> None:
    """Install three.js from the tracked package-lock.json (``npm ci``)."""
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigError("npm is not installed", fix="install Node.js 18+ with npm")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(web_dir)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ConfigError(f"npm ci failed: {done.stderr.strip().splitlines()[-1:]}", path=web_dir)
    check_setup(web_dir)


def _static_table(web_dir: Path) -> dict[str, Path]:
    table = {url: web_dir / name for url, name in PAGE_FILES.items()}
    for url, name in THREE_FILES.items():
        table[f"/vendor/three/{url}"] = _three_dir(web_dir) / name
    return table


def make_server(session, host: str = "127.0.0.1", port: int = 8000, *, web_dir: Path = WEB_DIR):
    """A :class:`ThreadingHTTPServer` answering the viewer for ``session`` (not started).

    Args:
        session: a :class:`~deep3dmm.viewer.session.ViewerSession`.
        host: interface to bind (localhost by default).
        port: TCP port (0 picks a free one).
        web_dir: folder of the page and its ``node_modules``.
    """
    check_setup(web_dir)
    static = _static_table(web_dir)
    routes = {
        "/api/decode": lambda body: {"vertices": session.decode(body.get("code")).ravel().tolist()},
        "/api/encode": lambda body: session.encode(body.get("id")),
        "/api/reconstruct": lambda body: session.reconstruct(body.get("id")),
    }
    info = json.dumps(session.info()).encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "deep3dmm-viewer"

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            log.debug("viewer: " + format, *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: dict) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def do_GET(self):  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/api/info":
                return self._send(HTTPStatus.OK, info, "application/json")
            file = static.get(path)
            if file is None:
                return self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page {path!r}"})
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if file.suffix == ".js":
                kind = "text/javascript"
            self._send(HTTPStatus.OK, file.read_bytes(), f"{kind}; charset=utf-8")

        def do_POST(self):  # noqa: N802 - http.server's name
            route = routes.get(self.path)
            if route is None:
                return self._json(HTTPStatus.NOT_FOUND, {"error": f"no such API {self.path!r}"})
            try:
                text = self.headers.get("Content-Length") or "0"
                length = int(text) if text.isdigit() else -1
                if not 0 < length <= MAX_BODY:
                    raise ConfigError(f"request body must be 1 to {MAX_BODY} bytes of JSON")
                try:
                    body = json.loads(self.rfile.read(length))
                except (ValueError, UnicodeDecodeError) as exc:
                    raise ConfigError(f"malformed JSON ({exc})") from exc
                if not isinstance(body, dict):
                    raise ConfigError("the request must be a JSON object")
                payload = route(body)
            except Deep3DMMError as exc:
                return self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            except Exception as exc:  # keep serving; the page shows the message
                log.exception("viewer: request %s failed", self.path)
                return self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": repr(exc)})
            self._json(HTTPStatus.OK, payload)

    return ThreadingHTTPServer((host, int(port)), Handler)

"""Interactive latent-space viewer: a local web page (three.js) over a trained run.

``deep3dmm view RUN`` calls :func:`open_viewer` and serves until interrupted; decoding runs
server-side in PyTorch (:mod:`deep3dmm.viewer.session`), the page is served by the standard
library (:mod:`deep3dmm.viewer.server`).
"""

from __future__ import annotations

import logging
import os

from deep3dmm.viewer.server import WEB_DIR, check_setup, make_server, setup_web
from deep3dmm.viewer.session import ViewerSession, slider_basis

__all__ = ["WEB_DIR", "ViewerSession", "check_setup", "open_viewer", "setup_web", "slider_basis"]

log = logging.getLogger(__name__)


def open_viewer(
    run_dir: str | os.PathLike,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    data: str | os.PathLike | None = None,
    checkpoint: str = "best",
    max_mm: float = 5.0,
):
    """Load a run (and its dataset) and bind the viewer's server (not yet serving).

    Args:
        run_dir: a run folder.
        host: interface to bind; localhost unless asked otherwise.
        port: TCP port (0: any free port).
        data: the prepared dataset (default: the run's own, when it can be found).
        checkpoint: ``"best"`` or ``"last"``.
        max_mm: top of the error colour scale in mm.

    Returns:
        ``(server, url)``; call ``server.serve_forever()``.

    Raises:
        CheckpointError: not a run folder, or no such checkpoint.
        ConfigError: three.js is not installed (``deep3dmm view --setup``).
    """
    from deep3dmm.errors import Deep3DMMError
    from deep3dmm.train import load_run

    run = load_run(run_dir, checkpoint=checkpoint)
    check_setup()
    if data is not None:
        dataset = run.open_dataset(data)
    else:
        try:
            dataset = run.open_dataset()
        except Deep3DMMError as exc:
            log.warning("viewer: no dataset (%s); sliders only, pass --data DIR", exc)
            dataset = None
    session = ViewerSession(run, dataset, max_mm=max_mm)
    server = make_server(session, host, port)
    bound_host, bound_port = server.server_address[:2]
    shown = "localhost" if bound_host in ("127.0.0.1", "::1") else bound_host
    return server, f"http://{shown}:{bound_port}/"

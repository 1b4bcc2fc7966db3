"""``deep3dmm view``: the interactive latent-space viewer of a run, in the browser."""

from __future__ import annotations

import argparse

from deep3dmm.commands import add_checkpoint_option, add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``view`` command."""
    view = add_command(subparsers, "view")
    view.add_argument("run", nargs="?", help="run folder written by `deep3dmm train`")
    view.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0: any)")
    view.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    view.add_argument("--data", metavar="DIR", help="prepared dataset (default: the run's)")
    view.add_argument("--max-mm", type=float, default=5.0, help="top of the error colour scale")
    view.add_argument("--setup", action="store_true", help="install three.js (npm ci) and exit")
    add_checkpoint_option(view)
    view.set_defaults(func=run_view)


def run_view(args: argparse.Namespace) -> int:
    """Serve the viewer until Ctrl-C."""
    from deep3dmm.errors import ConfigError
    from deep3dmm.viewer import WEB_DIR, open_viewer, setup_web

    if args.setup:
        setup_web()
        print(f"three.js installed in {WEB_DIR / 'node_modules'}")
        if args.run is None:
            return 0
    if args.run is None:
        raise ConfigError("view needs a run folder", fix="deep3dmm view runs/<run>")
    server, url = open_viewer(args.run, host=args.host, port=args.port, data=args.data,
                              checkpoint=args.checkpoint, max_mm=args.max_mm)  # fmt: skip
    print(f"deep3dmm viewer at {url}  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0

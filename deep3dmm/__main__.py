"""``python -m deep3dmm`` runs the command line (also under torchrun)."""

from deep3dmm.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

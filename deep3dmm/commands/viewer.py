"""``deep3dmm view``: placeholder replaced below."""


def register(subparsers):
    """Add the ``view`` command."""

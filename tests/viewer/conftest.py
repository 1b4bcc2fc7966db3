"""A ``deep3dmm view`` process on the trained test run (started once per module)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def viewer_url(trained_run_dir):
    """Start ``python -m deep3dmm view RUN --port 0`` and yield the URL it prints."""
    from deep3dmm.errors import ConfigError
    from deep3dmm.viewer import check_setup

    try:
        check_setup()
    except ConfigError as exc:
        pytest.skip(f"three.js not installed for the viewer: {exc}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "deep3dmm", "view", str(trained_run_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()  # blocks until the server is bound
        if "http://" not in line:
            process.kill()
            pytest.fail(f"view printed no URL: {line!r} {process.stderr.read()}")
        yield line.split("at ", 1)[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=30)

"""How fast the command line answers: ``--help``, ``--version`` and an argument error.

Run from the repository root: ``python benchmarks/cli_startup.py [--repeats 5]``. Each
invocation is a fresh ``python -m deep3dmm`` process (the real cost a user sees: interpreter
start plus imports); prints the median wall time per case and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CASES = {"--help": ["--help"], "--version": ["--version"], "argument error": ["train", "--bogus"]}


def time_case(argv: list[str], repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` fresh ``python -m deep3dmm ARGV`` processes."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "deep3dmm", *argv], capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    """Time each case and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for name, argv in CASES.items():
        times = time_case(argv, args.repeats)
        print(f"{name:15s} median {statistics.median(times):.3f} s  (min {min(times):.3f} s)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

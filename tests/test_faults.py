"""Faults injected and survived: a crash mid-swap, a file-size limit (disk full), bad files."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import deep3dmm.atomic as atomic
from deep3dmm.atomic import atomic_dir, recover_dir
from deep3dmm.data import IndexRow, PreparedDataset, write_prepared_dataset
from deep3dmm.mesh import Template, shapes


def spheres(path, count, scale=1.0):
    v, f = shapes.icosphere(1)
    meshes = np.stack([v * scale * (1 + 0.01 * i) for i in range(count)]).astype(np.float32)
    rows = [IndexRow("s", "q", i, f"synthetic/{i}") for i in range(count)]
    template = Template(v, f, name="sphere", unit="m")
    return write_prepared_dataset(path, template, meshes, rows, source="t", unit="m")


def test_atomic_dir_swaps_in_one_step(tmp_path, monkeypatch):
    """Where RENAME_EXCHANGE exists the target never disappears: no second rename runs."""
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    calls = []
    real = atomic.os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda *a: (calls.append(a), real(*a)))
    with atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
    if atomic._exchange(tmp_path / "d", tmp_path / "d"):  # exchange offered here
        assert calls == []
    assert [p.name for p in target.iterdir()] == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_crash_between_the_two_renames_is_restored_on_next_open(tmp_path, monkeypatch):
    """Without RENAME_EXCHANGE, a crash after moving the old folder aside loses nothing."""
    first = spheres(tmp_path / "data", 4)
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    real = atomic.os.replace

    def crash_on_second(src, dst):
        if str(dst) == str(tmp_path / "data"):  # the new folder's move into place
            raise KeyboardInterrupt("killed between the renames")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        spheres(tmp_path / "data", 6, scale=2.0)
    monkeypatch.setattr(atomic.os, "replace", real)
    assert not (tmp_path / "data").exists()  # the window the old code never closed
    reopened = PreparedDataset(tmp_path / "data")  # restores the kept folder
    assert reopened.meta["content_hash"] == first.meta["content_hash"]
    assert not recover_dir(tmp_path / "data")
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


LIMITED = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np, torch
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_faults import spheres
    from deep3dmm.errors import Deep3DMMError
    from deep3dmm.train.checkpoint import save_checkpoint, load_checkpoint
    root = Path({root!r})
    spheres(root / "data", 4)
    save_checkpoint(root / "last.pt", {{"epoch": 1, "w": torch.zeros(10)}})
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))  # Python ignores SIGXFSZ
    out = {{}}
    for name, write in (
        ("import", lambda: spheres(root / "data", 4000)),
        ("checkpoint", lambda: save_checkpoint(root / "last.pt", {{"w": torch.zeros(10**6)}})),
    ):
        try:
            write()
            out[name] = "no error"
        except Deep3DMMError as exc:
            out[name] = type(exc).__name__ + ": " + str(exc)
    out["epoch"] = load_checkpoint(root / "last.pt")["epoch"]
    out["meshes"] = len(__import__("deep3dmm.data", fromlist=["x"]).PreparedDataset(root / "data"))
    print(json.dumps(out))
    """
)


def test_file_size_limit_during_import_and_checkpoint(tmp_path):
    """RLIMIT_FSIZE stands for a full disk: typed errors, the old files intact, no leftovers."""
    script = LIMITED.format(tests=str(__import__("pathlib").Path(__file__).parent),
                            root=str(tmp_path), limit=200_000)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["import"].startswith("DatasetError") and "File too large" in out["import"]
    assert out["checkpoint"].startswith("CheckpointError") and "previous one is intact" in (
        out["checkpoint"]
    )
    assert out["epoch"] == 1 and out["meshes"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "last.pt"]


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder the test fills, then locks with :func:`_lock`; unmounted and removed after."""
    import shutil

    folder = tmp_path / "out"
    folder.mkdir()
    yield folder

    subprocess.run(["umount", str(folder)], capture_output=True)
    folder.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def _lock(folder):
    """Make ``folder`` read-only for real; skip when this machine cannot."""
    import os

    if os.geteuid() == 0:
        mount = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
        remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)],
                                 capture_output=True)  # fmt: skip
        if mount.returncode or remount.returncode:
            pytest.skip("root here cannot make a read-only bind mount")
    else:
        folder.chmod(0o555)
    probe = folder / "probe"
    try:
        probe.write_text("x")
    except OSError:
        return
    probe.unlink()
    pytest.skip("could not make the folder read-only")


def test_read_only_output_is_a_typed_error_and_keeps_the_old_files(read_only_folder):
    """Writing a dataset or a checkpoint into a read-only folder: typed errors, nothing lost."""
    import torch

    from deep3dmm.errors import CheckpointError, DatasetError
    from deep3dmm.train.checkpoint import load_checkpoint, save_checkpoint

    first = spheres(read_only_folder / "data", 4)
    save_checkpoint(read_only_folder / "last.pt", {"epoch": 1, "w": torch.zeros(10)})
    before = sorted(p.name for p in read_only_folder.iterdir())
    _lock(read_only_folder)
    with pytest.raises(DatasetError):
        spheres(read_only_folder / "data", 6, scale=2.0)
    with pytest.raises(CheckpointError):
        save_checkpoint(read_only_folder / "last.pt", {"epoch": 2, "w": torch.ones(10)})
    assert sorted(p.name for p in read_only_folder.iterdir()) == before
    assert load_checkpoint(read_only_folder / "last.pt")["epoch"] == 1
    assert PreparedDataset(read_only_folder / "data").meta["content_hash"] == (
        first.meta["content_hash"]
    )

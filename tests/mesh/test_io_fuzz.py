"""Fuzzing the readers of user files: a valid result or a typed error, fast, never a crash.

Every case starts from a valid file (PLY ascii/binary, OBJ, OFF of a small icosphere; a
prepared dataset's meta.json / index.csv) and damages it: truncation, byte flips, huge
element counts in the header, out-of-range or negative face indices, non-UTF-8 bytes.
"""

import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deep3dmm.errors import Deep3DMMError
from deep3dmm.mesh import read_mesh, shapes, write_mesh

FORMATS = ("ascii.ply", "binary.ply", "mesh.obj", "mesh.off")
FUZZ = settings(
    max_examples=60,
    deadline=None,  # timed below, with the allocation, per case
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Originals(dict):
    """The valid files as bytes, per format (a short repr keeps failure reports readable)."""

    def __repr__(self):
        return f"Originals({', '.join(self)})"


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """The valid files, as bytes, per format."""
    root = tmp_path_factory.mktemp("fuzz")
    vertices, faces = shapes.icosphere(1)
    out = Originals()
    for name in FORMATS:
        path = root / name
        write_mesh(path, vertices, faces, binary=name.startswith("binary"))
        out[name] = path.read_bytes()
        read_mesh(path)  # warm up trimesh's lazy imports, so the timing below is the parse
    return out


def check_read(path, data: bytes) -> None:
    """read_mesh(path) returns a valid mesh or raises a typed error, in < 1 s and < 64 MB.

    Time is CPU time of this process (the machine is shared; wall time would measure the
    load), allocation the peak traced by tracemalloc (NumPy reports its buffers to it).
    """
    path.write_bytes(data)
    tracemalloc.start()
    start = time.process_time()
    try:
        vertices, faces = read_mesh(path)
    except Deep3DMMError:
        pass
    else:
        assert vertices.ndim == 2 and vertices.shape[1] == 3 and len(vertices) > 0
        assert faces.ndim == 2 and faces.shape[1] == 3
        assert faces.min() >= 0 and faces.max() < len(vertices)
        assert np.isfinite(vertices).all()
    finally:
        seconds = time.process_time() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert seconds < 1.0, f"{seconds:.2f} s for {len(data)} bytes"
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MB allocated for {len(data)} bytes"


def suffix_of(name):
    return "." + name.split(".")[-1]


@FUZZ
@given(name=st.sampled_from(FORMATS), cut=st.floats(0, 1))
def test_truncated(originals, tmp_path, name, cut):
    data = originals[name]
    check_read(tmp_path / f"t{suffix_of(name)}", data[: int(len(data) * cut)])


@FUZZ
@given(
    name=st.sampled_from(FORMATS),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_byte_flips(originals, tmp_path, name, flips):
    data = bytearray(originals[name])
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    check_read(tmp_path / f"f{suffix_of(name)}", bytes(data))


@FUZZ
@given(
    name=st.sampled_from(("ascii.ply", "binary.ply", "mesh.off")),
    count=st.one_of(st.integers(10**6, 10**13), st.integers(-(10**6), -1), st.just(2**63 - 1)),
    which=st.sampled_from(("vertex", "face")),
)
def test_huge_or_negative_counts_in_the_header(originals, tmp_path, name, count, which):
    data = originals[name]
    if name.endswith(".ply"):
        head, sep, body = data.partition(b"end_header\n")
        lines = head.split(b"\n")
        for i, line in enumerate(lines):
            if line.startswith(b"element " + which.encode()):
                lines[i] = b"element %s %d" % (which.encode(), count)
        data = b"\n".join(lines) + sep + body
    else:  # OFF: the line after "OFF" holds "V F E"
        lines = data.split(b"\n")
        v, f, e = lines[1].split()
        lines[1] = b" ".join(
            (str(count).encode(), f, e) if which == "vertex" else (v, str(count).encode(), e)
        )
        data = b"\n".join(lines)
    check_read(tmp_path / f"h{suffix_of(name)}", data)


@FUZZ
@given(name=st.sampled_from(FORMATS), index=st.integers(-(2**40), 2**40))
def test_bad_face_indices(tmp_path, name, index):
    vertices, faces = shapes.icosphere(1)
    faces = faces.copy()
    faces[len(faces) // 2, 1] = index
    path = tmp_path / f"i{suffix_of(name)}"
    if not -(2**31) <= index < 2**31:  # not storable in the int32 PLY/OBJ/OFF indices: text
        return
    write_mesh(path, vertices, faces, binary=name.startswith("binary"))
    check_read(path, path.read_bytes())


@FUZZ
@given(
    name=st.sampled_from(("ascii.ply", "mesh.obj", "mesh.off")),
    junk=st.binary(min_size=1, max_size=64),
)
def test_non_utf8_text(originals, tmp_path, name, junk):
    data = originals[name]
    middle = len(data) // 2
    check_read(tmp_path / f"u{suffix_of(name)}", data[:middle] + b"\xff\xfe" + junk + data[middle:])


# ------------------------------------------------------------------ prepared datasets
@pytest.fixture(scope="module")
def dataset_files(tmp_path_factory):
    from deep3dmm.data import IndexRow, write_prepared_dataset
    from deep3dmm.mesh import Template

    v, f = shapes.icosphere(1)
    meshes = np.stack([v * (1 + 0.1 * i) for i in range(4)]).astype(np.float32)
    rows = [IndexRow("s", "q", i, f"x/{i}") for i in range(4)]
    path = tmp_path_factory.mktemp("ds") / "d"
    write_prepared_dataset(path, Template(v, f, unit="m"), meshes, rows, source="t", unit="m")
    return path


def check_open(folder) -> None:
    from deep3dmm.data import PreparedDataset

    start = time.process_time()
    try:
        dataset = PreparedDataset(folder)
    except Deep3DMMError:
        pass
    else:
        assert len(dataset) == len(dataset.vertices) and dataset.to_millimetres > 0
    assert time.process_time() - start < 1.0


@FUZZ
@given(
    which=st.sampled_from(("meta.json", "index.csv")),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=6),
)
def test_damaged_meta_and_index(dataset_files, tmp_path, which, cut, flips):
    import shutil

    folder = tmp_path / "d"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(dataset_files, folder)
    data = bytearray((folder / which).read_bytes())
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    (folder / which).write_bytes(bytes(data[: max(0, int(len(data) * cut))]) if cut < 1 else data)
    check_open(folder)


@pytest.mark.parametrize("name", ["ascii.ply", "binary.ply", "mesh.off"])
def test_counts_beyond_the_file_size_are_refused_before_parsing(originals, tmp_path, name):
    data = originals[name]
    if name.endswith(".ply"):
        data = data.replace(b"element vertex 42", b"element vertex 10000000000", 1)
    else:
        data = data.replace(b"OFF\n42 ", b"OFF\n10000000000 ", 1)
    path = tmp_path / f"big{suffix_of(name)}"
    path.write_bytes(data)
    with pytest.raises(Deep3DMMError, match="header declares 10000000000 (vertex|vertices)"):
        read_mesh(path)

"""Property tests (hypothesis): any finite float32 mesh survives write_mesh -> read_mesh."""

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from deep3dmm.mesh import read_mesh, write_mesh

finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@st.composite
def meshes(draw):
    num_vertices = draw(st.integers(3, 40))
    vertices = draw(arrays(np.float32, (num_vertices, 3), elements=finite))
    num_faces = draw(st.integers(1, 30))
    faces = draw(arrays(np.int64, (num_faces, 3), elements=st.integers(0, num_vertices - 1)))
    return vertices, faces


@settings(max_examples=25, deadline=None)
@given(mesh=meshes(), suffix=st.sampled_from([".ply", ".obj", ".off"]), binary=st.booleans())
def test_write_read_round_trip_is_exact(mesh, suffix, binary):
    vertices, faces = mesh
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"m{suffix}"
        write_mesh(path, vertices, faces, binary=binary)
        read_vertices, read_faces = read_mesh(path)
    assert read_vertices.dtype == np.float32 and read_faces.dtype == np.int64
    np.testing.assert_array_equal(read_vertices, vertices)  # bit-exact float32, file order
    np.testing.assert_array_equal(read_faces, faces)

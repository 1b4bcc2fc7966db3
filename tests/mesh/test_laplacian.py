import numpy as np
import scipy.sparse as sp

from deep3dmm.mesh import Template, scaled_laplacian, shapes


def test_matches_dense_formula_and_spectrum_bounds():
    template = Template(*shapes.torus(8, 6))
    laplacian = scaled_laplacian(template.adjacency)
    assert sp.isspmatrix_csr(laplacian) and laplacian.dtype == np.float32
    a = template.adjacency.toarray().astype(np.float64)
    d = np.diag(1 / np.sqrt(a.sum(axis=1)))
    normalised = np.eye(len(a)) - d @ a @ d  # eigenvalues in [0, 2]
    rescaled = 2 / 2.0 * normalised - np.eye(len(a))  # lambda_max = 2
    np.testing.assert_allclose(laplacian.toarray(), rescaled, atol=1e-6)
    eigenvalues = np.linalg.eigvalsh(laplacian.toarray().astype(np.float64))
    assert eigenvalues.min() >= -1 - 1e-6 and eigenvalues.max() <= 1 + 1e-6
    # Connected graph: the normalised Laplacian has exactly one zero eigenvalue (here 1 -> -1).
    assert np.isclose(eigenvalues.min(), -1, atol=1e-5)
    assert np.sum(np.isclose(eigenvalues, -1, atol=1e-5)) == 1


def test_even_cycle_closed_form():
    # Cycle of length 6 (bipartite): eigenvalues of -A / 2 are -cos(2 pi k / 6).
    n = 6
    rows = np.arange(n)
    adjacency = sp.csr_matrix((np.ones(n), (rows, (rows + 1) % n)), shape=(n, n))
    adjacency = adjacency + adjacency.T
    eigenvalues = np.sort(np.linalg.eigvalsh(scaled_laplacian(adjacency).toarray()))
    expected = np.sort(-np.cos(2 * np.pi * np.arange(n) / n))
    np.testing.assert_allclose(eigenvalues, expected, atol=1e-6)


def test_isolated_vertex_row_is_zero():
    vertices, faces = shapes.icosphere(0)
    vertices = np.concatenate([vertices, [[5, 5, 5]]]).astype(np.float32)
    laplacian = scaled_laplacian(Template(vertices, faces).adjacency).toarray()
    assert np.all(laplacian[-1] == 0) and np.all(laplacian[:, -1] == 0)
    assert np.isfinite(laplacian).all()

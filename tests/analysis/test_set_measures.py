"""MMD, coverage and 1-NN accuracy against a brute-force Python reference."""

import numpy as np
import pytest

from deep3dmm.analysis.set_measures import set_measures, vertex_distance_matrix
from deep3dmm.errors import ConfigError


def brute_distance(a, b):
    """Mean over vertices of the Euclidean distance, one pair and one vertex at a time."""
    return float(np.mean([np.sqrt(sum((a[v, c] - b[v, c]) ** 2 for c in range(3)))
                          for v in range(len(a))]))  # fmt: skip


def brute_measures(samples, reference):
    mmd = np.mean([min(brute_distance(r, s) for s in samples) for r in reference])
    nearest = {int(np.argmin([brute_distance(r, s) for r in reference])) for s in samples}
    everything = [(m, True) for m in samples] + [(m, False) for m in reference]
    correct = 0
    for i, (mesh, label) in enumerate(everything):
        best, best_label = np.inf, None
        for j, (other, other_label) in enumerate(everything):
            d = brute_distance(mesh, other)
            if j != i and d < best:
                best, best_label = d, other_label
        correct += best_label == label
    return mmd, len(nearest) / len(reference), correct / len(everything)


def test_distance_matrix_is_mean_per_vertex_distance_and_chunks():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 9, 3)), rng.normal(size=(5, 9, 3))
    expected = np.array([[brute_distance(x, y) for y in b] for x in a])
    np.testing.assert_allclose(vertex_distance_matrix(a, b), expected, rtol=1e-12)
    tiny = vertex_distance_matrix(a, b, scale=1000.0, max_bytes=1)  # one pair per block
    np.testing.assert_allclose(tiny, 1000.0 * expected, rtol=1e-12)
    flat = np.linalg.norm(a[:, None].reshape(4, 1, -1) - b[None].reshape(1, 5, -1), axis=-1)
    assert not np.allclose(flat, expected)  # a flattened cdist is another quantity


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_set_measures_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(6, 7, 3))
    samples = np.concatenate([reference[:2] + 0.05 * rng.normal(size=(2, 7, 3)),
                              rng.normal(size=(3, 7, 3)) * 1.5])  # fmt: skip
    got = set_measures(samples, reference, max_bytes=200)
    mmd, coverage, nna = brute_measures(samples, reference)
    assert got.mmd == pytest.approx(mmd, rel=1e-12)
    assert got.coverage == pytest.approx(coverage)
    assert got.nna == pytest.approx(nna)
    assert (got.num_samples, got.num_reference) == (5, 6)


def test_known_extremes():
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(8, 5, 3))
    copy = set_measures(reference + 1e-9, reference)  # samples that copy the test set
    assert copy.mmd < 1e-8 and copy.coverage == 1.0 and copy.nna == 0.0
    apart = set_measures(reference + 100.0, reference)  # far away: perfectly separable
    assert apart.nna == 1.0
    with pytest.raises(ConfigError, match="need samples and reference"):
        set_measures(reference[:0], reference)
    with pytest.raises(ConfigError, match=r"\(N, V, 3\)"):
        vertex_distance_matrix(reference, reference[:, :4])

import pytest
import torch

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.tracking import (
    detection_graph,
    edge_precision_recall,
    synthetic_detections,
    train_edge_classifier,
)


def test_synthetic_detections_shapes_and_determinism():
    a = synthetic_detections(num_objects=4, num_frames=10, seed=3)
    b = synthetic_detections(num_objects=4, num_frames=10, seed=3)
    assert torch.equal(a.box, b.box) and torch.equal(a.identity, b.identity)
    assert a.box.shape == (len(a), 4) and a.appearance.shape == (len(a), 8)
    assert torch.all(a.frame[1:] >= a.frame[:-1])
    assert set(a.identity.tolist()) <= {-1, 0, 1, 2, 3}
    with pytest.raises(ConfigError, match="num_frames >= 2"):
        synthetic_detections(num_frames=1)
    with pytest.raises(ConfigError, match="need >= 1 graph and >= 1 step"):
        train_edge_classifier([], steps=5)


def test_detection_graph_matches_loop_reference():
    dets = synthetic_detections(num_objects=5, num_frames=12, seed=1)
    g = detection_graph(dets, max_gap=3, max_distance=6.0)
    f, box, ident = dets.frame.tolist(), dets.box, dets.identity.tolist()
    edges, active = set(), set()
    for i in range(len(dets)):
        for j in range(len(dets)):
            gap = f[j] - f[i]
            if 1 <= gap <= 3 and float((box[i, :2] - box[j, :2]).norm()) <= 6.0 * gap:
                edges.add((i, j))
        later = [j for j in range(len(dets)) if ident[j] == ident[i] >= 0 and f[j] > f[i]]
        if later:
            active.add((i, min(later, key=lambda j: f[j])))
    got = {tuple(e) for e in g.edge_index.T.tolist()}
    assert got == edges
    assert {tuple(e) for e in g.edge_index.T[g.labels > 0].tolist()} == active & edges
    src, dst = g.edge_index
    assert torch.all(dets.frame[src] < dets.frame[dst])  # earlier -> later
    torch.testing.assert_close(g.edge_attr[:, 4], (dets.frame[dst] - dets.frame[src]).float())
    torch.testing.assert_close(
        g.edge_attr[:, 5], (dets.appearance[src] - dets.appearance[dst]).norm(dim=1)
    )


def test_edge_precision_recall_counts():
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0, -2.0])
    labels = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0])
    p, r = edge_precision_recall(logits, labels)
    assert p == pytest.approx(2 / 3) and r == pytest.approx(2 / 3)


@pytest.mark.slow
def test_training_beats_chance_on_held_out_sequence():
    kw = dict(num_objects=6, num_frames=12, appearance_dim=4)
    train = [detection_graph(synthetic_detections(seed=s, **kw)) for s in range(4)]
    test = detection_graph(synthetic_detections(seed=99, **kw))
    model = train_edge_classifier(train, steps=60, mp_steps=2, progress=False)
    with torch.no_grad():
        logits = model(test.x, test.edge_index, test.edge_attr)
    assert logits.shape == (2, test.edge_index.shape[1])
    p, r = edge_precision_recall(logits[-1], test.labels)
    base = float(test.labels.mean())  # precision of "everything active"
    assert p > base + 0.3 and r > 0.7

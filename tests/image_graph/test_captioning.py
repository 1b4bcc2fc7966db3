import math

import pytest
import torch

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.caption_data import Vocabulary, make_captions
from deep3dmm.image_graph.captioning import ShowAttendTell, bleu_scores, reinforce_surrogate


@pytest.fixture(scope="module")
def data():
    d = make_captions(6, 24, seed=1)
    return d, Vocabulary.build(d.captions)


@pytest.mark.parametrize("mode", ["soft", "hard", "none"])
def test_attention_weights_sum_to_one(data, mode):
    d, vocab = data
    torch.manual_seed(0)
    model = ShowAttendTell(len(vocab), attention=mode, image_size=24)
    out = model(d.images, vocab.encode(d.captions))
    assert out.logits.shape[:2] == out.alphas.shape[:2] == out.entropy.shape
    assert out.alphas.shape[-1] == 9  # 24 / 8 = 3 -> 3 x 3 positions
    assert torch.allclose(out.alphas.sum(-1), torch.ones(out.alphas.shape[:2]))
    assert (out.alphas >= 0).all()
    tokens, alphas = model.generate(d.images, max_len=5)
    assert tokens.shape == (6, 5) and torch.allclose(alphas.sum(-1), torch.ones(6, 5))
    model.training_loss(d.images, vocab.encode(d.captions)).backward()


def test_hard_attention_log_probs_are_of_the_sampled_location(data):
    d, vocab = data
    torch.manual_seed(0)
    model = ShowAttendTell(len(vocab), attention="hard", image_size=24)
    out = model(d.images, vocab.encode(d.captions))
    assert (out.log_prob_locations <= 0).all()
    assert (out.log_prob_locations >= torch.log(out.alphas.min(-1).values) - 1e-5).all()
    ent = -(out.alphas * out.alphas.log()).sum(-1)
    assert torch.allclose(out.entropy, ent, atol=1e-5)


def test_reinforce_estimator_is_unbiased_on_a_toy_problem():
    """Mean of the REINFORCE estimate over many samples = exact gradient of E[r]."""
    torch.manual_seed(0)
    theta = torch.tensor([0.3, -1.0, 0.8, 0.0, -0.4], requires_grad=True)
    reward = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0])
    exact = torch.autograd.grad((theta.softmax(0) * reward).sum(), theta)[0]
    n, baseline = 200_000, 0.7
    alpha = theta.softmax(0)
    s = torch.multinomial(alpha.detach(), n, replacement=True)
    surrogate = reinforce_surrogate(torch.log(alpha)[s], reward[s], baseline).mean()
    estimate = torch.autograd.grad(surrogate, theta)[0]
    # per-sample estimates (r_s - b)(e_s - alpha) give the standard error of the mean
    per_sample = (reward[s] - baseline)[:, None] * (
        torch.nn.functional.one_hot(s, 5).float() - alpha.detach()
    )
    stderr = per_sample.std(0) / math.sqrt(n)
    assert torch.all((estimate - exact).abs() < 5 * stderr)
    assert torch.allclose(per_sample.mean(0), estimate, atol=1e-4)


def test_hard_training_updates_the_moving_average_baseline(data):
    d, vocab = data
    torch.manual_seed(0)
    model = ShowAttendTell(len(vocab), attention="hard", image_size=24).train()
    tokens = vocab.encode(d.captions)
    model.training_loss(d.images, tokens)
    first = model.reward_baseline.item()
    assert first < 0 and bool(model.baseline_ready)
    model.training_loss(d.images, tokens)
    assert model.reward_baseline.item() != first


def test_batched_generation_equals_one_by_one(data):
    d, vocab = data
    torch.manual_seed(0)
    model = ShowAttendTell(len(vocab), attention="soft", image_size=24).eval()
    tokens, alphas = model.generate(d.images, max_len=6)
    for i in range(3):
        t, a = model.generate(d.images[i : i + 1], max_len=6)
        assert torch.equal(t[0], tokens[i]) and torch.allclose(a[0], alphas[i], atol=1e-6)


def test_vocabulary_round_trip_and_empty():
    vocab = Vocabulary(["a", "red", "circle"])
    ids = vocab.encode([["a", "red", "circle"], ["a", "blue"]])
    assert ids.shape == (2, 5) and ids[0, 0] == vocab.start and ids[0, 4] == vocab.end
    assert ids[1, 2] == vocab.unk and ids[1, 4] == vocab.pad
    assert vocab.decode(ids[0].tolist()) == ["a", "red", "circle"]
    with pytest.raises(ConfigError, match="vocabulary is empty"):
        Vocabulary([])
    with pytest.raises(ConfigError, match="vocabulary is empty"):
        Vocabulary.build([["a", "b"]], min_count=2)
    with pytest.raises(ConfigError, match="vocab_size"):
        ShowAttendTell(4)


def test_captions_describe_the_layout():
    d = make_captions(200, 48, seed=0)
    for words in d.captions:
        k = words.count("a")
        assert 1 <= k <= 3 and len(words) == 3 * k + words.count("above") + 2 * words.count("left")
        assert words.count("above") + words.count("left") == k - 1
    assert d.images.shape == (200, 3, 48, 48)
    again = make_captions(200, 48, seed=0)
    assert again.captions == d.captions and torch.equal(again.images, d.images)


@pytest.mark.filterwarnings("ignore:\\nThe hypothesis contains 0 counts")
def test_bleu_against_hand_computed_values():
    ref = [["a", "red", "circle", "left", "of", "a", "blue", "square"]]
    assert bleu_scores(ref, ref) == {"bleu1": 1.0, "bleu2": 1.0, "bleu3": 1.0, "bleu4": 1.0}
    hyp = [["a", "red", "circle", "left", "of", "a", "red", "square"]]
    # unigrams: 7 of 8 match (clipped: "a" 2, "red" 1); bigrams: a-red, red-circle,
    # circle-left, left-of, of-a match, a-red clipped to 1, red-square no -> 5 of 7
    s = bleu_scores(ref, hyp)
    assert s["bleu1"] == pytest.approx(7 / 8)
    assert s["bleu2"] == pytest.approx(math.sqrt(7 / 8 * 5 / 7))
    short = [["a", "red", "circle"]]
    bp = math.exp(1 - 8 / 3)  # brevity penalty
    assert bleu_scores(ref, short)["bleu1"] == pytest.approx(bp)


def test_wrong_image_size_is_refused(data):
    d, vocab = data
    with pytest.raises(ConfigError, match="not divisible"):
        ShowAttendTell(len(vocab), image_size=30)
    model = ShowAttendTell(len(vocab), image_size=48)
    with pytest.raises(ConfigError, match=r"expected images \(B, 3, 48, 48\)"):
        model.generate(d.images)
    with pytest.raises(ConfigError, match="unknown attention"):
        ShowAttendTell(len(vocab), attention="both")

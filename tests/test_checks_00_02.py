"""The exercise checkers of chapters 00-02: a right answer passes, a typical wrong one fails.

The model-backed checkers run on the tiny random pair (tests/fixtures/tiny_pair.py): the
mechanism is the same on any pair, and a random drafter exercises rejected drafts too.
"""

import pytest
import torch

import labkit
from fixtures import tiny_pair
from labkit import architecture, checks, parts


@pytest.fixture(scope="module")
def pair():
    tiny = tiny_pair.build()
    return labkit.load_pair(tiny / "target", tiny / "drafter")


def speculative_round(draft, target, ids, k):
    drafts = draft(ids, k)
    top = target(ids + drafts)[len(ids) - 1 :].argmax(-1).tolist()
    n = 0
    while n < len(drafts) and drafts[n] == top[n]:
        n += 1
    return drafts[:n] + [top[n]]


def mtp_round(drafter, embed, ids, hidden, shared_kv, k, moving=False, feed_back=True):
    position = torch.tensor([[len(ids) - 1]])
    mask = torch.ones(1, len(ids), dtype=torch.long)
    token, h_in, drafts = ids[-1], hidden, []
    for step in range(k):
        x = drafter.pre_projection(torch.cat([embed(torch.tensor([[token]])), h_in], dim=-1))
        h = architecture.assistant_layers(drafter, x, shared_kv, position + step * moving, mask)
        token = int(architecture.assistant_logits(drafter, h)[0, -1].argmax())
        if feed_back:
            h_in = drafter.post_projection(h)
        drafts.append(token)
    return drafts


def test_speculative_round_checker(pair):
    checks.check_speculative_round(speculative_round, pair, k=3, prompts=2)

    def two_forwards(draft, target, ids, k):  # verifies each draft with its own forward
        for j in range(k + 1):
            target(ids + draft(ids, k)[:j])
        return speculative_round(draft, target, ids, k)

    with pytest.raises(AssertionError, match="target forwards"):
        checks.check_speculative_round(two_forwards, pair, k=3, prompts=1)
    with pytest.raises(AssertionError, match="glass box adds"):  # forgets the target's own token
        checks.check_speculative_round(lambda d, t, ids, k: speculative_round(d, t, ids, k)[:-1], pair, k=3, prompts=1)


def test_mtp_round_checker(pair):
    checks.check_mtp_round(mtp_round, pair, k=3, prompts=2)
    with pytest.raises(AssertionError):
        checks.check_mtp_round(lambda *a: mtp_round(*a)[:-1], pair, k=3, prompts=1)
    # the drafts of labkit.parts agree with the reference too
    ids = pair.tokenizer("To be, or not to be").input_ids
    ctx = parts.drafter_context(pair, ids)
    assert parts.mtp_drafts(pair, ids, 3) == mtp_round(pair.drafter, pair.target.get_input_embeddings(), ids,
                                                       ctx.hidden, ctx.shared_kv, 3)


def test_knee_and_verification_cost_checkers():
    checks.check_knee(architecture.knee)
    with pytest.raises(AssertionError):
        checks.check_knee(lambda rows: rows[-1][0] / 2)
    checks.check_verification_cost(lambda rows, k: dict(rows)[k + 1] / ((k + 1) * dict(rows)[1]))
    with pytest.raises(AssertionError):
        checks.check_verification_cost(lambda rows, k: dict(rows)[k] / (k * dict(rows)[1]))


def test_anatomy_checkers():
    checks.check_rows_scored(lambda v, c, t: t * (v // c))
    with pytest.raises(AssertionError):
        checks.check_rows_scored(lambda v, c, t: v // c)

    def kv_source_layers(types, shared):
        own = types[: len(types) - shared]
        return {kind: max(i for i, t in enumerate(own) if t == kind) for kind in sorted(set(own))}

    checks.check_kv_source_layers(kv_source_layers)
    with pytest.raises(AssertionError):  # ignores the KV-shared layers
        checks.check_kv_source_layers(lambda types, shared: kv_source_layers(types, 0))


def test_prediction_checker_reports_and_wants_a_guess(capsys):
    checks.check_prediction({"a": 2.0, "b": 10}, {"a": 2.1, "b": 4.0})
    out = capsys.readouterr().out
    assert "close" in out and "off by 150%" in out
    with pytest.raises(AssertionError, match="guess"):
        checks.check_prediction({"a": None}, {"a": 1.0})

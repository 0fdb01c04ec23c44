"""Tracing transformers' assisted generate changes nothing and records every round."""

import copy

import pytest
import torch

from labkit import metrics
from labkit.trace import Decoding
from labkit.tracing import audit_drafter_kv, drafter_settings, generation_config, trace_generate

from fixtures import trained_tiny


@pytest.fixture(scope="module")
def pair():
    return trained_tiny.load()


def _ids(seed):
    return torch.randint(3, trained_tiny.VOCAB, (1, 10), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_traced_equals_untraced(pair, temperature):
    target, drafter = pair
    for seed in range(4):
        ids = _ids(seed)
        cfg = generation_config(max_new_tokens=40, temperature=temperature)
        torch.manual_seed(0)
        with drafter_settings(drafter, 4, "constant"):
            untraced = target.generate(ids, generation_config=cfg, assistant_model=drafter)
        # as transformers ships it (lossless off), so it must match the untraced call exactly
        settings = Decoding(k=4, max_new_tokens=40, temperature=temperature, seed=0, lossless=False)
        traced = trace_generate(target, drafter, ids, settings)
        assert list(traced.output_ids) == untraced[0].tolist()


def test_rounds_are_complete(pair):
    target, drafter = pair
    t = trace_generate(target, drafter, _ids(1), Decoding(k=3, max_new_tokens=50))
    assert t.rounds[0].k == 0 and len(t.rounds[0].emitted) == 1  # the prefill
    assert sum(len(r.emitted) for r in t.rounds) == 50
    for r in t.rounds[1:]:
        assert len(r.drafted) == len(r.draft_probs) == len(r.target_probs) == r.k
        assert len(r.target_top) == r.k + 1
        assert r.emitted[: r.accepted] == r.drafted[: r.accepted]
        # a round with one token left drafts nothing (k = 0): transformers runs the target alone
        assert (r.t_draft > 0) == (r.k > 0) and r.t_verify > 0 and r.t_rest >= 0
        if r.rejected:  # greedy: the correction is the target's argmax
            assert r.bonus == r.target_top[r.accepted] != r.drafted[r.accepted]
    assert sum(r.seconds for r in t.rounds) == pytest.approx(t.wall, rel=0.05)
    assert metrics.summarize(t).drafter_forwards == sum(r.k for r in t.rounds)


def test_plain_path_is_one_token_per_forward(pair):
    target, _ = pair
    t = trace_generate(target, None, _ids(2), Decoding(max_new_tokens=20))
    assert metrics.tau(t) == 1.0 and t.path == "plain"


def test_heuristic_schedule_is_not_applied_by_transformers_mtp(pair):
    """transformers 5.22's MTP candidate generator never updates its draft length: the trace
    shows every round at the starting k. (labkit.glassbox implements the heuristic.)"""
    target, drafter = pair
    t = trace_generate(target, drafter, _ids(3), Decoding(k=2, max_new_tokens=40, schedule="heuristic"))
    assert {r.k for r in t.rounds[1:-1]} == {2}


def test_audit_finds_stale_kv_after_rejections(pair):
    target, drafter = pair
    stale = []
    for seed in range(20):
        stale += [a for a in audit_drafter_kv(target, drafter, _ids(seed), k=4, max_new_tokens=60)
                  if a.full_stale]
    assert stale, "no round after a rejection in 20 prompts"
    assert all(a.full_len == a.position + 1 and a.full_stale == 1 for a in stale)


def test_a_checkpoints_sampling_defaults_stay_out_of_the_lab(pair):
    """Gemma 4 checkpoints ship do_sample, top_k 64 and top_p 0.95 in generation_config.json; a
    setting labkit leaves unset is filled in from there, so transformers' path would sample from
    a cut distribution while the glass box samples from the whole one."""
    target, drafter = pair
    ids = _ids(2)
    clean = trace_generate(target, drafter, ids, Decoding(k=4, max_new_tokens=40, temperature=1.0, seed=0))
    saved = target.generation_config
    target.generation_config = copy.deepcopy(saved)
    target.generation_config.update(do_sample=True, top_k=64, top_p=0.95, temperature=1.0)
    try:
        resolved, _ = target._prepare_generation_config(generation_config(max_new_tokens=4, temperature=1.0))
        assert (resolved.top_k, resolved.top_p) == (0, 1.0)
        shipped = trace_generate(target, drafter, ids, Decoding(k=4, max_new_tokens=40, temperature=1.0, seed=0))
        greedy, _ = target._prepare_generation_config(generation_config(max_new_tokens=4))
        assert not greedy.do_sample and greedy.top_p == 1.0
    finally:
        target.generation_config = saved
    assert list(shipped.output_ids) == list(clean.output_ids)


def test_settings_travel_as_one_decoding(pair):
    """One Decoding goes in, the trace keeps it, JSON keeps it; loose keywords get a clear error."""
    import json

    from labkit.trace import Trace, load_traces

    target, drafter = pair
    settings = Decoding(k=3, max_new_tokens=12, temperature=0.7, seed=2)
    t = trace_generate(target, drafter, _ids(4), settings)
    assert t.settings == settings and (t.k, t.temperature, t.lossless) == (3, 0.7, True)
    back = Trace.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back.settings == settings and back.new_ids == t.new_ids
    assert trace_generate(target, None, _ids(4), settings).k == 0  # plain decoding drafts nothing
    with pytest.raises(TypeError, match="Decoding"):
        trace_generate(target, drafter, _ids(4), k=3)
    shipped, _ = load_traces("acceptance")  # recorded before Decoding (schema 1): still readable
    old = next(iter(shipped.values()))[0]
    assert isinstance(old.settings, Decoding) and old.settings.max_new_tokens == len(old.new_ids)

"""The code paths a GPU takes, checked where no GPU is (issue 41): what 07 trains and where it keeps
it, what 01 and 05 time and where, and which draft model 08 offers a pair.

07 on a GPU trains a float32 drafter beside a 16-bit target: here the target runs in bfloat16 on
the CPU, which exercises the same casts. The timings' CUDA synchronisation is checked by counting
calls of a stand-in. tests/test_cuda.py runs the real thing when a GPU is lent.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from fixtures import trained_tiny

from labkit import distill, experiments, methods
from labkit.errors import BadInputError


@pytest.fixture(scope="module")
def models():
    return trained_tiny.load()


def test_a_float32_drafter_trains_beside_a_bfloat16_target(models):
    """07 on a GPU: the pair runs in bfloat16, the fresh drafter trains in float32 (AdamW's small
    updates would round away in 16-bit weights); distill casts the target's view to the drafter's."""
    target, drafter = models
    half = copy.deepcopy(target).to(torch.bfloat16)
    config = copy.deepcopy(drafter.config)
    config.use_ordered_embeddings = False
    torch.manual_seed(0)
    fresh = type(drafter)(config)
    before = {n: p.detach().clone() for n, p in fresh.named_parameters()}
    g = torch.Generator().manual_seed(1)
    data = trained_tiny.markov_batch(16, 24, g)
    views = distill.CachedViews(half, data)
    assert views.hidden.dtype == torch.bfloat16
    history = distill.fit(fresh, half, views, steps=3, k=2, batch=4)
    assert len(history) == 3 and all(torch.isfinite(torch.tensor(h["kl"])) for h in history)
    assert all(p.dtype == torch.float32 for p in fresh.parameters())
    assert any(not torch.equal(before[n], p) for n, p in fresh.named_parameters())
    assert len(distill.agreement(half, fresh.eval(), data[:4], k=2)) == 2
    # and the other way round: a 16-bit drafter reads a float32 target's view
    assert len(distill.agreement(target, copy.deepcopy(fresh).to(torch.bfloat16), data[:4], k=2)) == 2


def test_in_precision_keeps_log_p_and_casts_the_rest(models):
    target, _ = models
    view = distill.target_view(target, trained_tiny.markov_batch(2, 12, torch.Generator().manual_seed(0)))
    assert distill.in_precision(view, torch.float32) is view
    cast = distill.in_precision(view, torch.bfloat16)
    assert cast.hidden.dtype == cast.embeds.dtype == torch.bfloat16 and cast.log_p.dtype == torch.float32
    assert all(k.dtype == v.dtype == torch.bfloat16 for k, v in cast.shared_kv.values())


def test_07_keeps_each_pairs_run_in_its_own_folder():
    pocket = distill.run_folder(SimpleNamespace(is_pocket=True, label="pocket pair"))
    assert pocket == distill.RUNS_DIR / "07_train_a_drafter"  # where the solutions read the pocket run
    folder = distill.run_folder(SimpleNamespace(is_pocket=False, label="gemma-4-pocket"))
    hub = distill.run_folder(SimpleNamespace(is_pocket=False, label="google/gemma-4-E2B-it"))
    assert folder == pocket / "gemma-4-pocket" and hub == pocket / "google--gemma-4-E2B-it"


def _pair(target_id: str, is_pocket: bool = False, tokenizer=None):
    return SimpleNamespace(target_id=target_id, is_pocket=is_pocket, label=target_id, tokenizer=tokenizer)


def test_08_offers_the_smallest_gemma_4_as_a_draft_model():
    assert methods.default_draft_model(_pair("pocket", is_pocket=True)) == methods.DRAFT_MODEL_DIR
    for target in ("E4B", "26B-A4B", "31B"):
        assert methods.default_draft_model(_pair(f"google/gemma-4-{target}-it")) == "google/gemma-4-E2B-it"
        assert methods.default_draft_model(_pair(f"google/gemma-4-{target}")) == "google/gemma-4-E2B"
    with pytest.raises(BadInputError, match="smallest Gemma 4"):
        methods.default_draft_model(_pair("google/gemma-4-E2B-it"))


def test_08_offers_the_pocket_draft_model_only_to_a_pair_that_reads_its_tokenizer():
    from transformers import AutoTokenizer

    from labkit.paths import TOKENIZER_DIR

    pocket_tok = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    assert methods.default_draft_model(_pair("/some/folder", tokenizer=pocket_tok)) == methods.DRAFT_MODEL_DIR
    other = SimpleNamespace(get_vocab=lambda: {"a": 0, "b": 1})
    with pytest.raises(BadInputError, match="no draft model is known"):
        methods.default_draft_model(_pair("/some/folder", tokenizer=other))


def test_timings_wait_for_the_gpu(monkeypatch):
    """01 and 05 read the clock after `experiments.synchronize`, which waits for CUDA's queued work."""
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    experiments.synchronize("cpu")
    assert calls == []
    experiments.synchronize("cuda:0")
    assert calls == [torch.device("cuda:0")]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    experiments.time_samples(lambda: None, 2)  # time_samples syncs before and after every sample
    assert len(calls) == 1 + 4


def test_device_name_says_where_a_timing_ran():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert experiments.device_name("cpu") == "1 CPU thread"
    finally:
        torch.set_num_threads(before)


def test_real_pair_costs_run_on_the_device_and_precision_asked_for():
    out = experiments.real_pair_costs("E2B", ns=(1, 2), layers=2, repeats=1,
                                      device="cpu", dtype=torch.bfloat16)
    assert out["dtype"] == "bfloat16" and out["where"].endswith(("CPU thread", "CPU threads"))
    assert out["t_target"][1] > 0 and out["t_draft"] > 0

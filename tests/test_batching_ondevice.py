"""09_serving's machinery on the tiny pair: batched speculation stays the target's greedy output,
the batch cost rows feed 05's cost model, and an int8 pair still decodes and keeps its output
when it speculates."""

import pytest
import torch

import labkit
from labkit import batching, experiments, ondevice


@pytest.fixture(scope="module")
def pair(tiny):
    return labkit.load_pair(tiny / "target", tiny / "drafter", device="cpu")


def test_batched_speculation_equals_batched_plain_decoding(pair):
    ids = torch.randint(3, pair.target.config.vocab_size, (1, 12), generator=torch.Generator().manual_seed(0))
    for batch in (1, 3):
        run = batching.batched_run(pair, ids, batch, k=3, max_new_tokens=17)
        assert run["identical"], run
        assert run["rounds"] >= 1 and 1.0 <= run["tokens_per_round"] <= 4.0
        assert run["decode_speedup"] > 0


def test_batch_costs_feed_the_cost_model(pair):
    rows = batching.batch_costs(pair, (1, 4), k=3, context=8, repeats=2)
    assert [r["batch"] for r in rows] == [1, 4]
    assert all(len(r["samples"]["verify"]) == 2 and r["plain"] > 0 and r["draft"] > 0 for r in rows)
    loop = experiments.CostModel(t_target=1.0, loop_plain=0.0, t_draft=0.1, verify=(1.0, 0.0),
                                 loop_round=(0.0, 0.0), prefill=0.0)
    model = batching.costs_at({"plain": 1.0, "verify": 2.0, "draft": 0.25}, k=4, loop=loop)
    assert model.v(1) == pytest.approx(1.0) and model.v(5) == pytest.approx(2.0)
    # 3 tokens per round for one verification (2) and four drafter steps (1): 3 / 3 = 1×
    assert model.speedup(3.0, 4) == pytest.approx(1.0)


def test_an_int8_pair_still_speculates_losslessly(pair):
    variants = ondevice.variants(pair)
    assert list(variants) == ["float32", "int8 target", "int8 target + drafter"]
    int8 = variants["int8 target + drafter"]
    # each int8 weight saves 3 of float32's 4 bytes (less one scale per row); the tied head and
    # embedding table stay float32
    linear = sum(m.weight.numel() for name, m in pair.target.named_modules()
                 if isinstance(m, torch.nn.Linear) and name != "lm_head")
    saved = ondevice.stored_bytes(pair.target) - ondevice.stored_bytes(int8.target)
    assert 0.8 * 3 * linear < saved < 3 * linear
    rows = ondevice.compare(pair, ["a b c d e f"], k=3, max_new_tokens=10, path="glassbox")
    assert [r["variant"] for r in rows] == list(variants)
    assert all(r["spec_same_as_plain"] == 1 for r in rows)  # speculation keeps each variant's own output
    assert rows[0]["same_as_float32"] == 1

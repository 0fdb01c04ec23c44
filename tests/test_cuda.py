"""The lab's device="cuda" code paths, run where CUDA exists (Colab, a lent GPU); skipped elsewhere.

On a GPU, `make test` runs these and the whole notebook suite on CUDA (labkit.setup() picks it).
`make gpu-check` runs them with the notebooks and the full-depth real-shape script, and writes each
chapter's time (scripts/gpu_check.sh).
"""

from __future__ import annotations

import pytest
import torch

import labkit
from labkit import architecture, env, media
from labkit.generation import load_prompts, run

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


@pytest.fixture(scope="module")
def pair():
    return labkit.load_pair(device="cuda")


def test_the_one_decision_on_a_gpu():
    device, dtype = env.choose("cuda")
    native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    assert dtype == (torch.bfloat16 if native_bf16 else torch.float16)
    assert env.choose("cuda", pocket=True) == ("cuda", torch.float32)


def test_pocket_pair_runs_in_float32_on_the_gpu(pair):
    assert pair.device.type == "cuda" and pair.dtype == torch.float32
    assert next(pair.target.parameters()).is_cuda and next(pair.drafter.parameters()).is_cuda


def test_greedy_paths_agree_on_the_gpu(pair):
    for prompt in load_prompts("prose", 2) + load_prompts("code", 2):
        plain = run(pair, prompt, path="plain", max_new_tokens=48)
        for path in ("transformers", "glassbox"):
            trace = run(pair, prompt, path=path, k=4, max_new_tokens=48)
            assert trace.new_ids == plain.new_ids, path
            assert all(r.t_verify > 0 for r in trace.rounds)


def test_sampling_on_the_gpu_is_seeded_and_lossless(pair):
    a = run(pair, "Once upon a time", path="transformers", k=4, max_new_tokens=32, temperature=0.8, seed=3)
    b = run(pair, "Once upon a time", path="transformers", k=4, max_new_tokens=32, temperature=0.8, seed=3)
    assert a.new_ids == b.new_ids and a.lossless
    g = run(pair, "Once upon a time", path="glassbox", k=4, max_new_tokens=32, temperature=0.8, seed=3)
    assert len(g.new_ids) == 32


def test_cost_curve_on_the_gpu_is_synchronised():
    model = architecture.scaled_text_decoder("E2B", layers=2, vocab_size=512).to("cuda")
    rows = architecture.forward_cost_curve(model, ns=(1, 8), context=16, repeats=2)
    assert [n for n, _ in rows] == [1, 8] and all(t > 0 for _, t in rows)


def test_media_on_the_gpu():
    pair = labkit.load_pair("pocket-multimodal", device="cuda")
    inputs = media.media_inputs(pair, "What colour is the big shape?", image=media.MEDIA_DIR / "scene_0.png")
    assert inputs["pixel_values"].is_cuda
    ids = inputs.pop("input_ids")
    inputs.pop("attention_mask", None)
    plain = run(pair, ids, path="plain", max_new_tokens=12, **inputs)
    spec = run(pair, ids, path="transformers", k=4, max_new_tokens=12, **inputs)
    assert spec.new_ids == plain.new_ids


def test_plan_estimate_covers_the_measured_peak_on_a_gpu(tmp_path):
    """load_pair's GPU estimate (labkit.plan) against torch's allocated peak, on a folder pair that
    takes the real-pair path (scripts/hub_pair.py), decoding a prompt."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from hub_pair import save_hub_pair

    target, _ = save_hub_pair(tmp_path / "gemma-4-pocket")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    folder = labkit.load_pair(target, device="cuda", dtype=torch.float16)
    run(folder, load_prompts("prose", 1)[0], path="transformers", max_new_tokens=64)
    peak = (torch.cuda.max_memory_allocated() - base) / 1e9
    assert peak <= folder.memory_gb, (peak, folder.memory_gb)


@pytest.mark.parametrize("quantization", ["int8", "4bit"])
def test_quantized_folder_pair_loads_and_speculates(tmp_path, quantization):
    pytest.importorskip("bitsandbytes")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from hub_pair import save_hub_pair

    target, _ = save_hub_pair(tmp_path / "gemma-4-pocket")
    folder = labkit.load_pair(target, device="cuda", dtype=torch.float16, quantization=quantization)
    trace = run(folder, load_prompts("prose", 1)[0], path="transformers", max_new_tokens=32)
    assert len(trace.new_ids) == 32

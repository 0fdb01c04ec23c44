"""labkit.loading on tiny random-weight pairs of the real classes (no hub, no trained weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures import tiny_pair

import labkit
from labkit import loading
from labkit.generation import run

REPO = Path(__file__).resolve().parents[1]
PROMPT = "BRUTUS.\nI would not, Cassius; yet I love him well,\n"


@pytest.fixture(scope="module")
def pair(tiny):
    return labkit.load_pair(tiny / "target", tiny / "drafter")


def test_folders_load_as_a_pair(pair, tiny):
    assert pair.device.type in ("cpu", "cuda", "mps")
    assert not pair.is_pocket and not pair.multimodal and pair.processor is None
    assert type(pair.target).__name__ == "Gemma4ForCausalLM"
    assert type(pair.drafter).__name__ == "Gemma4AssistantForCausalLM"
    assert pair.tokenizer.eos_token == "<eos>"
    assert pair.name == "target" and "Gemma 4" in repr(pair)


@pytest.mark.parametrize("drafter", ["drafter", "drafter-plain"])  # centroid head, full head
def test_speculative_greedy_equals_the_target_alone(tiny, drafter):
    pair = labkit.load_pair(tiny / "target", tiny / drafter)
    plain = run(pair, PROMPT, path="plain", max_new_tokens=24)
    assert run(pair, PROMPT, path="transformers", max_new_tokens=24).new_ids == plain.new_ids
    assert run(pair, PROMPT, path="glassbox", max_new_tokens=24).new_ids == plain.new_ids


def test_sampling_through_transformers_is_lossless_by_default(pair):
    """run(path="transformers", temperature > 0) verifies losslessly unless told lossless=False."""
    exact = run(pair, PROMPT, path="transformers", temperature=0.8, max_new_tokens=32)
    tvs = [r.tv for r in exact.rounds if r.tv is not None]
    assert exact.lossless and tvs and max(tvs) < 1e-12
    assert "lossless" in exact.decoding
    shipped = run(pair, PROMPT, path="transformers", temperature=0.8, max_new_tokens=32, lossless=False)
    assert not shipped.lossless and "biased" in shipped.decoding


def test_parameter_count_from_config_matches_the_model(pair):
    assert loading.count_parameters(pair.target.config) == sum(p.numel() for p in pair.target.parameters())
    assert loading.count_parameters(pair.drafter.config, "drafter") == \
        sum(p.numel() for p in pair.drafter.parameters())
    n, config = loading.count_parameters(pair.target.config), pair.target.config
    stored = loading.stored_dtype(config)
    assert stored == torch.float32  # as saved by the fixture
    assert loading.estimate_memory_gb(config, torch.float32, overhead=1.0) == pytest.approx(n * 4 / 1e9)
    assert loading.estimate_memory_gb(config, torch.float32) == pytest.approx(n * 4 * 1.2 / 1e9)
    # converting float32 files to bfloat16 holds both copies for a while
    assert loading.estimate_memory_gb(config, torch.bfloat16) == pytest.approx(n * (2 + 4) / 1e9)


def test_shipped_real_configs_estimate_their_public_sizes():
    # data/configs holds the public config.json files; E2B is ~5.1B parameters with its towers
    cfg = loading.read_config(REPO / "data" / "configs" / "gemma-4-E2B-it")
    gb = loading.estimate_memory_gb(cfg, torch.bfloat16, overhead=1.0)
    assert 9 < gb < 11.5
    loading.check_pair(cfg, loading.read_config(REPO / "data" / "configs" / "gemma-4-E2B-it-assistant"))


def test_load_pair_takes_device_and_dtype_from_the_one_decision(tiny, monkeypatch):
    """load_pair asks labkit.env.choose (setup's choice unless told otherwise) and obeys it."""
    from labkit import env as labenv

    asked = []

    def choose(device=None, dtype=None, *, pocket=False):
        asked.append((device, dtype, pocket))
        return "cpu", dtype or torch.bfloat16

    monkeypatch.setattr(labenv, "choose", choose)
    pair = labkit.load_pair(tiny / "target", tiny / "drafter")
    assert asked == [(None, None, False)]
    assert pair.dtype == torch.bfloat16 and next(pair.target.parameters()).dtype == torch.bfloat16
    assert next(pair.drafter.parameters()).dtype == torch.bfloat16
    pair = labkit.load_pair(tiny / "target", tiny / "drafter", device="cpu", dtype=torch.float32)
    assert asked[-1] == ("cpu", torch.float32, False) and pair.dtype == torch.float32



def test_hub_id_derives_the_drafter_and_loads_through_from_pretrained(tiny, tmp_path):
    """The real id path, end to end, against a Hugging Face cache laid out on disk (no network)."""
    cache = tmp_path / "hub"
    tiny_pair.fake_hub_cache(cache, "google/gemma-4-E2B-it", tiny / "target")
    tiny_pair.fake_hub_cache(cache, "google/gemma-4-E2B-it-assistant", tiny / "drafter")
    code = ("import json, labkit; p = labkit.load_pair('google/gemma-4-E2B-it', device='cpu', dtype=None); "
            "print(json.dumps([p.name, p.target_id, p.drafter_id, p.is_pocket, str(p.dtype)]))")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    name, target_id, drafter_id, is_pocket, dtype = json.loads(out.stdout.strip().splitlines()[-1])
    assert (name, target_id, drafter_id, is_pocket) == (
        "google/gemma-4-E2B-it", "google/gemma-4-E2B-it", "google/gemma-4-E2B-it-assistant", False)
    assert dtype == "torch.float32"  # cpu


def test_pocket_pair_is_the_default():
    if not (loading.pocket.TARGET_DIR / "model.safetensors").exists():
        pytest.fail("no pocket pair in data/pocket: run `make pocket` (make test does)")
    pair = labkit.load_pair()
    assert pair.is_pocket and pair.name.startswith("pocket") and pair.dtype == torch.float32



def test_shipped_pocket_pair_was_measured_past_its_bars():
    """scripts/build_pocket.py installs a full pair only past every bar of issue "Pocket Gemma 4
    pair" (scripts/measure_pocket.py); this keeps a hand-copied or older pair from shipping under
    that name, with a card that quotes other figures, or past its 40 MB."""
    folder = loading.pocket.POCKET_DIR
    build = folder / "BUILD.json"
    if not build.exists() or json.loads(build.read_text()).get("recipe") != "full":
        pytest.skip("no full pocket pair in this checkout (a quick placeholder or none)")
    m = json.loads((folder / "metrics.json").read_text())
    assert m["all_pass"] and all(b["pass"] for b in m["bars"].values()), m["bars"]
    assert m["n_prompts"] >= 24 and m["new_tokens"] >= 128
    weights = [folder / name / "model.safetensors" for name in ("target", "drafter")]
    pair = labkit.load_pair()  # the figures are about the weights in the folder
    assert m["params_target"] == sum(p.numel() for p in pair.target.parameters())
    assert m["params_drafter"] == sum(p.numel() for p in pair.drafter.parameters())
    card = (folder / "MODEL_CARD.md").read_text()
    for name in ("bpb_prose", "bpb_code", "tau_greedy", "speedup_greedy"):
        assert f"| {name} | {m['bars'][name]['rule']} | {m[name]} | pass |" in card
    files = [*weights, *(folder / "tokenizer").iterdir()]
    size = sum(f.stat().st_size for f in files)
    assert size <= 40 * 2**20, f"{size / 2**20:.1f} MB"

@pytest.fixture(scope="module")
def multimodal(tiny):
    return labkit.load_pair(tiny / "target-multimodal", tiny / "drafter")


def test_multimodal_target_loads_and_speculates_on_text(multimodal):
    """Gemma4ForConditionalGeneration with vision and audio towers, through the same loader."""
    pair = multimodal
    assert pair.multimodal and type(pair.target).__name__ == "Gemma4ForConditionalGeneration"
    # the fixture folder holds no processor files: the pair runs text-only and says why
    assert pair.processor is None and "processor" in pair.media_unavailable
    assert "text only" in repr(pair)
    plain = run(pair, PROMPT, path="plain", max_new_tokens=24)
    for path in ("transformers", "glassbox"):
        assert run(pair, PROMPT, path=path, k=3, max_new_tokens=24).new_ids == plain.new_ids


def test_multimodal_without_torchvision_names_the_install(tiny, monkeypatch):
    """Gemma 4's processor imports torchvision (its video processor); a CPU install may lack it."""
    import transformers

    def no_torchvision(*args, **kwargs):
        raise ImportError("video_processing_gemma4 requires the Torchvision library but it was not found")

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", no_torchvision)
    pair = labkit.load_pair(tiny / "target-multimodal", tiny / "drafter")
    assert pair.processor is None and "pip install torchvision" in pair.media_unavailable


def test_first_difference_and_the_logit_gap_there(pair):
    from labkit.generation import first_difference, logit_gap, next_logits

    assert first_difference([1, 2, 3], [1, 2, 3]) is None
    assert first_difference([1, 2, 3], [1, 5, 3]) == 1
    assert first_difference([1, 2, 3], [1, 2]) == 2  # one ending early differs where it ends
    logits = next_logits(pair, "The cat", [5, 6])
    assert logits.shape == (pair.target.config.get_text_config().vocab_size,) and logits.dtype == torch.float32
    gap, (best, second) = logit_gap(pair, "The cat", [5, 6])
    assert gap == pytest.approx(float(logits[best] - logits[second])) and gap >= 0
    assert best == int(logits.argmax())
    plain = run(pair, "The cat", path="plain", max_new_tokens=3, stop_at_eos=False)
    assert logit_gap(pair, "The cat")[1][0] == plain.new_ids[0]  # greedy takes the best logit


def test_tour_runner_decodes_both_ways_and_loads_the_pair_the_box_names(pair):
    from labkit.generation import tour_runner
    from labkit.trace import Decoding

    loads = []

    def fake_load(name):
        loads.append(name)
        return pair

    run_both = tour_runner(pair, load=fake_load)
    label, plain, spec = run_both(pair.name, PROMPT, Decoding(k=2, max_new_tokens=6))
    assert len(plain.seconds) == len(spec.seconds) == 3  # warmed up, then 3 interleaved repeats
    plain, spec = plain.trace, spec.trace  # the median runs
    assert label == pair.label and loads == []
    assert (plain.path, spec.path, spec.settings.k) == ("plain", "transformers", 2)
    assert len(plain.new_ids) == len(spec.new_ids) == 6  # never cut short at <eos>
    assert plain.new_ids == spec.new_ids
    run_both("pocket", PROMPT, Decoding(k=2, max_new_tokens=2))
    run_both("pocket", PROMPT, Decoding(k=2, max_new_tokens=2))  # kept: not loaded again
    assert loads == ["pocket"]  # "pocket" by name: None would load the chosen pair (LABKIT_PAIR)

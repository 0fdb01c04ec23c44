"""Gemma 4 E2B at its real widths, vocabulary (262,144) and sliding window (512), 4 layers deep,
random weights, saved as a Hub snapshot (tests/fixtures/e2b_shapes.py builds it): loaded with
`load_pair(target_folder, drafter_folder)` and run along every path a learner takes, with a prompt
longer than the sliding window and with an image and a sound."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import labkit
from labkit import media
from labkit.generation import encode, run

from fixtures import e2b_shapes

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import real_shape  # noqa: E402

pytestmark = pytest.mark.slow
NEW = 12


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return e2b_shapes.build(tmp_path_factory.mktemp("e2b-shapes"), layers=4)


@pytest.fixture(scope="module")
def pair(folder):
    return labkit.load_pair(folder / "target", folder / "drafter", device="cpu")


def test_memory_estimate_against_the_measured_peak(folder):
    """In a fresh process: load the pair (bf16 files into fp32, as a CPU learner gets it) and
    decode a 600-token prompt along every path; load_pair's estimate must cover the peak without
    overstating it by more than a quarter."""
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "real_shape.py"), "--measure-only",
                          "--out", str(folder), "--new-tokens", "2", "--no-media", "--dtype", "float32"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads((folder / "measured.json").read_text())
    assert m["dtype"] == "float32" and m["prompt_tokens"] > 512
    assert m["peak_over_base_gb"] <= m["estimate_gb"] <= 1.25 * m["peak_over_base_gb"], m


def test_the_snapshot_has_real_shapes_and_hub_files(folder, pair):
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                 "tokenizer_config.json", "chat_template.jinja", "processor_config.json"):
        assert (folder / "target" / name).exists(), name
    text = pair.target.config.get_text_config()
    assert (text.vocab_size, text.hidden_size, text.sliding_window) == (262_144, 1536, 512)
    assert text.num_kv_shared_layers == 2 and text.hidden_size_per_layer_input == 256
    assert pair.drafter.config.num_centroids == 2048 and pair.drafter.config.backbone_hidden_size == 1536
    assert len(pair.tokenizer) == 262_144
    config = pair.target.config
    for attr, token in (("image_token_id", "<|image|>"), ("audio_token_id", "<|audio|>"),
                        ("boi_token_id", "<|image>"), ("eoi_token_id", "<image|>")):
        assert pair.tokenizer.convert_tokens_to_ids(token) == getattr(config, attr), token
    assert pair.tokenizer.convert_tokens_to_ids("<turn|>") in pair.target.generation_config.eos_token_id
    assert pair.multimodal and pair.processor is not None and not pair.media_unavailable
    assert not pair.is_pocket and pair.dtype == torch.float32 and pair.memory_gb > 4


def test_every_path_past_the_sliding_window(pair):
    prompt = real_shape.long_prompt(pair.tokenizer, 600)
    ids = encode(pair, prompt, chat=True)  # Gemma 4's turn tokens at their real ids
    assert ids.shape[1] > 512 and 105 in ids[0].tolist()
    plain = run(pair, ids, path="plain", max_new_tokens=NEW, stop_at_eos=False)
    spec = run(pair, ids, path="transformers", k=4, max_new_tokens=NEW, stop_at_eos=False)
    glass = run(pair, ids, path="glassbox", k=4, max_new_tokens=NEW, stop_at_eos=False)
    assert len(plain.new_ids) == NEW
    assert spec.new_ids == plain.new_ids and glass.new_ids == plain.new_ids
    sampled = run(pair, ids, path="transformers", k=4, max_new_tokens=NEW, temperature=1.0, stop_at_eos=False)
    assert sampled.decoding == "sampled at T = 1, transformers' assisted generate, lossless"
    assert len(sampled.new_ids) == NEW and all(0 <= t < 262_144 for t in sampled.new_ids)


def test_an_image_and_a_sound_through_the_prefill(pair):
    inputs = media.media_inputs(pair, "What do you see and hear?", image=media.MEDIA_DIR / "scene_0.png",
                                audio=media.MEDIA_DIR / "beeps_0.wav")
    spans = media.soft_token_spans(inputs["input_ids"], pair.target.config)
    assert spans["image"] and spans["audio"]
    ids = inputs.pop("input_ids")
    inputs.pop("attention_mask", None)
    plain = run(pair, ids, path="plain", max_new_tokens=NEW, stop_at_eos=False, **inputs)
    spec = run(pair, ids, path="transformers", k=4, max_new_tokens=NEW, stop_at_eos=False, **inputs)
    assert spec.new_ids == plain.new_ids and len(plain.new_ids) == NEW

"""Choosing a pair and fitting it (issue 41): `labkit plan` on the shipped real configs, the chooser
(LABKIT_PAIR, setup(pair=...)), load_pair's use of the plan on a GPU, chat for -it pairs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import labkit
from labkit import env as labenv
from labkit import generation, loading
from labkit.errors import BadInputError, NotEnoughMemoryError, PairError
from labkit.plan import plan, resolve

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "data" / "configs"
T4 = 15.0  # GB free on Colab's T4
KEYS = {"pair", "device", "free_gb", "dtype", "quantization", "offload", "estimate_gb", "fits", "advice"}


@pytest.fixture(autouse=True)
def no_choice(monkeypatch):
    monkeypatch.delenv("LABKIT_PAIR", raising=False)
    monkeypatch.setattr(labenv, "_ACTIVE", None)


def test_e2b_fits_a_t4_in_float16():
    p = plan("E2B", device="cuda", free_gb=T4)
    assert p.pair == "google/gemma-4-E2B-it" and p.fits and p.dtype == "float16"
    assert p.quantization is None and p.offload is None
    assert 10.4 < p.estimate_gb < T4  # ~10.4 GB of fp16 weights; no bf16 -> fp16 conversion copy on a GPU
    assert "fits" in p.advice and "load_pair('google/gemma-4-E2B-it')" in p.advice


def test_e4b_fits_a_t4_only_quantized_or_with_per_layer_embeddings_off_the_gpu():
    as_stored = plan("E4B", device="cuda", free_gb=None)
    assert as_stored.estimate_gb > T4  # ~16 GB of fp16 weights cannot fit
    p = plan("E4B", device="cuda", free_gb=T4)
    assert p.fits and p.quantization == "int8" and p.estimate_gb <= T4
    assert "quantization='int8'" in p.advice and "4bit also fits" in p.advice and "per-layer embeddings" in p.advice
    four = plan("E4B", device="cuda", free_gb=T4, quantization="4bit")
    assert four.fits and four.estimate_gb < p.estimate_gb


@pytest.mark.parametrize("name, moe", [("31B", False), ("26B-A4B", True)])
def test_the_large_targets_need_a_larger_gpu_and_the_advice_says_which(name, moe):
    p = plan(name, device="cuda", free_gb=T4)
    assert not p.fits and p.quantization == "4bit"  # the smallest it gets, and still too large
    assert f"{p.estimate_gb:.0f} GB free for 4bit" in p.advice and "E2B fits a 15 GB T4" in p.advice
    assert ("Mixture-of-Experts" in p.advice) is moe
    assert plan(name, device="cuda", free_gb=80).fits


def test_plan_cli_prints_one_json_object():
    out = subprocess.run([sys.executable, "-m", "labkit.cli", "plan", "--pair", "E4B", "--device", "cuda",
                          "--free-gb", "15", "--json"], capture_output=True, text=True, cwd=REPO)
    answer = json.loads(out.stdout)
    assert set(answer) == KEYS and answer["fits"] and answer["quantization"] == "int8"
    assert out.returncode == 0
    big = subprocess.run([sys.executable, "-m", "labkit.cli", "plan", "--pair", "31B", "--free-gb", "15"],
                         capture_output=True, text=True, cwd=REPO)
    assert big.returncode == 1 and "fits: False" in big.stdout


def test_quantization_is_cuda_only_and_says_so():
    with pytest.raises(BadInputError, match="CUDA"):
        plan("E2B", device="cpu", free_gb=24, quantization="int8")
    with pytest.raises(BadInputError, match="CUDA"):
        labkit.load_pair(CONFIGS / "gemma-4-E2B-it", device="cpu", quantization="int8")


class _Loaded(Exception):
    """Raised where weights would start loading: the memory check let the pair through."""


def test_load_pair_uses_the_plan_on_a_gpu_no_false_refusal(monkeypatch):
    """E2B in fp16 with 15 GB free used to be refused (a full conversion copy counted on the GPU)."""
    monkeypatch.setattr(labenv, "choose", lambda device=None, dtype=None, pocket=False: ("cuda", torch.float16))

    real = loading.model_class

    def stub(config, role):  # the real class, counted on the meta device, but no weights loaded
        cls = real(config, role)

        def from_pretrained(*args, **kwargs):
            raise _Loaded

        return type("Stub", (), {"from_config": staticmethod(cls.from_config if hasattr(cls, "from_config")
                                                             else cls._from_config),
                                 "from_pretrained": staticmethod(from_pretrained)})

    monkeypatch.setattr(loading, "model_class", stub)
    monkeypatch.setattr(loading, "available_memory_gb", lambda device: T4)
    with pytest.raises(_Loaded):  # passed the check: the drafter was found as the -assistant sibling
        labkit.load_pair(CONFIGS / "gemma-4-E2B-it")
    monkeypatch.setattr(loading, "available_memory_gb", lambda device: 11.0)
    with pytest.raises(NotEnoughMemoryError, match="labkit plan.*quantization='int8'"):  # the plan's advice
        labkit.load_pair(CONFIGS / "gemma-4-E2B-it")
    monkeypatch.setattr(loading, "available_memory_gb", lambda device: 7.0)  # only offloading would fit
    assert plan("E2B", device="cuda", free_gb=7.0).offload == "per-layer embeddings"
    with pytest.raises(NotEnoughMemoryError, match="per-layer embeddings.*labkit does not do yet"):
        labkit.load_pair(CONFIGS / "gemma-4-E2B-it")


def test_short_names_and_the_chooser(monkeypatch, tmp_path):
    assert resolve("E4B") == "google/gemma-4-E4B-it" and resolve("/some/folder") == "/some/folder"
    assert loading.chosen_pair() == (None, None)  # nothing chosen: the pocket pair
    labkit.setup(pair="E2B", quiet=True)
    assert labenv.active().choice == "E2B"
    assert loading.chosen_pair() == ("google/gemma-4-E2B-it", None)
    monkeypatch.setenv("LABKIT_PAIR", "/a/target, /a/drafter")  # the environment wins over setup's
    assert loading.chosen_pair() == ("/a/target", "/a/drafter")
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "config.json").write_text("{}")
    with pytest.raises(PairError, match="-assistant"):
        loading._drafter_of(lone)


def test_a_real_pair_on_a_cpu_gets_a_clear_line(monkeypatch, capsys):
    monkeypatch.setattr(labenv, "choose", lambda device=None, dtype=None, pocket=False: ("cpu", torch.float32))
    monkeypatch.setattr(labenv, "hub_login", lambda colab, quiet=False: print("login box"))
    labkit.setup(pair="E2B")
    out = capsys.readouterr().out
    assert "pair chosen: E2B (setup(pair=...))" in out and "no GPU" in out and "login box" in out
    labkit.setup(pair="pocket")
    assert "no GPU" not in capsys.readouterr().out


def test_folder_pair_is_a_real_pair_and_an_it_pair_speaks_in_turns(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "scripts"))
    from hub_pair import save_hub_pair

    target, drafter = save_hub_pair(tmp_path / "gemma-4-pocket")
    monkeypatch.setenv("LABKIT_PAIR", str(target))
    pair = labkit.load_pair()
    assert not pair.is_pocket and pair.label == "gemma-4-pocket" and pair.drafter_id == str(drafter)
    assert not generation.speaks_chat(pair)  # a base model: raw text
    it = tmp_path / "gemma-4-pocket-it"
    shutil.copytree(target, it)
    shutil.copytree(drafter, tmp_path / "gemma-4-pocket-it-assistant")
    pair = labkit.load_pair(it)
    assert generation.speaks_chat(pair)
    ids = generation.encode(pair, "Hello")[0].tolist()
    tok = pair.tokenizer
    assert ids[:2] == [tok.bos_token_id, tok.convert_tokens_to_ids("<|turn>")]
    plain = generation.run(pair, "Hello", path="plain", max_new_tokens=8)
    assert plain.prompt_ids == tuple(ids)

"""Every bad input a learner can give gets a labkit error with an actionable message."""

from __future__ import annotations

import pytest
import torch

import labkit
from labkit import errors, loading
from labkit.generation import run

PROMPT = "BRUTUS.\nI would not, Cassius; yet I love him well,\n"


@pytest.fixture(scope="module")
def pair(tiny):
    return labkit.load_pair(tiny / "target", tiny / "drafter")


@pytest.mark.parametrize(("prompt", "kwargs", "match"), [
    ("", {}, "empty"),
    ("   \n", {}, "empty"),
    ([PROMPT, PROMPT], {}, "one prompt at a time"),
    (torch.ones(2, 5, dtype=torch.long), {}, "batch size 1"),
    (PROMPT, {"k": 0}, "at least 1 token"),
    (PROMPT, {"temperature": -1.0}, "temperature"),
    (PROMPT, {"top_p": 0.0}, "top_p"),
    (PROMPT, {"path": "beam"}, "unknown path"),
    (PROMPT, {"max_new_tokens": 10_000}, "context window"),
    (PROMPT, {"temperature": float("nan")}, "temperature"),
    (PROMPT, {"temperature": float("inf")}, "temperature"),
    (PROMPT, {"temperature": "0.8"}, "temperature"),
    (PROMPT, {"top_p": float("nan")}, "top_p"),
    (PROMPT, {"top_p": 1.5}, "top_p"),
    (PROMPT, {"k": 4.0}, "whole number"),
    (PROMPT, {"k": True}, "whole number"),
    (PROMPT, {"max_new_tokens": 0}, "at least one"),
    (PROMPT, {"max_new_tokens": 8.5}, "whole number"),
    ([999999, 5, 6], {}, "outside the target's vocabulary"),
    ([-1, 5, 6], {}, "outside the target's vocabulary"),
    (torch.tensor([[1.0, 2.0]]), {}, "integers"),
])
def test_bad_generation_input(pair, prompt, kwargs, match):
    with pytest.raises(errors.BadInputError, match=match):
        run(pair, prompt, **kwargs)


def test_unknown_gemma_id():
    with pytest.raises(errors.ModelNotFoundError, match="gemma-4-E2B-it"):
        labkit.load_pair("google/gemma-4-E9B-it")


def test_folder_without_a_model(tmp_path):
    with pytest.raises(errors.ModelNotFoundError, match="config.json"):
        labkit.load_pair(tmp_path, tmp_path)


def test_mismatched_pair(tiny):
    with pytest.raises(errors.PairError, match="backbone_hidden_size"):
        labkit.load_pair(tiny / "target", tiny / "drafter-wide")


def test_a_target_as_drafter(tiny):
    with pytest.raises(errors.PairError, match="not a Gemma 4 assistant"):
        labkit.load_pair(tiny / "target", tiny / "target")


def test_offline_names_the_pocket_pair(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(loading, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(errors.OfflineError, match=r"labkit.load_pair\(\"pocket\"\)"):
        labkit.load_pair("google/gemma-4-E2B-it")


def test_not_enough_memory(tiny, monkeypatch):
    monkeypatch.setattr(loading, "available_memory_gb", lambda device: 1e-6)
    with pytest.raises(errors.NotEnoughMemoryError, match="GB"):
        labkit.load_pair(tiny / "target", tiny / "drafter")


def test_errors_are_labkit_errors():
    for cls in (errors.BadInputError, errors.PairError, errors.ModelNotFoundError, errors.OfflineError,
                errors.NotEnoughMemoryError, errors.UnsupportedVersionError):
        assert issubclass(cls, errors.LabkitError)


def test_float16_overflow_is_named_not_shown(tiny):
    """Gemma's activations can exceed float16's range (a T4 has no bfloat16): a clear error, not NaN tokens."""
    import torch

    from labkit.errors import PrecisionError
    from labkit.generation import run

    pair = labkit.load_pair(tiny / "target", tiny / "drafter", device="cpu", dtype=torch.float16)
    mlp = pair.target.model.layers[0].mlp
    with torch.no_grad():  # what overflowing activations look like: an MLP product past 65,504
        mlp.up_proj.weight.mul_(1e3)
        mlp.gate_proj.weight.mul_(1e3)
    with pytest.raises(PrecisionError, match="float16.*bfloat16"):
        run(pair, "BRUTUS.\nI would not", max_new_tokens=8)


def test_folder_without_a_tokenizer_says_so(tiny, tmp_path):
    import shutil

    bare = tmp_path / "target"
    shutil.copytree(tiny / "target", bare)
    for f in bare.glob("tokenizer*"):
        f.unlink()
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(errors.ModelNotFoundError, match="no usable tokenizer.*save_pretrained"):
        labkit.load_pair(bare, tiny / "drafter")

"""Drafting methods side by side (labkit.methods, `labkit bench --method`): transformers' path and the
glass box draft the same tokens, every method keeps the target's greedy output, and bad input is
one clear line."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from fixtures import trained_tiny

from labkit import bench, cli, methods
from labkit.errors import BadInputError
from labkit.glassbox import speculate
from labkit.metrics import tau
from labkit.trace import Decoding


@pytest.fixture(scope="module")
def tiny_trained():
    return trained_tiny.load()


def _loops(n: int = 4) -> list[torch.Tensor]:
    """Prompts that repeat themselves, so prompt lookup finds something to copy."""
    g = torch.Generator().manual_seed(0)
    return [torch.randint(3, trained_tiny.VOCAB, (1, 6), generator=g).repeat(1, 3) for _ in range(n)]


def test_prompt_lookup_drafts_as_transformers_does(tiny_trained):
    """Same greedy tokens and the same number of target passes on both paths: the glass box's prompt
    lookup picks the n-gram match transformers picks."""
    target, _ = tiny_trained
    pair = SimpleNamespace(target=target)
    for ids in _loops():
        plain = target.generate(ids, do_sample=False, max_new_tokens=30)[0].tolist()
        with methods.count_forwards(target) as passes:
            out = target.generate(ids, do_sample=False, max_new_tokens=30,
                                  **methods.generate_kwargs("prompt-lookup", pair, 4))[0].tolist()
        glass = speculate(target, methods.glassbox_drafter("prompt-lookup", pair), ids, Decoding(k=4, max_new_tokens=30))
        assert out == plain == list(glass.output_ids)
        assert passes[0] == glass.target_forwards, "the two paths verified different drafts"
        assert tau(glass) > 1.0


def test_a_draft_model_keeps_the_greedy_output_on_both_paths(tiny_trained):
    target, _ = tiny_trained
    draft = trained_tiny.load()[0]  # the target's own weights: a perfect drafter with its own cache
    pair = SimpleNamespace(target=target)
    ids = _loops(1)[0]
    plain = target.generate(ids, do_sample=False, max_new_tokens=24)[0].tolist()
    with methods.drafting("draft-model", pair, 3, draft), methods.count_forwards(target) as passes:
        out = target.generate(ids, do_sample=False, max_new_tokens=24,
                              **methods.generate_kwargs("draft-model", pair, 3, draft))[0].tolist()
    glass = speculate(target, methods.glassbox_drafter("draft-model", pair, draft), ids, Decoding(k=3, max_new_tokens=24))
    assert out == plain == list(glass.output_ids)
    assert 24 / passes[0] > 3 and tau(glass) > 3  # every draft kept: close to k + 1 tokens a pass


def test_bench_by_task_from_a_prompt_file(tiny, tmp_path, capsys):
    rows = [{"text": "alpha beta gamma alpha beta gamma alpha", "task": "quote"},
            {"text": "def f(x):\n    return x\n", "task": "code"},
            {"text": "once upon a time", "task": "quote"}]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for method in ("prompt-lookup", "none", "mtp"):
        code = cli.main(["bench", "--json", "--pair", str(tiny / "target"), "--drafter", str(tiny / "drafter"),
                         "--method", method, "--prompts", str(path), "--max-new-tokens", "12", "--repeats", "1",
                         "--quiet", "--device", "cpu"])
        assert code == 0
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert result["method"] == method and result["identical"] is True and result["prompts"] == 3
        assert set(result["by_task"]) == {"quote", "code"} and result["by_task"]["quote"]["prompts"] == 2
        for key in ("tau", "speedup", "identical"):
            assert key in result["by_task"]["code"]
        if method == "none":
            assert result["tau"] == 1.0


def test_bad_methods_and_prompt_files_are_one_line(tiny, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"txt": "no text key"}\n')
    for argv, says in ((["--prompts", str(bad)], "line 1"), (["--prompts", str(tmp_path / "none.jsonl")], ".jsonl"),
                       (["--method", "draft-model", "--draft-model", str(tmp_path / "nothing")], "nothing")):
        code = cli.main(["bench", "--pair", str(tiny / "target"), "--drafter", str(tiny / "drafter"), *argv])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1 and says in err
    with pytest.raises(BadInputError, match="choose one of"):
        methods.check_method("medusa")


def test_a_draft_model_must_share_the_vocabulary(tiny_trained):
    target, _ = tiny_trained
    other = SimpleNamespace(config=SimpleNamespace(get_text_config=lambda: SimpleNamespace(vocab_size=99)))
    with pytest.raises(BadInputError, match="tokenizer"):
        methods.check_draft_model(SimpleNamespace(target=target), other)


def test_load_draft_model_from_a_folder_and_its_errors(tiny):
    import labkit

    pair = labkit.load_pair(tiny / "target", tiny / "drafter", device="cpu")
    model = methods.load_draft_model(pair, tiny / "target")  # any causal LM over the target's vocabulary
    assert next(model.parameters()).dtype == pair.dtype and not model.training
    # a folder pair that reads the pocket tokenizer is offered the pocket draft model
    # (other pairs' defaults and refusals: tests/test_gpu_paths.py)
    assert methods.default_draft_model(pair) == methods.DRAFT_MODEL_DIR
    trace = bench.race_runner(pair, model, max_new_tokens=8)("hello there", "draft-model", 3)
    assert trace.drafter == "independent" and len(trace.new_ids) == 8


def test_sampling_stays_lossless_for_every_method(tiny_trained):
    """On the glass box each round's emitted token is distributed exactly as the target's (the exact
    total variation distance it computes per round is ~0), whatever drafts: sampled drafts from a
    draft model, point masses from prompt lookup, or nothing."""
    target, drafter = tiny_trained
    pair = SimpleNamespace(target=target, drafter=drafter)
    draft = trained_tiny.load()[0]
    for method in methods.METHODS:
        trace = speculate(target, methods.glassbox_drafter(method, pair, draft), _loops(1)[0],
                          Decoding(k=3, max_new_tokens=30, temperature=1.0, seed=1))
        tvs = [r.tv for r in trace.rounds[1:] if r.k and r.tv is not None]
        assert tvs and max(tvs) < 1e-5 or method == "none", (method, tvs)

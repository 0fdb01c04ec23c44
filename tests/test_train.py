"""The pocket recipe's plumbing: labkit.train's resumable loop and token cache, the corpus split."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import trained_tiny
from transformers import AutoTokenizer, Gemma4ForCausalLM

from labkit import train
from labkit.pocket import TOKENIZER_DIR

REPO = Path(__file__).resolve().parents[1]


def _prep_script():
    spec = importlib.util.spec_from_file_location("prep_pocket_data", REPO / "scripts" / "prep_pocket_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(out: Path, steps: int, stop_at: int | None = None) -> Gemma4ForCausalLM:
    """A tiny target trained for `steps` (optionally killed after `stop_at`, as a crash would)."""
    target_cfg, _ = trained_tiny.configs()
    torch.manual_seed(0)
    model = Gemma4ForCausalLM(target_cfg)
    cfg = train.TrainConfig(steps=steps, batch=4, seq_len=16, warmup=2, eval_every=100, eval_windows=2,
                            ckpt_every=1, log_every=1, threads=1)
    data = trained_tiny.markov_batch(64, 17, torch.Generator().manual_seed(0)).flatten().numpy()
    val = {"val": train.eval_windows(data, 16, max_windows=4)}

    def get_batch(step: int) -> torch.Tensor:
        if stop_at is not None and step == stop_at:
            raise KeyboardInterrupt  # the run dies here, after the checkpoint of step stop_at
        return train.random_windows(data, cfg.batch, cfg.seq_len, torch.Generator().manual_seed(step))

    train.train(model, cfg, get_batch, val, torch.ones(trained_tiny.VOCAB, dtype=torch.long), out)
    return model


def test_a_killed_run_resumes_to_the_same_weights(tmp_path):
    straight = _run(tmp_path / "straight", steps=6)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "resumed", steps=6, stop_at=3)
    resumed = _run(tmp_path / "resumed", steps=6)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert {"kind": "resume", "step": 3} in log


def test_token_cache_follows_the_corpus_not_only_the_tokenizer(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    corpus, cache = tmp_path / "docs.jsonl", tmp_path / "docs.tokens"
    corpus.write_text(json.dumps({"text": "def f():\n    return 1\n"}) + "\n")
    first = train.tokenize_jsonl(corpus, tokenizer, cache=cache)
    assert np.array_equal(train.tokenize_jsonl(corpus, tokenizer, cache=cache), first)  # from the cache
    corpus.write_text(json.dumps({"text": "To be, or not to be\n"}) + "\n")
    second = train.tokenize_jsonl(corpus, tokenizer, cache=cache)
    assert tokenizer.decode(second[1:-1]) == "To be, or not to be\n", "a stale cache was read"


def test_code_split_keeps_held_out_files_out_of_every_training_file(tmp_path):
    """Held-out files never reach `code_train` or `code_train_extra`; apps reach extra, tests nothing."""
    prep = _prep_script()
    stdlib = tmp_path / "lib"
    for i in range(60):
        for folder in ("", "json/", "test/", "idlelib/"):
            path = stdlib / f"{folder}m{i}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"def f{i}():\n    return {i}\n" * 5)
    (stdlib / "site-packages").mkdir()
    (stdlib / "site-packages" / "x.py").write_text("import this\n")
    train_docs, val, extra, shas = prep.code_docs(stdlib, cap_train=1000, cap_val=10_000)
    names = lambda docs: {d["source"] for d in docs}  # noqa: E731
    assert val and train_docs and extra
    assert not names(val) & (names(train_docs) | names(extra)) and not names(train_docs) & names(extra)
    assert all(not s.startswith("stdlib/test/") for s in names(train_docs) | names(val))
    assert not any(s.startswith("stdlib/test/") for s in names(extra)), "tests are repetitive: never trained on"
    assert {f"stdlib/idlelib/m{i}.py" for i in range(60)} <= names(extra), "apps are ordinary code"
    assert "stdlib/site-packages/x.py" not in names(train_docs) | names(val) | names(extra)
    size = sum(len(d["text"].encode()) for d in train_docs)
    assert 1000 <= size < 1000 + 200, "train fills to its cap (the tokenizer's balanced sample)"
    assert len(names(train_docs) | names(val) | names(extra)) == len(shas)

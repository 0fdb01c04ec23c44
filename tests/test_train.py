"""The pocket build's plumbing: a run's resumable stages (labkit.fit through pocketbuild.runs), the
losses against loops, the token cache, the corpus split."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import trained_tiny
from transformers import AutoTokenizer, Gemma4ForCausalLM

from labkit.fit import TrainConfig
from pocketbuild import corpus, lm, runs
from labkit.pocket import TOKENIZER_DIR

REPO = Path(__file__).resolve().parents[1]


def _prep_script():
    spec = importlib.util.spec_from_file_location("prep_pocket_data", REPO / "scripts" / "prep_pocket_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(out: Path, steps: int, stop_at: int | None = None, extra_loss=None) -> Gemma4ForCausalLM:
    """A tiny target trained for `steps` (optionally killed after `stop_at`, as a crash would)."""
    target_cfg, _ = trained_tiny.configs()
    torch.manual_seed(0)
    model = Gemma4ForCausalLM(target_cfg)
    cfg = TrainConfig(steps=steps, batch=4, seq_len=16, warmup=2, eval_every=100, eval_windows=2,
                      ckpt_every=1, log_every=1, threads=1)
    data = trained_tiny.markov_batch(64, 17, torch.Generator().manual_seed(0)).flatten().numpy()
    val = corpus.eval_windows(data, 16, max_windows=4)

    def loss_at(step: int):
        if stop_at is not None and step == stop_at:
            raise KeyboardInterrupt  # the run dies here, after the checkpoint of step stop_at
        batch = corpus.random_windows(data, cfg.batch, cfg.seq_len, torch.Generator().manual_seed(step))
        return lm.lm_loss(model, batch), {}

    run = runs.Run(out, "tests/test_train.py", "tiny", cfg, data=out / "data.pt")  # paths are recorded as text
    run.stage("pretrain", model, cfg, loss_at, then=None if extra_loss is None else lambda s: extra_loss(model, s),
              evaluate=lambda: lm.evaluate(model, val, torch.ones(trained_tiny.VOCAB, dtype=torch.long)))
    return model


def test_a_killed_run_resumes_to_the_same_weights(tmp_path):
    straight = _run(tmp_path / "straight", steps=6)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "resumed", steps=6, stop_at=3)
    resumed = _run(tmp_path / "resumed", steps=6)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in log if r["kind"] == "resume"] == [("pretrain", 3)]
    record = json.loads((tmp_path / "resumed" / "record.json").read_text())
    assert record["data"] == str(tmp_path / "resumed" / "data.pt") and record["recipe"]["steps"] == 6
    assert record["stages"]["pretrain"]["resumed_at"] == [3] and record["stages"]["pretrain"]["steps"] == 6


def test_repeated_ngrams_marks_the_tokens_of_a_loop():
    tokens = torch.tensor([[1, 2, 3, 4, 1, 2, 3, 4, 9],
                           [5, 6, 7, 8, 9, 10, 11, 12, 13],  # no loop
                           [7, 7, 7, 7, 7, 7, 8, 9, 10]])  # a run of one token repeats 4-grams too
    mask = lm.repeated_ngrams(tokens, n=4)
    assert mask[0].tolist() == [False] * 4 + [True] * 4 + [False]
    assert not mask[1].any()
    assert mask[2].tolist() == [False] + [True] * 5 + [False] * 3


def _unlikelihood(model, step: int):
    g = torch.Generator().manual_seed(step)
    prefixes = torch.randint(3, trained_tiny.VOCAB, (4, 6), generator=g)
    loss, repeated = lm.sequence_unlikelihood(model, prefixes, new_tokens=24)
    return loss, {"repeated": repeated}


def test_unlikelihood_pushes_down_the_repeated_tokens_of_the_models_own_text():
    """Greedy decoding of a Markov chain falls into cycles, and so does the tiny target trained on
    one: its own continuations repeat. Unlikelihood steps on them lower the probability of exactly
    the repeated tokens (the first pass through a cycle shares their contexts, so it falls too, less).
    48 new tokens, not 24: the fixture is trained afresh on each machine, and on one (2026-11-26) its
    first cycles had barely begun by token 24 (repeated share 0.15-0.34 over three prompt seeds; 0.57-0.68
    at 48)."""
    model, _ = trained_tiny.load()
    prefixes = torch.randint(3, trained_tiny.VOCAB, (4, 6), generator=torch.Generator().manual_seed(0))
    loss, repeated = lm.sequence_unlikelihood(model, prefixes, new_tokens=48)
    assert loss.requires_grad and torch.isfinite(loss) and repeated > 0.2
    with torch.no_grad():
        seq = model.generate(prefixes, do_sample=False, max_new_tokens=48, min_new_tokens=48, pad_token_id=0)
    cont, mask = seq[:, 6:], lm.repeated_ngrams(seq[:, 6:])

    def probs() -> torch.Tensor:
        return model(input_ids=seq[:, :-1]).logits[:, 5:].softmax(-1).gather(-1, cont[..., None])[..., 0]

    before = probs().detach()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(5):
        opt.zero_grad()
        lm.unlikelihood_loss(model(input_ids=seq[:, :-1]).logits[:, 5:], cont, mask).backward()
        opt.step()
    after = probs().detach()
    assert after[mask].mean() < 0.5 * before[mask].mean()
    assert after[mask].mean() / before[mask].mean() < after[~mask].mean() / before[~mask].mean()


def test_an_extra_loss_runs_in_the_loop_logs_and_resumes(tmp_path):
    straight = _run(tmp_path / "straight", steps=4, extra_loss=_unlikelihood)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "resumed", steps=4, stop_at=2, extra_loss=_unlikelihood)
    resumed = _run(tmp_path / "resumed", steps=4, extra_loss=_unlikelihood)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    log = [json.loads(line) for line in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    assert all("repeated" in r for r in log if r["kind"] == "train")


def test_token_cache_follows_the_corpus_not_only_the_tokenizer(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    docs, cache = tmp_path / "docs.jsonl", tmp_path / "docs.tokens"
    docs.write_text(json.dumps({"text": "def f():\n    return 1\n"}) + "\n")
    first = corpus.tokenize_jsonl(docs, tokenizer, cache=cache)
    assert np.array_equal(corpus.tokenize_jsonl(docs, tokenizer, cache=cache), first)  # from the cache
    docs.write_text(json.dumps({"text": "To be, or not to be\n"}) + "\n")
    second = corpus.tokenize_jsonl(docs, tokenizer, cache=cache)
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

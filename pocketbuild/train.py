"""Train a small causal LM on a CPU: token streams, AdamW + cosine schedule, a resumable loop.

The loop is nanoGPT's, kept readable: sample random windows from a token stream, one AdamW step,
evaluate now and then, checkpoint atomically so a killed run resumes where it stopped.
Validation reports nats per token and bits per byte; only bits per byte compares across
tokenizers (a tokenizer with longer tokens has higher nats per token for the same model quality).
`sequence_unlikelihood` is the extra loss of the pocket target's second phase: a small model trained
by maximum likelihood alone writes greedy loops, and this pushes down the tokens it repeated.

Used by `scripts/train_target.py` (the pocket target) and `scripts/train_multimodal.py`; its
optimizer and schedule are labkit.distill's, the ones notebook 07 trains with.
Everything runs on the model's device: put the model on a GPU and batches follow it there (token
streams, windows and checkpoints stay on the CPU).
Left out: mixed precision (bf16 on this kind of CPU was ~36x slower than fp32), gradient
accumulation, multi-process data loading, distributed training.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from labkit.distill import TrainConfig, device_of, lr_factor, make_optimizer  # noqa: F401 (re-exported)


# ---------------------------------------------------------------- data


def bytes_per_token_table(tokenizer) -> torch.Tensor:
    """UTF-8 bytes each token id stands for (0 for special tokens); used for bits per byte.

    In a byte-level BPE every character of a token's string is one mapped byte, so a token's
    byte count is simply its string length.
    """
    special = set(tokenizer.all_special_ids)
    table = torch.zeros(len(tokenizer), dtype=torch.long)
    for token, i in tokenizer.get_vocab().items():
        table[i] = 0 if i in special else len(token)
    return table


def tokenize_jsonl(path: str | Path, tokenizer, cache: str | Path | None = None) -> np.ndarray:
    """All documents of a `{"text"}` jsonl file as one token stream: <bos> doc <eos> <bos> doc ...

    The stream is cached as uint16 (the vocabulary fits) under a key of the tokenizer and of the
    file's bytes, so the second run loads in milliseconds and neither a new tokenizer nor a new
    corpus ever reuses stale tokens.
    """
    h = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode())
    h.update(Path(path).read_bytes())
    key = h.hexdigest()[:12]
    cache = Path(f"{cache}.{key}.npy") if cache is not None else None
    if cache is not None and cache.exists():
        return np.load(cache)
    with open(path, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    ids: list[int] = []
    # split_special_tokens: a literal "<eos>" inside source code is text, not end of document
    for enc in tokenizer(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]:
        ids += [tokenizer.bos_token_id, *enc, tokenizer.eos_token_id]
    stream = np.array(ids, dtype=np.uint16)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, stream)
    return stream


def random_windows(stream: np.ndarray, n: int, seq_len: int, g: torch.Generator) -> torch.Tensor:
    """n random windows of seq_len + 1 tokens (inputs are [:-1], labels [1:])."""
    starts = torch.randint(0, len(stream) - seq_len - 1, (n,), generator=g).tolist()
    return torch.from_numpy(np.stack([stream[s : s + seq_len + 1] for s in starts]).astype(np.int64))


def eval_windows(stream: np.ndarray, seq_len: int, max_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping windows over the whole stream, evenly spaced when capped: deterministic."""
    n = (len(stream) - 1) // seq_len
    picks = range(n) if max_windows is None or max_windows >= n else \
        [i * n // max_windows for i in range(max_windows)]
    return torch.from_numpy(np.stack([stream[i * seq_len : i * seq_len + seq_len + 1] for i in picks])
                            .astype(np.int64))


# ---------------------------------------------------------------- loss and evaluation


def training_device(name: str = "auto") -> torch.device:
    """`auto`: the GPU when there is one, else the CPU (not Apple's MPS: untested for training)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """For logs and model cards: `cuda (NVIDIA H200)`, `cpu`."""
    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else device.type


def lm_loss(model: torch.nn.Module, windows: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of windows (B, T+1)."""
    windows = windows.to(device_of(model))
    logits = model(input_ids=windows[:, :-1], use_cache=False).logits  # (B, T, vocab)
    return F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())


@torch.no_grad()
def evaluate(model: torch.nn.Module, windows: torch.Tensor, byte_lengths: torch.Tensor,
             batch: int = 16) -> dict[str, float]:
    """nats/token and bits/byte: bpb = total nats / ln 2 / total UTF-8 bytes of predicted tokens."""
    was_training = model.training
    model.eval()
    nats, tokens, nbytes = 0.0, 0, 0
    for i in range(0, len(windows), batch):
        w = windows[i : i + batch]
        nbytes += int(byte_lengths[w[:, 1:]].sum())
        w = w.to(device_of(model))
        logits = model(input_ids=w[:, :-1], use_cache=False).logits
        nats += F.cross_entropy(logits.flatten(0, 1), w[:, 1:].flatten(), reduction="sum").item()
        tokens += w[:, 1:].numel()
    model.train(was_training)
    return {"nats_per_token": nats / tokens, "bpb": nats / math.log(2) / nbytes,
            "tokens": tokens, "bytes": nbytes}


# ---------------------------------------------------------------- unlikelihood against loops


def repeated_ngrams(tokens: torch.Tensor, n: int = 4) -> torch.Tensor:
    """(B, L) bool: True on every token of an n-gram that already occurred earlier in its row.

    These are the tokens of a loop: in `a b c d a b c d` the second `a b c d` is marked."""
    mask = torch.zeros(tokens.shape, dtype=torch.bool)
    for b, row in enumerate(tokens.tolist()):
        seen: set[tuple[int, ...]] = set()
        for i in range(len(row) - n + 1):
            gram = tuple(row[i : i + n])
            if gram in seen:
                mask[b, i : i + n] = True
            seen.add(gram)
    return mask


def unlikelihood_loss(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of -log(1 - p(token)) over the masked tokens (Welleck et al. 2019): large only where
    the model was sure of a token it should not have repeated. logits (B, L, vocab) predict tokens (B, L)."""
    p = logits.float().softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return -(torch.log1p(-p.clamp(max=1 - 1e-5)) * mask).sum() / mask.sum().clamp(min=1)


def sequence_unlikelihood(model: torch.nn.Module, prefixes: torch.Tensor, new_tokens: int,
                          n: int = 4) -> tuple[torch.Tensor, float]:
    """The model continues `prefixes` (B, P) greedily, as it will for a learner; the loss is the
    unlikelihood of its repeated n-grams. Returns (loss, share of continuation tokens repeated).

    Sequence-level, not token-level: maximum likelihood on human text never shows the model its
    own loops, which appear only once it feeds on its own output."""
    was_training = model.training
    model.eval()
    prefixes = prefixes.to(device_of(model))
    with torch.no_grad():
        seq = model.generate(prefixes, attention_mask=torch.ones_like(prefixes), do_sample=False,
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             pad_token_id=model.config.pad_token_id)
    model.train(was_training)
    p = prefixes.shape[1]
    cont = seq[:, p:]  # (B, new_tokens)
    mask = repeated_ngrams(cont.cpu(), n).to(cont.device)
    logits = model(input_ids=seq[:, :-1], use_cache=False).logits[:, p - 1 :]  # predicts cont
    return unlikelihood_loss(logits, cont, mask), mask.float().mean().item()


# ---------------------------------------------------------------- optimizer and schedule


# ---------------------------------------------------------------- checkpoints


def save_checkpoint(path: Path, model, optimizer, scheduler, step: int, cfg: TrainConfig) -> None:
    """Write to a temporary file, then rename: a kill mid-save never leaves a broken ckpt.pt."""
    state = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "step": step, "config": asdict(cfg),
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                "python": random.getstate()},
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model, optimizer, scheduler) -> int:
    state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: trusted
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    return state["step"]


# ---------------------------------------------------------------- the loop


def train(
    model: torch.nn.Module,
    cfg: TrainConfig,
    get_batch: Callable[[int], torch.Tensor],  # step -> windows (B, T+1); must depend on step only
    val_sets: dict[str, torch.Tensor],  # name -> eval windows (N, T+1)
    byte_lengths: torch.Tensor,  # (vocab,) UTF-8 bytes per token id
    out_dir: str | Path,
    extra_loss: Callable[[torch.nn.Module, int], tuple[torch.Tensor, dict]] | None = None,
) -> torch.nn.Module:
    """Train, resuming from out_dir/ckpt.pt if it exists; logs to out_dir/log.jsonl.

    Batches come from `get_batch(step)` (a generator seeded by the step), so a resumed run sees
    exactly the batches the uninterrupted run would have seen. `extra_loss(model, step)` returns a
    loss and a dict logged beside it (e.g. `sequence_unlikelihood`); it too must depend on the step
    alone. Each step then makes a second update on that loss by itself: summed with the batch's
    loss under one clipped update at lr 2e-4, the pocket target's unlikelihood term cost it 0.055
    bits per byte on code in 100 steps; as two updates at 1e-4 (as much movement per step), 0.021.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    ckpt = out / "ckpt.pt"
    step = load_checkpoint(ckpt, model, optimizer, scheduler) if ckpt.exists() else 0
    log = open(out / "log.jsonl", "a")

    def write(record: dict) -> None:
        log.write(json.dumps(record) + "\n")
        log.flush()  # others (and tests) tail this file while we train

    def run_eval(windows_cap: int | None) -> dict:
        record = {"step": step, "kind": "eval", "time": time.time()}
        for name, windows in val_sets.items():
            w = windows if windows_cap is None else windows[:: max(1, len(windows) // windows_cap)][:windows_cap]
            for k, v in evaluate(model, w, byte_lengths).items():
                record[f"{name}_{k}"] = v
        write(record)
        return record

    if step == 0:
        write({"kind": "config", **asdict(cfg), "params": sum(p.numel() for p in model.parameters()),
               "device": device_name(device_of(model))})
        run_eval(cfg.eval_windows)
    else:
        write({"kind": "resume", "step": step})
    model.train()
    # redraw at most every few seconds when logging to a file (nohup), live in a terminal
    bar = tqdm(total=cfg.steps, initial=step, desc="train", dynamic_ncols=True,
               mininterval=0.1 if sys.stderr.isatty() else 5.0)
    tokens_per_step = cfg.batch * cfg.seq_len
    t0, step0 = time.time(), step
    while step < cfg.steps:
        loss = lm_loss(model, get_batch(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip).item()
        optimizer.step()
        extra = {}
        if extra_loss is not None:  # a second update, on the extra term's gradient alone
            term, extra = extra_loss(model, step)
            optimizer.zero_grad(set_to_none=True)
            term.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
        scheduler.step()
        step += 1
        tok_s = (step - step0) * tokens_per_step / (time.time() - t0)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tok_s:,.0f}")
        if step % cfg.log_every == 0:
            write({"step": step, "kind": "train", "loss": loss.item(), "grad_norm": grad_norm,
                   "lr": scheduler.get_last_lr()[0], "tok_s": tok_s, "time": time.time(), **extra})
        if step % cfg.eval_every == 0 or step == cfg.steps:
            r = run_eval(cfg.eval_windows)
            bar.write("step {step}: ".format(step=step) + "  ".join(
                f"{name} {r[name + '_nats_per_token']:.3f} nats/tok {r[name + '_bpb']:.3f} bpb"
                for name in val_sets))
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            save_checkpoint(ckpt, model, optimizer, scheduler, step, cfg)
    bar.close()
    if not (out / "final_eval.json").exists():  # once, on every val window: the number to report
        record = run_eval(None)
        (out / "final_eval.json").write_text(json.dumps(record, indent=1) + "\n")
    log.close()
    return model

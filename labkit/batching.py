"""Batch economics (`09_serving`): speculation pays at batch 1 and fades as batches grow.

At batch 1 a target forward over k + 1 tokens costs about what one token costs (decoding is
memory-bound: `01_one_token_at_a_time`), so verifying k drafts is nearly free. A server decodes B
requests at once: a plain step is then one forward over B tokens, a verification one over
B × (k + 1), and once B × (k + 1) tokens keep the arithmetic busy, verification costs what it
computes. `batch_costs` times the pocket target and drafter at each B; `costs_at` puts those times
into 05's `CostModel`, whose `speedup` is then the prediction at that batch size; `batched_run`
decodes B copies of one prompt, plain and speculative, to check the prediction.

Left out: ragged batches. Every row of `batched_run` holds the same prompt, so every row accepts
the same drafts and the batch stays rectangular; a server's rows accept different numbers, pads
to the longest and wastes the rest, so its speedup at batch B is lower than measured here. Also
left out: continuous batching, paged KV caches, tree drafts, and GPUs (run it there to see a
later, sharper knee).
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from transformers import DynamicCache

from labkit.experiments import CostModel, time_samples
from labkit.glassbox import draft_step, trim_kv, verify_step
from labkit.loading import Pair


@torch.inference_mode()
def batch_costs(pair: Pair, batches: Sequence[int] = (1, 2, 4, 8, 16, 32, 64), k: int = 4, context: int = 64,
                repeats: int = 5, seed: int = 0) -> list[dict[str, float]]:
    """Seconds, per batch size B, of one target forward over B × 1 tokens (`plain`), over
    B × (k + 1) tokens (`verify`), and one drafter step for B rows (`draft`), each after a
    `context`-token cache: the median of `repeats` (all of them in `samples`), every sample from a
    copy of the same cache."""
    device = next(pair.target.parameters()).device
    vocab = pair.target.config.get_text_config().vocab_size
    embed = pair.target.get_input_embeddings()
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for b in batches:
        prompt = torch.randint(vocab, (b, context), generator=gen).to(device)
        cache = DynamicCache(config=pair.target.config.get_text_config())
        out = verify_step(pair.target, cache, prompt, 0)
        last, hidden = prompt[:, -1:], out.hidden_states[-1][:, -1:]

        def verify(n: int) -> None:
            verify_step(pair.target, copy.deepcopy(cache),
                        torch.randint(vocab, (b, n), generator=gen).to(device), context)

        # the deep copy of the cache is part of a forward's samples: time it alone and take it off
        copying = statistics.median(time_samples(lambda: copy.deepcopy(cache), repeats))
        samples = {"plain": [max(t - copying, 1e-6) for t in time_samples(lambda: verify(1), repeats)],
                   "verify": [max(t - copying, 1e-6) for t in time_samples(lambda: verify(k + 1), repeats)],
                   "draft": time_samples(lambda: draft_step(pair.drafter, embed, last, hidden, out.shared_kv_states,
                                                              context - 1), repeats)}
        rows.append({"batch": b, **{name: statistics.median(v) for name, v in samples.items()}, "samples": samples})
    return rows


def costs_at(row: dict[str, float], k: int, loop: CostModel) -> CostModel:
    """05's cost model at one batch size: the forwards as measured at B, the loop's own work per
    step and per round as fitted at batch 1 (`loop`; a batch pays it once per step, not per row)."""
    slope = (row["verify"] - row["plain"]) / k  # a line through n = 1 and n = k + 1
    return replace(loop, t_target=row["plain"], t_draft=row["draft"], verify=(row["plain"] - slope, slope))


@torch.inference_mode()
def batched_run(pair: Pair, prompt_ids: torch.Tensor, batch: int, k: int = 4,
                max_new_tokens: int = 48) -> dict[str, Any]:
    """Greedy decoding of `batch` copies of one prompt (1, T), plain then speculative with the
    MTP drafter: wall seconds of each (prefill and decoding apart), tokens per target forward and
    per round, and whether the speculative rows equal the plain ones. Every row accepts the longest prefix that all rows accept (the
    same, since the rows are the same), so the batch stays rectangular and each row stays lossless."""
    ids = prompt_ids.expand(batch, -1)
    start = ids.shape[1]
    config, embed = pair.target.config.get_text_config(), pair.target.get_input_embeddings()

    t0 = time.perf_counter()
    cache = DynamicCache(config=config)
    out = verify_step(pair.target, cache, ids, 0)
    plain = [out.logits[:, -1].argmax(-1, keepdim=True)]
    t1 = time.perf_counter()
    while len(plain) < max_new_tokens:
        out = verify_step(pair.target, cache, plain[-1], start + len(plain) - 1)
        plain.append(out.logits[:, -1].argmax(-1, keepdim=True))
    plain_prefill, plain_decode = t1 - t0, time.perf_counter() - t1
    plain_ids = torch.cat(plain, dim=1)

    t0 = time.perf_counter()
    cache = DynamicCache(config=config)
    cache.activate_past_recording()  # lets crop() roll sliding-window layers back
    out = verify_step(pair.target, cache, ids, 0)
    new = out.logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
    t1 = time.perf_counter()
    rounds = 0
    hidden, kv, forwards = out.hidden_states[-1][:, -1:], out.shared_kv_states, 1
    while new.shape[1] < max_new_tokens:
        position = start + new.shape[1]  # where the first draft goes
        k_round = min(k, max_new_tokens - new.shape[1] - 1)
        token, h, drafts = new[:, -1:], hidden, []
        for _ in range(k_round):
            step = draft_step(pair.drafter, embed, token, h, kv, position - 1)  # logits (B, 1, vocab)
            token, h = step.logits[:, -1:].argmax(-1), step.last_hidden_state
            drafts.append(token)
        drafted = torch.cat([new[:, -1:], *drafts], dim=1)  # (B, k_round + 1)
        out = verify_step(pair.target, cache, drafted, position - 1)
        forwards, rounds = forwards + 1, rounds + 1
        top = out.logits.argmax(-1)  # (B, k_round + 1)
        agree = (top[:, :-1] == drafted[:, 1:]).long().cumprod(dim=1).sum(dim=1)  # accepted per row
        accepted = int(agree.min())
        new = torch.cat([new, drafted[:, 1 : accepted + 1], top[:, accepted : accepted + 1]], dim=1)
        if k_round > accepted:
            cache.crop(-(k_round - accepted))  # forget the rejected drafts' K/V
        kv = trim_kv(out.shared_kv_states, k_round - accepted, "exact", position + accepted + 1)
        hidden = out.hidden_states[-1][:, accepted : accepted + 1]
    spec_prefill, spec_decode = t1 - t0, time.perf_counter() - t1
    new = new[:, :max_new_tokens]
    return {"batch": batch, "k": k, "tokens": max_new_tokens, "rounds": rounds,
            "tokens_per_round": (max_new_tokens - 1) / rounds, "tau": max_new_tokens / forwards,
            "plain_prefill": plain_prefill, "plain_decode": plain_decode,
            "spec_prefill": spec_prefill, "spec_decode": spec_decode,
            "speedup": (plain_prefill + plain_decode) / (spec_prefill + spec_decode),
            "decode_speedup": plain_decode / spec_decode,  # what the cost model's long-run speedup predicts
            "identical": bool(torch.equal(new, plain_ids))}


def speedup_curve(rows: Sequence[dict[str, Any]], k: int, tokens_per_round: Any, loop: CostModel) -> list[dict[str, float]]:
    """The cost model's long-run speedup at each batch size of `batch_costs` rows; `tokens_per_round`
    an estimate with `value`, `lo`, `hi` (`metrics.interval`), which the band follows."""
    out = []
    for row in rows:
        model = costs_at(row, k, loop)
        out.append({"batch": row["batch"], **{end: model.speedup(getattr(tokens_per_round, end), k)
                                              for end in ("value", "lo", "hi")}})
    return out


def measured_points(runs: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], k: int,
                    loop: CostModel) -> list[dict[str, float]]:
    """`batched_run` results per batch size: the median decoding speedup over repeats with its
    min and max, and what the cost model predicts for the same prompt (its own tokens per round)."""
    by_batch = {row["batch"]: row for row in rows}
    out = []
    for b in sorted({r["batch"] for r in runs}):
        mine = [r for r in runs if r["batch"] == b]
        speedups = [r["decode_speedup"] for r in mine]
        model = costs_at(by_batch[b], k, loop)
        out.append({"batch": b, "value": statistics.median(speedups), "lo": min(speedups), "hi": max(speedups),
                    "predicted": model.speedup(statistics.fmean(r["tokens_per_round"] for r in mine), k),
                    "identical": all(r["identical"] for r in mine)})
    return out

"""Measure, in one run: plain target decoding, transformers' assisted generate (untraced and traced)
and the glass-box loop, on the same prompts, and report ratios rather than absolute seconds.

Ratios measured side by side in one process are what transfer between machines; absolute times
do not. Used by the `labkit bench` command (README); `05_speed_and_cost` reads timed traces instead.

`repeats` > 1 runs every path that many times per prompt and keeps the fastest run (timeit's
convention: the minimum is the least noisy estimate of what the code itself costs); outputs are
deterministic, so which run is kept does not change them.

Left out: warm-up beyond one prompt, confidence intervals, batched serving.
"""

from __future__ import annotations

import time
from dataclasses import replace
from collections.abc import Callable, Sequence
from operator import attrgetter, itemgetter
from typing import Any

import torch

from labkit import metrics
from labkit.generation import _text_tokenizer, check_settings, encode
from labkit.glassbox import speculate
from labkit.trace import Decoding
from labkit.tracing import drafter_settings, generation_config, trace_generate


def _timed_generate(pair: Any, ids: torch.Tensor, cfg: Any, seed: int, **kw: Any) -> tuple[list[int], float]:
    torch.manual_seed(seed)
    sync = ids.device.type == "cuda"
    if sync:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = pair.target.generate(ids, generation_config=cfg, **kw)
    if sync:
        torch.cuda.synchronize()
    return out[0].tolist(), time.perf_counter() - t0


def _fastest(repeats: int, run: Callable[[], Any], seconds: Callable[[Any], float]) -> Any:
    """The result of the fastest of `repeats` calls of `run`."""
    return min((run() for _ in range(max(1, repeats))), key=seconds)


def bench(
    pair: Any,
    prompts: Sequence[str],
    *,
    k: int = 4,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    repeats: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every path on every prompt; return the headline numbers as a JSON-ready dict."""
    from tqdm.auto import tqdm

    tok = _text_tokenizer(pair.tokenizer)
    cfg = generation_config(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
        eos_token_id=None, pad_token_id=tok.pad_token_id,
    )
    # No EOS: every path produces exactly max_new_tokens, so times compare like for like.
    # transformers' path as shipped (its sampling is biased; the lossless hook is measured apart)
    shipped = Decoding(k=k, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                       lossless=False)
    common = dict(pad_token_id=tok.pad_token_id, pair=pair.name)
    times = {"plain": 0.0, "transformers": 0.0, "transformers_traced": 0.0, "glassbox": 0.0}
    same = {"plain_vs_transformers": True, "traced_vs_untraced": True, "glassbox_vs_plain": True}
    traced, glass, lossless = [], [], []
    encoded = [encode(pair, p) for p in prompts]
    for ids in encoded:
        check_settings(pair, ids.shape[1], shipped, "transformers")
    # Warm-up: first calls pay for lazy initialisation in torch and transformers.
    with drafter_settings(pair.drafter, k, "constant"):
        _timed_generate(pair, encoded[0], cfg, seed)
        _timed_generate(pair, encoded[0], cfg, seed, assistant_model=pair.drafter)
    speculate(pair.target, pair.drafter, encoded[0], Decoding(k=k, max_new_tokens=8))

    second = itemgetter(1)
    for ids in tqdm(encoded, desc=f"bench k={k} T={temperature}", disable=not progress):
        plain, t = _fastest(repeats, lambda: _timed_generate(pair, ids, cfg, seed), second)
        times["plain"] += t
        with drafter_settings(pair.drafter, k, "constant"):
            assisted, t = _fastest(repeats, lambda: _timed_generate(
                pair, ids, cfg, seed, assistant_model=pair.drafter), second)
        times["transformers"] += t
        tr = _fastest(repeats, lambda: trace_generate(pair.target, pair.drafter, ids, shipped, **common),
                      attrgetter("wall"))
        times["transformers_traced"] += tr.wall
        g = _fastest(repeats, lambda: speculate(pair.target, pair.drafter, ids, shipped, pair=pair.name),
                     attrgetter("wall"))
        times["glassbox"] += g.wall
        traced.append(tr)
        glass.append(g)
        same["traced_vs_untraced"] &= list(tr.output_ids) == assisted
        if temperature == 0.0:
            same["plain_vs_transformers"] &= plain == assisted
            same["glassbox_vs_plain"] &= list(g.output_ids) == plain
        else:
            lossless.append(trace_generate(pair.target, pair.drafter, ids, replace(shipped, lossless=True),
                                           **common))
    if temperature > 0.0:  # sampled outputs differ by design; equality is only owed to tracing
        same = {"traced_vs_untraced": same["traced_vs_untraced"]}

    s, sg = metrics.summarize(traced), metrics.summarize(glass)
    result: dict[str, Any] = {
        "pair": pair.name,
        "device": str(pair.device),
        "threads": torch.get_num_threads(),
        "prompts": len(prompts),
        "max_new_tokens": max_new_tokens,
        "k": k,
        "temperature": temperature,
        "top_p": top_p,
        "repeats": repeats,
        "identical": all(same.values()),
        "identical_detail": same,
        "tau": round(s.tau, 3),
        "tau_glassbox": round(sg.tau, 3),
        "alpha": round(s.alpha, 3),
        "acceptance_by_position": [round(a, 3) for a in s.acceptance],
        "acceptance_by_position_glassbox": [round(a, 3) for a in sg.acceptance],
        "speedup": round(times["plain"] / times["transformers"], 3),
        "speedup_glassbox": round(times["plain"] / times["glassbox"], 3),
        "trace_overhead": round(times["transformers_traced"] / times["transformers"], 3),
        "glassbox_vs_transformers": round(times["glassbox"] / times["transformers"], 3),
        "seconds": {name: round(t, 3) for name, t in times.items()},
        "time_split_transformers": {
            "draft": round(s.t_draft, 3), "verify": round(s.t_verify, 3), "rest": round(s.t_rest, 3)
        },
    }
    if temperature > 0.0:
        result["tv_transformers"] = round(s.tv, 4)
        result["tv_transformers_lossless"] = round(metrics.summarize(lossless).tv, 6)
        result["tv_glassbox"] = round(sg.tv, 6)
        result["tau_transformers_lossless"] = round(metrics.tau(lossless), 3)
    return result

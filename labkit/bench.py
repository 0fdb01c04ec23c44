"""Measure, in one run: plain target decoding, a drafting method on transformers' `generate` (the
MTP drafter's also traced) and on the glass-box loop, on the same prompts, and report ratios
rather than absolute seconds, overall and per task.

Ratios measured side by side in one process are what transfer between machines; absolute times
do not. Used by the `labkit bench` command (README); `05_speed_and_cost` reads timed traces instead.
`08_choosing_a_drafter` races methods on the glass-box loop with `race_runner` (its widget's `run`)
and `timed_race` (every method on every text, timed fairly by `experiments.time_paths`).

`repeats` > 1 runs every path that many times per prompt and keeps the fastest run (timeit's
convention: the minimum is the least noisy estimate of what the code itself costs); outputs are
deterministic, so which run is kept does not change them.

The glass box runs any of `11_beyond_one_chain`'s strategies (`drafts`, `verify`, `stop_below`,
`tree`: `labkit.strategies`); transformers' path runs as it ships, one chain.

The glass box's tau and speedup come with a 90% bootstrap interval over the prompts
(`*_glassbox_interval`, `_ratio_interval`).

Left out: warm-up beyond one prompt, intervals for transformers' path, batched serving.
"""

from __future__ import annotations

import time
from dataclasses import replace
from collections.abc import Callable, Sequence
from operator import attrgetter, itemgetter
from typing import Any

import torch

from labkit import metrics, strategies
from labkit.chat import chat_keywords
from labkit.errors import BadInputError
from labkit.experiments import time_paths
from labkit.generation import check_settings, encode, run, text_tokenizer
from labkit.methods import check_draft_model, check_method, count_forwards, drafting, generate_kwargs, glassbox_drafter
from labkit.glassbox import speculate
from labkit.loading import Pair
from labkit.trace import Decoding
from labkit.tracing import drafter_settings, generation_config, trace_generate


def _timed_generate(pair: Pair, ids: torch.Tensor, cfg: Any, seed: int, **kw: Any) -> tuple[list[int], float]:
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
    pair: Pair,
    prompts: Sequence[str],
    *,
    method: str = "mtp",
    tasks: Sequence[str] | None = None,
    draft_model: Any = None,
    k: int = 4,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    repeats: int = 1,
    progress: bool = True,
    drafts: str = "sampled",
    verify: str = "token",
    stop_below: float = 0.0,
    tree: int = 1,
    check_block: bool = False,
) -> dict[str, Any]:
    """Run the target alone and `method` (labkit.methods) on every prompt, on transformers' path and
    the glass box; return the headline numbers as a JSON-ready dict, per task too when `tasks`
    (one name per prompt) is given. The MTP drafter's path is also traced round by round.
    drafts, verify, stop_below, tree: the glass box's strategy (`labkit.strategies`, chapter 11).
    check_block: under block verification at k = 2 and T > 0, run the glass box once more per prompt
    with every round's exact TV (`strategies.block_round_tv`, seconds a round), untimed: tv_glassbox
    (mean), tv_glassbox_max and tv_glassbox_rounds then report it."""
    from tqdm.auto import tqdm

    check_method(method, draft_model)
    strategy = dict(drafts=drafts, verify=verify, stop_below=stop_below, tree=tree)
    strategies.check(Decoding(**strategy))
    if check_block and (verify != "block" or k != 2 or temperature == 0.0 or tree > 1 or method != "mtp"):
        raise BadInputError("--check-block checks block verification's sampled rounds of two MTP drafts: "
                            "run it with --verify block --k 2 --temperature 1.0 (and no --tree)")
    if tree > 1 and method != "mtp":
        raise BadInputError(f"--tree {tree} drafts with the MTP drafter's top tokens; method {method!r} drafts one chain")
    if draft_model is not None:
        check_draft_model(pair, draft_model)
    tasks = list(tasks) if tasks is not None else ["all"] * len(prompts)
    if len(tasks) != len(prompts):
        raise BadInputError(f"{len(tasks)} task names for {len(prompts)} prompts: give one per prompt")
    tok = text_tokenizer(pair.tokenizer)
    cfg = generation_config(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
        eos_token_id=None, pad_token_id=tok.pad_token_id,
    )
    # No EOS: every path produces exactly max_new_tokens, so times compare like for like.
    # transformers' path as shipped (its sampling is biased; the lossless hook is measured apart)
    shipped = Decoding(k=k, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                       lossless=False)
    glass_settings = replace(shipped, lossless=True, **strategy)  # the glass box is always lossless
    common = dict(pad_token_id=tok.pad_token_id, pair=pair.name)
    kw = generate_kwargs(method, pair, k, draft_model)
    drafter = glassbox_drafter(method, pair, draft_model)
    encoded = [encode(pair, p) for p in prompts]
    for ids in encoded:
        check_settings(pair, ids.shape[1], shipped, "transformers")
    # Warm-up: first calls pay for lazy initialisation in torch and transformers.
    with drafting(method, pair, k, draft_model):
        _timed_generate(pair, encoded[0], cfg, seed)
        _timed_generate(pair, encoded[0], cfg, seed, **kw)
    if drafter is not None:
        speculate(pair.target, drafter, encoded[0], replace(glass_settings, max_new_tokens=8))

    second = itemgetter(1)
    rows = []
    for ids, task in tqdm(list(zip(encoded, tasks)), desc=f"bench {method} k={k} T={temperature}",
                          disable=not progress):
        row: dict[str, Any] = {"task": task}
        plain, row["plain"] = _fastest(repeats, lambda: _timed_generate(pair, ids, cfg, seed), second)
        with drafting(method, pair, k, draft_model), count_forwards(pair.target) as passes:
            (drafted, row["method"]), calls = _fastest(repeats, lambda: _timed_generate(pair, ids, cfg, seed, **kw),
                                                       second), passes[0]
        row["passes"] = calls / max(1, repeats)  # the target's forward passes per call, prefill included
        row["new"] = len(drafted) - ids.shape[1]
        row["same"] = {} if temperature > 0 else {"plain_vs_transformers": plain == drafted}
        if drafter is not None:
            glass = glassbox_drafter(method, pair, draft_model)  # fresh: an independent drafter keeps a cache
            row["glass"] = g = _fastest(repeats, lambda: speculate(pair.target, glass, ids, glass_settings,
                                                                   pair=pair.name), attrgetter("wall"))
            if temperature == 0.0:
                row["same"]["glassbox_vs_plain"] = list(g.output_ids) == plain
            elif check_block and verify == "block":  # the same run again, each round checked exactly
                checked = speculate(pair.target, glass, ids, glass_settings, pair=pair.name, check_block=True)
                row["same"]["checked_vs_timed"] = checked.new_ids == g.new_ids
                row["glass"] = replace(g, rounds=tuple(replace(r, tv=c.tv) for r, c in zip(g.rounds, checked.rounds)))
        if method == "mtp":  # transformers' own path, round by round
            with drafter_settings(pair.drafter, k, "constant"):
                row["traced"] = tr = _fastest(repeats, lambda: trace_generate(pair.target, pair.drafter, ids, shipped,
                                                                              **common), attrgetter("wall"))
            row["same"]["traced_vs_untraced"] = list(tr.output_ids) == drafted
            if temperature > 0.0:
                row["lossless"] = trace_generate(pair.target, pair.drafter, ids, replace(shipped, lossless=True),
                                                 **common)
        rows.append(row)
    result = {"pair": pair.name, "device": str(pair.device), "threads": torch.get_num_threads(),
              "prompts": len(prompts), "max_new_tokens": max_new_tokens, "k": k, "temperature": temperature,
              "top_p": top_p, "repeats": repeats, "method": method, "strategy": strategies.describe(glass_settings),
              **strategy, **_summary(rows, method, temperature)}
    if set(tasks) != {"all"}:
        result["by_task"] = {task: {key: value for key, value in _summary(
            [r for r in rows if r["task"] == task], method, temperature).items()
            if key in ("tau", "tau_glassbox", "speedup", "speedup_glassbox", "identical")} | {"prompts": tasks.count(task)}
            for task in dict.fromkeys(tasks)}
    return result


def _rounds(traces: list[Any], out: dict[str, Any], suffix: str) -> Any:
    """tau, alpha and acceptance by position of some traces into `out` (keys end with `suffix`)."""
    s = metrics.summarize(traces)
    out.update({f"tau{suffix}": round(s.tau, 3), "alpha": round(s.alpha, 3),
                f"acceptance_by_position{suffix}": [round(a, 3) for a in s.acceptance]})
    return s


def _ratio_interval(num: Sequence[float], den: Sequence[float], level: float = 0.9, n_boot: int = 1000,
                    seed: int = 0) -> list[float]:
    """[lo, hi]: a percentile bootstrap interval of sum(num) / sum(den), prompts resampled (as
    `metrics.interval` does for traces); a ratio of totals, as every speedup here is."""
    import random

    rng, n, values = random.Random(seed), len(num), []
    for _ in range(n_boot):
        idx = [rng.randrange(n) for _ in range(n)]
        values.append(sum(num[i] for i in idx) / sum(den[i] for i in idx))
    values.sort()
    tail = (1 - level) / 2
    return [round(values[int(tail * (n_boot - 1))], 3), round(values[int(round((1 - tail) * (n_boot - 1)))], 3)]


def _summary(rows: list[dict], method: str, temperature: float) -> dict[str, Any]:
    """The headline numbers of some rows of `bench`: tau, acceptance, speedup, output equality."""
    same = {key: all(r["same"][key] for r in rows) for key in rows[0]["same"]}
    seconds = {"plain": sum(r["plain"] for r in rows), "transformers": sum(r["method"] for r in rows)}
    passes = sum(r["passes"] for r in rows)
    out: dict[str, Any] = {
        "identical": all(same.values()), "identical_detail": same,
        # new tokens per target forward pass, prefill included (metrics.tau's definition)
        "tau": round(sum(r["new"] for r in rows) / passes, 3) if passes else None,
        "speedup": round(seconds["plain"] / seconds["transformers"], 3),
    }
    glass = [r["glass"] for r in rows if "glass" in r]
    if glass:
        sg = _rounds(glass, out, "_glassbox")
        seconds["glassbox"] = sum(g.wall for g in glass)
        out.update(speedup_glassbox=round(seconds["plain"] / seconds["glassbox"], 3),
                   glassbox_vs_transformers=round(seconds["glassbox"] / seconds["transformers"], 3))
        paired = [r for r in rows if "glass" in r]
        out.update(tau_glassbox_interval=_ratio_interval([len(r["glass"].new_ids) for r in paired],
                                                         [r["glass"].target_forwards for r in paired]),
                   speedup_glassbox_interval=_ratio_interval([r["plain"] for r in paired],
                                                             [r["glass"].wall for r in paired]))
        if temperature > 0.0:
            # None under block verification unless check_block (k = 2): its first token depends on
            # drafts it never drew (strategies.block_round_tv; other k: strategies.exact_joint)
            out["tv_glassbox"] = round(sg.tv, 6) if sg.tv is not None else None
            tvs = [r.tv for g in glass for r in g.rounds if r.tv is not None]
            out.update(tv_glassbox_max=float(f"{max(tvs):.3g}") if tvs else None, tv_glassbox_rounds=len(tvs))
    else:  # the target alone: one token per pass
        out.update(tau_glassbox=None, alpha=None, acceptance_by_position_glassbox=None, speedup_glassbox=None,
                   glassbox_vs_transformers=None)
    traced = [r["traced"] for r in rows if "traced" in r]
    if traced:
        s = _rounds(traced, out, "")
        seconds["transformers_traced"] = sum(t.wall for t in traced)
        out.update(trace_overhead=round(seconds["transformers_traced"] / seconds["transformers"], 3),
                   time_split_transformers={"draft": round(s.t_draft, 3), "verify": round(s.t_verify, 3),
                                            "rest": round(s.t_rest, 3)})
        if temperature > 0.0:
            lossless = [r["lossless"] for r in rows]
            out.update(tv_transformers=round(s.tv, 4),
                       tv_transformers_lossless=round(metrics.summarize(lossless).tv, 6),
                       tau_transformers_lossless=round(metrics.tau(lossless), 3))
    else:  # untraced: acceptance by position comes from the glass box, which drafts the same tokens
        out.update(acceptance_by_position=out["acceptance_by_position_glassbox"], trace_overhead=None,
                   time_split_transformers=None)
    out["seconds"] = {name: round(t, 3) for name, t in seconds.items()}
    return out


# -- races on the glass-box loop (08_choosing_a_drafter) ---------------------------------------


def race_runner(pair: Pair, draft_model: Any = None, max_new_tokens: int = 32, thinking: bool | None = None) -> Any:
    """The `run` of `widgets.DrafterRace` (`08`): (text, method, k) → that method's trace on the
    glass-box loop, greedy, `max_new_tokens` new tokens ("none": the same loop without drafts).
    The text may be chat messages (`10_chat_and_thinking`, with `thinking` on or off): the reply
    then stops at the end of its turn."""
    def race(text: Any, method: str, k: int) -> Any:
        drafter = draft_model if method == "draft-model" else method
        if method == "draft-model" and draft_model is None:
            check_method(method, None)
        return run(pair, text, path="glassbox", drafter=drafter, k=k, max_new_tokens=max_new_tokens,
                   **chat_keywords(text, thinking))

    return race


def timed_race(pair: Pair, texts: list[str], methods: tuple[str, ...] | list[str], k: int, *, draft_model: Any = None,
               max_new_tokens: int = 32, repeats: int = 1, warmup: bool = True) -> dict[str, list[Any]]:
    """Every method on every text, timed fairly (`experiments.time_paths`): {method: one `Timed`
    per text}. Each method warms up once on the first text, then on each text the methods take
    turns, the one going first rotating from text to text (`08`; `experiments.speedup_of` pools
    the texts into a median speedup with its range)."""
    race = race_runner(pair, draft_model, max_new_tokens)
    out: dict[str, list[Any]] = {m: [] for m in methods}
    for i, text in enumerate(texts):
        timed = time_paths({m: (lambda m=m: race(text, m, k)) for m in methods}, repeats=repeats,
                           warmup=warmup and i == 0, offset=i)
        for m in methods:
            out[m].append(timed[m])
    return out

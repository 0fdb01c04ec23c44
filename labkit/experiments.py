"""The cost model of `05_speed_and_cost`, fitted on traces, and timings of a real pair's shapes.

`predicted_speedup` is the textbook-shaped model: tau(alpha, k) / (k c + v(k + 1)), where v(n) is
the cost of a target forward over n tokens relative to one token (v = 1 is the textbook's
"verification is free"). `CostModel` / `fit_costs` add what the textbook leaves out, the decoding
loop's own work per step (paid per token by plain decoding, per round by speculation), and
`predict` turns a fitted model into a speedup for a set of traces. `real_pair_costs` measures c
and v for a real pair's *shapes* on this machine, with random weights.

Introduced in `05_speed_and_cost`; `11_beyond_one_chain` extends it: a tree of W branches verifies
1 + W k tokens, v(1 + W k) (`verify_width`), and a round stopped early drafts fewer (a trace's rounds
keep their own k). Intervals come from `metrics.interval` (prompts resampled).
`time_paths` is how every live timing in the chapters runs: each path warmed up, then repeats
interleaved, reported as a median with its range (`Timed`, and `Speedup` from `speedup_of`).
Every timing runs on the device its models are on, with a GPU synchronised before each clock read
(`synchronize`). Left out: batched serving, and GPU-specific effects (CUDA graphs, kernel fusion).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from labkit import architecture, metrics
from labkit.trace import Trace


def predicted_speedup(alpha: float, k: int, c: float, verify: float = 1.0) -> float:
    """Cost model: tokens per round over the round's cost in plain-forward units.

    A round costs k drafter steps (c each) and one target forward over k + 1 tokens (`verify`
    times a one-token forward). verify = 1 gives the closed form of `metrics.expected_speedup`.
    """
    return metrics.expected_tau(alpha, k) / (k * c + verify)


def _line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of ys on xs; a flat line through the mean for one distinct x."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - slope * mx, slope


@dataclass(frozen=True)
class CostModel:
    """What each part of decoding costs on this machine, in seconds, read off traces (`05_speed_and_cost`).

    Plain decoding pays, per token, one target forward over one token *and* the decoding loop's
    own work around it (picking the token, growing the cache, Python): `loop_plain`. Speculative
    decoding pays, per round, k drafter steps, one target forward over k + 1 tokens, and the loop's
    work for the round, `loop_round`. The textbook model keeps only the forwards; the loop's work is
    what it leaves out, and plain decoding pays it once per token where speculation pays it once
    per round.
    """

    t_target: float  # one target forward over one token (plain decoding's step), mean
    loop_plain: float  # plain decoding's work per token outside the forward, mean
    t_draft: float  # one drafter step, mean over drafted tokens
    verify: tuple[float, float]  # target forward over n tokens ≈ verify[0] + verify[1] · n seconds
    loop_round: tuple[float, float]  # a round's work outside both models ≈ loop_round[0] + loop_round[1] · k
    prefill: float  # the prompt's forward (the same on both paths), mean

    @property
    def c(self) -> float:
        """One drafter step in target forwards."""
        return self.t_draft / self.t_target

    def v(self, n: int) -> float:
        """A target forward over n tokens, in one-token forwards."""
        return (self.verify[0] + self.verify[1] * n) / self.t_target

    def round_seconds(self, k: float, loop: bool = True, width: int = 1) -> float:
        """One speculative round at k: k drafter steps, a verify over k + 1 tokens, and the loop.
        A tree of `width` branches verifies 1 + width k tokens; its drafter steps are batched (one
        row per branch) and priced as one step each, which the fit measures on tree traces. k may be
        a mean (rounds stopped early by confidence draft fewer)."""
        work = self.loop_round[0] + self.loop_round[1] * k if loop else 0.0
        return k * self.t_draft + self.verify[0] + self.verify[1] * (1 + width * k) + work

    def plain_seconds(self, loop: bool = True) -> float:
        """One plain decoding step."""
        return self.t_target + (self.loop_plain if loop else 0.0)

    def speedup(self, tokens_per_round: float, k: float, new_tokens: int | None = None, loop: bool = True,
                width: int = 1) -> float:
        """Predicted wall-clock speedup at k, given the tokens a round yields.

        With `new_tokens`, a whole generation: prefill, then new_tokens - 1 tokens in rounds;
        without, the long-generation limit. width: a tree's branches (`round_seconds`).
        """
        plain, spec = self.plain_seconds(loop), self.round_seconds(k, loop, width) / tokens_per_round
        if new_tokens is None:
            return plain / spec
        n = new_tokens - 1
        return (self.prefill + n * plain) / (self.prefill + n * spec)


def verify_width(trace: Trace, r: Any) -> int:
    """Tokens the target read in a round's verify: the last kept token and every draft, 1 + k for a
    chain, 1 + W k for a tree of W branches (`labkit.tree`; its rounds record the branch followed)."""
    return 1 + trace.settings.tree * r.k


def fit_costs(plain: Sequence[Trace], spec: Sequence[Trace]) -> CostModel:
    """A `CostModel` from plain traces and speculative traces (any mix of k, one trace per prompt).

    The verify and loop lines are fitted across every round's k, so the model predicts k it was
    not fitted at too; the plain side comes from plain traces only. Prefill rounds are left out
    of every per-step figure.
    """
    steps = [r for t in plain for r in t.rounds[1:]]
    rounds = [r for t in spec for r in t.rounds if r.k > 0]
    if not steps or not rounds:
        raise ValueError("fit_costs needs plain traces of two or more tokens and speculative traces with drafts")
    # Means, not medians: a speedup is a ratio of total times, and a total pays for its slow steps too.
    return CostModel(
        t_target=statistics.fmean(r.t_verify for r in steps),
        loop_plain=statistics.fmean(r.t_rest for r in steps),
        t_draft=sum(r.t_draft for r in rounds) / sum(r.k for r in rounds),
        verify=_line([verify_width(t, r) for t in spec for r in t.rounds if r.k > 0], [r.t_verify for r in rounds]),
        loop_round=_line([r.k for r in rounds], [r.t_rest for r in rounds]),
        prefill=statistics.fmean(t.rounds[0].seconds for t in [*plain, *spec]),
    )


def predict(costs: CostModel, spec: Sequence[Trace], loop: bool = True) -> float:
    """The cost model's speedup for these speculative traces, against plain decoding of the same length.

    Acceptance is taken as measured (each trace's own rounds and their k); only time is modelled:
    a trace costs the prefill plus `costs.round_seconds(k)` per round, plain decoding the prefill
    plus `costs.plain_seconds()` per token after the first.
    """
    # a round after the prefill that drafted nothing (the last token) is a plain step
    spec_seconds = sum(costs.prefill + sum(costs.round_seconds(r.k, loop, t.settings.tree) if r.k
                                           else costs.plain_seconds(loop)
                                           for r in t.rounds[1:])
                       for t in spec)
    plain_seconds = sum(costs.prefill + (len(t.new_ids) - 1) * costs.plain_seconds(loop) for t in spec)
    return plain_seconds / spec_seconds


def synchronize(device: torch.device | str) -> None:
    """Wait for `device`'s queued work: a GPU runs kernels asynchronously, so a clock read without
    this stops at the last launch, not at the end of the work. A no-op on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_name(device: torch.device | str) -> str:
    """How a chapter names where it timed: "1 CPU thread" (torch's threads) or the GPU's name."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"{n} CPU thread{'s' if n > 1 else ''}"
    return str(device)


@torch.inference_mode()
def time_samples(fn: Any, repeats: int) -> list[float]:
    """Seconds of `repeats` calls of `fn`, after one warm-up call (also `labkit.batching`)."""
    # a GPU runs kernels asynchronously: without a sync the clock stops at the last launch
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t0)
    return samples


@dataclass(frozen=True)
class Timed:
    """One decoding path timed several times (`time_paths`): the seconds of every repeat, and the
    trace of the run whose time is the median, so code that reads `trace.wall` reads the median."""

    trace: Trace  # the median run (for an even count, the faster of the middle two)
    seconds: tuple[float, ...]  # every repeat's wall time, in the order they ran

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def lo(self) -> float:
        return min(self.seconds)

    @property
    def hi(self) -> float:
        return max(self.seconds)

    def __str__(self) -> str:
        if len(self.seconds) == 1:
            return f"{self.median:.3f} s (one run)"
        return f"{self.median:.3f} s (median of {len(self.seconds)}, {self.lo:.3f}–{self.hi:.3f})"

    @classmethod
    def once(cls, trace: Trace) -> Timed:
        """A single run as a `Timed` (a widget given bare traces, a test's fake)."""
        return cls(trace, (trace.wall,))


@dataclass(frozen=True)
class Speedup:
    """Plain seconds over speculative seconds, repeat by repeat (`speedup_of`): the median of the
    paired ratios and their range. Repeats ran interleaved, so a ratio compares runs that shared
    the machine's state at the time."""

    value: float  # median of the per-repeat ratios
    lo: float  # smallest ratio
    hi: float  # largest ratio
    repeats: int

    @property
    def how(self) -> str:
        """How it was measured, in words: "one run each" or "median of 3 paired timings, range 1.10–1.31"."""
        if self.repeats == 1:
            return "one run each"
        return f"median of {self.repeats} paired timings, range {self.lo:.2f}–{self.hi:.2f}"

    def __str__(self) -> str:
        return f"{self.value:.2f}× ({self.how})"


def time_paths(runs: Mapping[Any, Callable[[], Trace]], repeats: int = 3, warmup: bool = True,
               offset: int = 0) -> dict[Any, Timed]:
    """Time decoding paths fairly: each `runs[name]()` returns a trace (its `wall` is the time).

    Every path runs once untimed first (`warmup`: torch's first-call costs, allocator growth and
    caches are paid before any timing, by every path alike), then `repeats` rounds run every path
    once each, interleaved, the order rotating from round to round, so that a slow spell of the
    machine falls on all paths rather than on whichever ran first. Used by 00, 01, 08 and by the
    tour and race widgets; `speedup_of` turns two results into a speedup with its spread. `offset`
    shifts the rotation (timing many prompts once each, pass the prompt's index: the paths take
    turns at going first).
    """
    if repeats < 1:
        raise ValueError("time_paths needs at least one repeat")
    names = list(runs)
    if warmup:
        for name in names:
            runs[name]()
    traces: dict[Any, list[Trace]] = {name: [] for name in names}
    for i in range(offset, offset + repeats):
        for name in names[i % len(names):] + names[: i % len(names)]:
            traces[name].append(runs[name]())
    out = {}
    for name, ts in traces.items():
        ordered = sorted(ts, key=lambda t: t.wall)
        out[name] = Timed(ordered[(len(ordered) - 1) // 2], tuple(t.wall for t in ts))
    return out


def speedup_of(plain: Timed | Sequence[Timed], spec: Timed | Sequence[Timed]) -> Speedup:
    """The speedup of `spec` over `plain`, timed together by `time_paths`: repeat i's plain time over
    repeat i's speculative time, median and range. Given lists (one `Timed` per prompt, paired by
    position), every prompt's repeats are pooled: the spread then covers prompts as well as noise."""
    plains = [plain] if isinstance(plain, Timed) else list(plain)
    specs = [spec] if isinstance(spec, Timed) else list(spec)
    ratios = sorted(p / s for a, b in zip(plains, specs) for p, s in zip(a.seconds, b.seconds) if s > 0)
    if not ratios:
        return Speedup(float("nan"), float("nan"), float("nan"), 0)
    return Speedup(statistics.median(ratios), ratios[0], ratios[-1], len(ratios))


def _median_time(fn: Any, repeats: int) -> float:
    return statistics.median(time_samples(fn, repeats))


def real_pair_costs(
    name: str = "E2B", ns: Sequence[int] = (1, 2, 4, 8), layers: int = 2, vocab_size: int = 2048,
    repeats: int = 3, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
) -> dict[str, Any]:
    """Time a real pair's shapes on `device` in `dtype` with random weights; extrapolate to the full depth.

    Measured: `layers` target layers of the real geometry (a forward over n tokens after a
    128-token context), the real vocabulary's output projection (on a 1/16 slice, times 16), and
    one step of the real assistant (all its layers; vocabulary truncated to `vocab_size`).
    Assumed: a target forward = (real layers / measured layers) × the measured layers + the
    output projection; KV-shared layers cost like the others; embeddings and the drafter's
    centroid head are negligible. The result is a *prediction*, not a measurement of the real pair.
    `05_speed_and_cost` passes the device and precision its pair runs in (a GPU's clock is read after
    its queued work is done: `time_samples` synchronizes).
    """
    from transformers import Gemma4AssistantForCausalLM

    device = torch.device(device)
    real = architecture.load_config(name).get_text_config()
    target = architecture.scaled_text_decoder(name, layers=layers, vocab_size=vocab_size).to(device, dtype)
    curve = dict(architecture.forward_cost_curve(target, ns=ns, repeats=repeats))
    head = torch.nn.Linear(real.hidden_size, real.vocab_size // 16, bias=False, device=device, dtype=dtype)
    depth = real.num_hidden_layers / layers
    t_target = {n: depth * t + 16 * _median_time(
        lambda n=n: head(torch.randn(1, n, real.hidden_size, device=device, dtype=dtype)), repeats)
        for n, t in curve.items()}

    acfg = architecture.load_config(f"{name}-assistant")
    acfg.vocab_size = acfg.text_config.vocab_size = vocab_size
    drafter = Gemma4AssistantForCausalLM(acfg).to(device, dtype).eval()
    ctx = torch.randint(vocab_size, (1, 128)).to(device)
    with torch.inference_mode():
        out = target(input_ids=ctx, use_cache=True, output_hidden_states=True, return_shared_kv_states=True)
    step = dict(inputs_embeds=torch.randn(1, 1, 2 * real.hidden_size, device=device, dtype=dtype),
                position_ids=torch.tensor([[127]], device=device), shared_kv_states=out.shared_kv_states,
                attention_mask=torch.ones(1, 128, dtype=torch.long, device=device))
    t_draft = _median_time(lambda: drafter(**step), repeats)
    return {
        "name": name,
        "t_target": t_target,  # seconds per target forward over n tokens (predicted)
        "verify": {n: t / t_target[1] for n, t in t_target.items()},  # v(n)
        "t_draft": t_draft,
        "c": t_draft / t_target[1],
        "measured_layers": layers,
        "real_layers": real.num_hidden_layers,
        "where": device_name(device),  # "1 CPU thread" or the GPU's name
        "dtype": str(dtype).removeprefix("torch."),
    }

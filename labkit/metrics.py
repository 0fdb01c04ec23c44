"""Numbers from traces, and the closed-form theory they are compared with.

Everything here reads `Trace` objects only (no torch), so it works on saved traces too.
Introduced in `00_tour`; the theory is the subject of `04_acceptance` and `05_speed_and_cost`.
`SpecDecodeCounts` holds the same rounds as vLLM's counters count them (`09_serving`;
`labkit.serving` reads them from a server's /metrics).

Theory (Leviathan et al. 2023): with per-token acceptance alpha and k drafts per round, a target
forward yields on average (1 - alpha^(k+1)) / (1 - alpha) tokens; with c = drafter cost / target
cost per forward, the speedup over plain decoding is that divided by (k c + 1).

Intervals (`interval`) are percentile bootstraps over prompts: a prompt's rounds are not
independent (an easy prompt has many long rounds), so the prompt is the unit that is resampled.

Left out: cost models for batched serving (`labkit.batching`), and intervals that account for timing noise within one
prompt (a prompt is timed once).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from labkit.chat import SEGMENTS
from labkit.errors import BadInputError
from labkit.trace import Round, Trace


def drafting_rounds(traces: Trace | Iterable[Trace]) -> list[Round]:
    traces = [traces] if isinstance(traces, Trace) else list(traces)
    return [r for t in traces for r in t.rounds if r.k > 0]


def tau(traces: Trace | Iterable[Trace]) -> float:
    """Mean new tokens per target forward (prefill included). Plain decoding gives exactly 1."""
    traces = [traces] if isinstance(traces, Trace) else list(traces)
    tokens = sum(len(t.new_ids) for t in traces)
    forwards = sum(t.target_forwards for t in traces)
    return tokens / forwards if forwards else 0.0


def acceptance_by_position(
    traces: Trace | Iterable[Trace], conditional: bool = False
) -> list[float]:
    """Acceptance rate at draft position 1, 2, ...

    Unconditional: P(draft j accepted) over rounds that drafted at least j tokens.
    Conditional: P(draft j accepted | drafts 1..j-1 accepted), the per-token alpha_j.
    """
    rounds = drafting_rounds(traces)
    k_max = max((r.k for r in rounds), default=0)
    rates = []
    for j in range(1, k_max + 1):
        eligible = [r for r in rounds if r.k >= j and (not conditional or r.accepted >= j - 1)]
        # A round cut short by EOS or max length never had draft j judged.
        eligible = [r for r in eligible if r.accepted >= j or r.rejected]
        rates.append(sum(r.accepted >= j for r in eligible) / len(eligible) if eligible else float("nan"))
    return rates


def alpha(traces: Trace | Iterable[Trace]) -> float:
    """Maximum-likelihood per-token acceptance: accepted drafts / drafts judged.

    A round judges its accepted drafts plus the one it rejected (if any); drafts after a rejection
    were never judged, which is why this is not accepted / drafted.
    """
    rounds = drafting_rounds(traces)
    accepted = sum(r.accepted for r in rounds)
    judged = accepted + sum(r.rejected for r in rounds)
    return accepted / judged if judged else float("nan")


def tokens_per_round(traces: Trace | Iterable[Trace]) -> float:
    """Mean tokens a drafting round yields (accepted drafts + the target's own token), over the
    rounds that drafted a trace's full k: what the closed form `expected_tau` predicts.

    `tau` is lower on short generations: it also counts the prefill forward (one token) and the
    last rounds, which draft fewer than k to stop at max_new_tokens.
    """
    traces = [traces] if isinstance(traces, Trace) else list(traces)
    rounds = [r for t in traces for r in t.rounds if r.k > 0 and r.k == t.k]
    return sum(r.accepted + 1 for r in rounds) / len(rounds) if rounds else float("nan")


def accepted_length(traces: Trace | Iterable[Trace]) -> float:
    """Mean tokens per verification round, the prefill left out: what EAGLE and Spec-Bench report as
    the (mean) accepted length τ. vLLM's mean acceptance length (`SpecDecodeCounts`) is the same ratio
    over the rounds that drafted; the two differ by the lab's last rounds, which draft nothing once
    the token budget leaves room for one token only.

    Every target forward after the prefill is a round that yields its accepted drafts plus the
    target's own token; the lab's `tau` also counts the prefill (one forward, one token), so it is
    lower on short generations. Introduced in `02_inside_the_mtp_drafter` (the lineage), printed in
    `04_acceptance`.
    """
    traces = [traces] if isinstance(traces, Trace) else list(traces)
    tokens = sum(len(t.new_ids) - 1 for t in traces if t.target_forwards)
    rounds = sum(t.target_forwards - 1 for t in traces)
    return tokens / rounds if rounds else float("nan")


def expected_tau(alpha: float, k: int) -> float:
    """Expected tokens per target forward with i.i.d. acceptance alpha and k drafts."""
    if alpha >= 1.0:
        return k + 1.0
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)


def expected_speedup(alpha: float, k: int, c: float) -> float:
    """Expected wall-clock speedup; c = one drafter step's cost / one target forward's cost."""
    return expected_tau(alpha, k) / (k * c + 1.0)


@dataclass(frozen=True)
class Summary:
    """The headline numbers of one or more traces."""

    tokens: int  # new tokens generated
    target_forwards: int  # target forward passes, prefill included
    drafter_forwards: int  # drafter steps (one per drafted token)
    tau: float  # tokens per target forward
    alpha: float  # per-token acceptance (MLE)
    acceptance: tuple[float, ...]  # unconditional, by draft position
    seconds: float  # wall time of the generation calls
    tokens_per_second: float
    t_draft: float  # seconds in drafter forwards
    t_verify: float  # seconds in target forwards
    t_rest: float  # everything else
    tv: float | None  # mean exact per-round distance to the target's distribution (sampling)


def summarize(traces: Trace | Sequence[Trace]) -> Summary:
    traces = [traces] if isinstance(traces, Trace) else list(traces)
    rounds = [r for t in traces for r in t.rounds]
    tokens = sum(len(t.new_ids) for t in traces)
    seconds = sum(t.wall for t in traces)
    tvs = [r.tv for r in rounds if r.tv is not None]
    return Summary(
        tokens=tokens,
        target_forwards=len(rounds),
        drafter_forwards=sum(r.k for r in rounds),
        tau=tau(traces),
        alpha=alpha(traces),
        acceptance=tuple(acceptance_by_position(traces)),
        seconds=seconds,
        tokens_per_second=tokens / seconds if seconds else float("nan"),
        t_draft=sum(r.t_draft for r in rounds),
        t_verify=sum(r.t_verify for r in rounds),
        t_rest=sum(r.t_rest for r in rounds),
        tv=sum(tvs) / len(tvs) if tvs else None,
    )


@dataclass(frozen=True)
class Estimate:
    """A number measured on a sample of prompts, with a bootstrap interval over those prompts."""

    value: float  # the statistic on the whole sample
    lo: float  # lower end of the interval
    hi: float  # upper end
    prompts: int  # prompts in the sample (the unit resampled)
    rounds: int  # drafting rounds in the sample (the sample with most, for a paired statistic)
    level: float = 0.9  # the interval's coverage

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.lo:.2f}, {self.hi:.2f}]"

    @property
    def sample(self) -> str:
        """How much data is behind it, in words: for figure titles and printed lines."""
        return f"{self.prompts} prompts, {self.rounds} rounds, {self.level:.0%} bootstrap interval"

    def contains(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def versus(self, other: Estimate) -> str:
        """"higher", "lower" (the intervals do not overlap) or "no clear difference": the words a
        notebook may use when it compares two estimates."""
        if self.lo > other.hi:
            return "higher"
        if self.hi < other.lo:
            return "lower"
        return "no clear difference"


def interval(
    stat: Callable[..., float],
    *samples: Sequence[Trace],
    n_boot: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> Estimate:
    """`stat(*samples)` with a percentile bootstrap interval that resamples prompts.

    Each sample is a list of traces indexed by prompt; several samples are resampled together
    (a paired bootstrap), so `interval(lambda p, s: wall(p) / wall(s), plain, spec)` keeps each
    prompt's plain and speculative runs side by side. Introduced in `04_acceptance`.
    """
    samples = [list(s) for s in samples]
    n = len(samples[0])
    if n == 0 or any(len(s) != n for s in samples):
        raise ValueError("interval needs one or more non-empty samples of the same length (one trace per prompt)")
    rng = random.Random(seed)
    values = []
    for _ in range(n_boot):
        idx = [rng.randrange(n) for _ in range(n)]
        v = stat(*[[s[i] for i in idx] for s in samples])
        if v == v:  # a resample can leave a statistic undefined (no judged draft): skip it
            values.append(v)
    values.sort()
    tail = (1 - level) / 2
    lo = values[int(tail * (len(values) - 1))] if values else float("nan")
    hi = values[int(round((1 - tail) * (len(values) - 1)))] if values else float("nan")
    # the speculative side's rounds, wherever it stands in a paired statistic (plain traces have none)
    return Estimate(stat(*samples), lo, hi, n, max(len(drafting_rounds(s)) for s in samples), level)


def speedup(plain: Sequence[Trace], spec: Sequence[Trace]) -> float:
    """Wall-clock speedup of `spec` over `plain` on the same prompts: total seconds over total seconds."""
    return sum(t.wall for t in plain) / sum(t.wall for t in spec)


# -- serving: the counters vLLM exports ---------------------------------------------------------------
# Source for every formula below: vllm-project/vllm at tag v0.33.0, files under
# https://github.com/vllm-project/vllm/blob/v0.33.0/ (the line ranges quoted are that tag's)


@dataclass(frozen=True)
class SpecDecodeCounts:
    """vLLM's four speculative-decoding counters, summed over whatever they cover (a server's
    lifetime for one scrape, an interval for the difference of two, or a set of lab traces).

    A draft is one round that drafted (k > 0). Positions are 0-based, as vLLM labels them: position j
    holds the lab's draft position j + 1. Left out: throughput (vLLM divides by wall time between log
    lines; a scrape has no interval of its own) and the per-position draft-token counts vLLM keeps
    but does not export.
    """

    drafts: int  # vllm:spec_decode_num_drafts: rounds that drafted
    draft_tokens: int  # vllm:spec_decode_num_draft_tokens: sum of k, less drafts a grammar ruled out
    accepted: int  # vllm:spec_decode_num_accepted_tokens: drafts kept (the bonus token excluded)
    accepted_per_pos: tuple[int, ...]  # (k,) rounds whose kept prefix reached past position j; sums to accepted

    @property
    def acceptance_rate(self) -> float:
        """accepted / draft_tokens: vLLM's "Avg Draft acceptance rate" (as a fraction, not %), from
        `SpecDecodingLogging.log`, vllm/v1/spec_decode/metrics.py L82-L137. Not the lab's α: drafts
        after a rejection count as drafted but were never judged."""
        return self.accepted / self.draft_tokens if self.draft_tokens else float("nan")

    @property
    def mean_acceptance_length(self) -> float:
        """1 + accepted / drafts: vLLM's "Mean acceptance length", the +1 being the bonus token
        (vllm/v1/spec_decode/metrics.py L82-L137). The lab's `tokens_per_round` over full rounds."""
        return 1 + self.accepted / self.drafts if self.drafts else float("nan")

    def per_position(self) -> tuple[float, ...]:
        """accepted_per_pos[j] / drafts: vLLM's "Per-position acceptance rate"
        (vllm/v1/spec_decode/metrics.py L82-L137). The denominator is every draft, not the drafts
        that reached position j: non-increasing, the lab's unconditional `acceptance_by_position` when
        every round drafted the same k."""
        return tuple(a / self.drafts if self.drafts else float("nan") for a in self.accepted_per_pos)

    def alpha(self) -> float:
        """The lab's α (`alpha`): accepted / judged, judged = accepted + rounds with a rejection.

        Counters do not say which rounds had a rejection; with the same k in every round it is every
        draft but the fully accepted ones, accepted_per_pos[k - 1]. With mixed k that is not
        recoverable, so it raises instead of guessing. vLLM's k is constant only in its plain
        configuration: `num_speculative_tokens_per_batch_size` picks k by batch size, and adaptive
        verification (vllm-project/vllm PR #52228) changes it at run time; the check below then fails.
        """
        k = len(self.accepted_per_pos)
        if self.drafts and not k:
            raise BadInputError("α needs the per-position counter (vllm:spec_decode_num_accepted_tokens_per_pos), "
                                "which this vLLM did not export; `acceptance_rate` needs only the totals")
        if self.draft_tokens != self.drafts * k:
            raise BadInputError(
                f"α needs the same k in every round: {self.draft_tokens} draft tokens is not {self.drafts} "
                f"drafts × k = {k}. Counters cannot tell rejected rounds from short ones; use "
                "`metrics.alpha` on the traces, or `acceptance_rate` (accepted / drafted) instead.")
        judged = self.accepted + self.drafts - (self.accepted_per_pos[-1] if k else 0)
        return self.accepted / judged if judged else float("nan")

    def __sub__(self, before: SpecDecodeCounts) -> SpecDecodeCounts:
        """`after - before`: what happened between two scrapes, PromQL's increase() offline."""
        a, b = self.accepted_per_pos, before.accepted_per_pos
        per_pos = tuple((a[j] if j < len(a) else 0) - (b[j] if j < len(b) else 0)
                        for j in range(max(len(a), len(b))))
        diff = SpecDecodeCounts(self.drafts - before.drafts, self.draft_tokens - before.draft_tokens,
                                self.accepted - before.accepted, per_pos)
        if any(v < 0 for v in (diff.drafts, diff.draft_tokens, diff.accepted, *per_pos)):
            raise BadInputError("a counter went down between the two scrapes: the server restarted "
                                "(counters start again at 0), or the scrapes are in the wrong order")
        return diff


def between(before: SpecDecodeCounts, after: SpecDecodeCounts) -> SpecDecodeCounts:
    """The counts of the interval between two cumulative scrapes of the same server (`after - before`)."""
    return after - before


def vllm_counts(traces: Trace | Iterable[Trace], k: int | None = None) -> SpecDecodeCounts:
    """The counters vLLM would have exported for these rounds (those with k > 0; the prefill drafts nothing).

    Counted as `SpecDecodingStats.observe_draft` does (vllm/v1/spec_decode/metrics.py L41-L49). Rounds
    the lab cut short (fewer than k drafts at max_new_tokens) count as they are, unless `k` is given:
    then only rounds that drafted exactly k count, as vLLM with a fixed `num_speculative_tokens` would
    have drafted them (and `alpha()` can be read back). A fixed k is vLLM's plain configuration, not a
    rule: `num_speculative_tokens_per_batch_size` and adaptive verification (PR #52228) vary it.
    """
    rounds = [r for r in drafting_rounds(traces) if k is None or r.k == k]
    k = max((r.k for r in rounds), default=0) if k is None else k
    return SpecDecodeCounts(
        drafts=len(rounds),
        draft_tokens=sum(r.k for r in rounds),
        accepted=sum(r.accepted for r in rounds),
        accepted_per_pos=tuple(sum(r.accepted > j for r in rounds) for j in range(k)),
    )


def wilson(successes: int, trials: int, level: float = 0.9) -> tuple[float, float]:
    """Wilson score interval for a proportion: counters carry no prompts to bootstrap over (`interval`
    needs traces), and unlike the normal approximation it stays inside [0, 1] at rates near 0 or 1.
    Treats every trial as independent, which rounds of one prompt are not: read it as a lower bound
    on the uncertainty. (nan, nan) for no trials."""
    if trials <= 0:
        return float("nan"), float("nan")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / trials
    center = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * (p * (1 - p) / trials + z * z / (4 * trials * trials)) ** 0.5
    # the bounds always hold p and lie in [0, 1]; the clamps only undo rounding at p = 0 or 1
    return max(0.0, min(p, center - half)), min(1.0, max(p, center + half))


# -- chat: acceptance and tau per segment of a reply (10_chat_and_thinking) ----------------------


def by_segment(traces: Trace | Iterable[Trace], labels: Any = None, level: float = 0.9) -> dict[str, dict[str, Any]]:
    """Acceptance and tau per segment of chat replies: {segment: numbers}, segments in
    `labkit.chat.SEGMENTS` order ("thought", "answer", "tool_call", "tool_response", "template"),
    those that never occur left out. Introduced in `10_chat_and_thinking`.

    labels: the segment of every new token, one sequence per trace; or a tokenizer (each trace is
    labelled from its ids, `Trace.segments(tokenizer)`); or None, the labels `run` kept in a chat
    trace. A draft counts for the segment of the position it was drafted for: draft j of a round
    for the round's j-th new position, whatever token ends up there.

    - "tokens":     new tokens in the segment.
    - "drafted":    drafts made for its positions (drafts past the end of the generation count nowhere).
    - "judged":     those the target judged: the accepted ones and the one it rejected (drafts after
                    a rejection were never judged).
    - "accepted":   those it accepted.
    - "acceptance": accepted / judged, the lab's α (`alpha`) on the segment's positions, with
      "interval":   its Wilson interval at `level` (`wilson`: rounds of one prompt are not independent,
                    so read it as a lower bound on the uncertainty).
    - "rounds":     target forwards (the prefill included) whose first new token is in the segment.
    - "tau":        new tokens those forwards produced / their number: `tau`, split by where a round
                    starts. A round across a boundary (last thought tokens, `<channel|>`, first answer
                    tokens) counts wholly for the segment it starts in, so the segments' tau weighted
                    by their rounds averages to the traces' `tau`.
    """
    traces = [traces] if isinstance(traces, Trace) else list(traces)
    if labels is None:
        per_trace = [t.segments() for t in traces]
    elif hasattr(labels, "decode"):
        per_trace = [t.segments(labels) for t in traces]
    else:
        per_trace = [tuple(x) for x in labels]
        if len(per_trace) != len(traces) or any(len(x) != len(t.new_ids) for x, t in zip(per_trace, traces)):
            raise BadInputError("labels: give one label per new token of each trace (trace.segments()), "
                                "or the tokenizer to label them")
    counts: dict[str, dict[str, int]] = {}

    def row(segment: str) -> dict[str, int]:
        names = ("tokens", "drafted", "judged", "accepted", "rounds", "emitted")
        return counts.setdefault(segment, dict.fromkeys(names, 0))

    for trace, segs in zip(traces, per_trace):
        for segment in segs:
            row(segment)["tokens"] += 1
        start = 0  # index of the round's first new token
        for r in trace.rounds:
            if segs:
                first = row(segs[min(start, len(segs) - 1)])
                first["rounds"] += 1
                first["emitted"] += len(r.emitted)
            for j in range(r.k):
                if start + j < len(segs):
                    c = row(segs[start + j])
                    c["drafted"] += 1
                    c["judged"] += j < r.accepted or (j == r.accepted and r.rejected)
                    c["accepted"] += j < r.accepted
            start += len(r.emitted)
    order = {s: i for i, s in enumerate(SEGMENTS)}
    out = {}
    for segment in sorted(counts, key=lambda s: order.get(s, len(order))):
        c = counts[segment]
        emitted = c.pop("emitted")
        out[segment] = {**c, "acceptance": c["accepted"] / c["judged"] if c["judged"] else float("nan"),
                        "interval": wilson(c["accepted"], c["judged"], level),
                        "tau": emitted / c["rounds"] if c["rounds"] else float("nan")}
    return out

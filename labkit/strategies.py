"""Beyond one chain of sampled drafts: the strategies of `11_beyond_one_chain`, each lossless.

Four settings of `Decoding`, each a piece the glass-box loop composes, never a branch inside it:

- `drafts`: "sampled" draws every draft from q and keeps it with min(1, p/q) (the glass box of
  `03_verify_and_accept`); "argmax" drafts q's argmax and verifies it as the point mass it is, kept
  with probability p(x) (transformers' MTP path made lossless, vLLM's default). A drafting `pick`.
- `verify`: "token" stops at the first rejected draft; "block" is Sun et al.'s block verification
  (`rules.block_verify`), never fewer accepted drafts in expectation, the same at temperature 0.
  An accept rule.
- `stop_below`: a round stops drafting after a draft whose top probability is below it
  (`StopBelow`, as transformers' `assistant_confidence_threshold`): fewer drafts where they would
  be rejected anyway. A drafting `pick` that says when to stop.
- `tree`: W branches at the first draft position, verified in one target pass with a tree mask
  (`labkit.tree`): the drafter's top W (argmax drafts) or W draws from q (sampled drafts, judged
  by SpecInfer's multi-draft rule). A verify shape.

`exact_joint` is the exact check for rules that judge a whole block: it enumerates every draft
block on a small vocabulary and returns the joint distribution of the first k + 1 tokens, to set
against the target's (`target_joint`). Round by round, the glass box checks the first position
(`Round.tv`). Block verification's first token depends on drafts it never drew: for rounds of two
drafts `block_round_tv` sums over every block of the real vocabulary (`speculate(check_block=True)`,
`labkit bench --verify block --k 2 --check-block`); longer blocks are checked by the enumeration.

Left out: dynamic trees (EAGLE-2), trees deeper than one branching, learned stopping (SpecDec++), and block verification inside a tree beyond its first position.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from typing import Any
from dataclasses import dataclass

import torch

from labkit import rules
from labkit.errors import BadInputError
from labkit.trace import Decoding

DRAFTS = ("sampled", "argmax")
MAX_CHECKED_VOCAB = 8192  # round_rows holds vocab x vocab tables, in float64
VERIFY = ("token", "block")


def check(settings: Decoding) -> None:
    """A BadInputError naming the setting to change, for any strategy the glass box cannot run."""
    if settings.drafts not in DRAFTS:
        raise BadInputError(f"drafts = {settings.drafts!r}: choose one of {DRAFTS}")
    if settings.verify not in VERIFY:
        raise BadInputError(f"verify = {settings.verify!r}: choose one of {VERIFY}")
    if not 0.0 <= settings.stop_below < 1.0:
        raise BadInputError(f"stop_below = {settings.stop_below!r}: a probability in [0, 1); 0 never stops")
    if not isinstance(settings.tree, int) or settings.tree < 1:
        raise BadInputError(f"tree = {settings.tree!r}: the branches at the first position, 1 (a chain) or more")
    if settings.tree > 1 and (settings.kv != "exact" or settings.schedule != "constant"):
        raise BadInputError("a tree runs with kv='exact' and schedule='constant'")


def describe(settings: Decoding) -> str:
    """The strategy in words, for figure titles: 'argmax drafts, block verification, tree of 2'."""
    parts = [] if settings.greedy else [f"{settings.drafts} drafts"]
    if settings.verify == "block":
        parts.append("block verification")
    if settings.stop_below > 0:
        parts.append(f"stop below {settings.stop_below:g}")
    if settings.tree > 1:
        parts.append(f"tree of {settings.tree}")
    return ", ".join(parts) or "one chain"


class StopBelow:
    """A drafting pick that also says when to stop: `done` turns True after a draft whose top
    probability (the drafter's softmax at temperature 1) is below `threshold`. That draft is still
    verified (it has been paid for); the drafters' `propose` loops read `done` and end the round."""

    def __init__(self, pick: Callable[[torch.Tensor], tuple[int, torch.Tensor]], threshold: float):
        self.pick, self.threshold, self.done = pick, threshold, False

    def __call__(self, logits: torch.Tensor) -> tuple[int, torch.Tensor]:
        self.done = float(logits.float().softmax(-1).max()) < self.threshold
        return self.pick(logits)


# -- exact checks on a small vocabulary (tests, chapter 11) ------------------------------------

Dist = Callable[[tuple[int, ...]], torch.Tensor]  # a context (tuple of tokens) → (vocab,) distribution
Outcomes = list[tuple[int, torch.Tensor]]  # (drafts kept, weighted distribution of the next token)


def token_outcomes(drafted: torch.Tensor, q: torch.Tensor, p: torch.Tensor) -> Outcomes:
    """Token-wise verification of one draft block, exactly: for each number t of drafts kept, the
    probability of keeping t times the distribution of the token that follows. Shapes as `rules.rejection_sample`."""
    k, keep, out = drafted.numel(), 1.0, []
    for t in range(k):
        a = rules.accept_probability(float(p[t, drafted[t]]), float(q[t, drafted[t]]))
        out.append((t, keep * (1 - a) * rules.residual(p[t], q[t]).double()))
        keep *= a
    return out + [(k, keep * p[k].double())]


def block_outcomes(drafted: torch.Tensor, q: torch.Tensor, p: torch.Tensor) -> Outcomes:
    """Block verification of one draft block, exactly (`rules.block_verify`): t drafts are kept
    when u < h[t] and no later u < h[i], so with probability h[t] × prod over i > t of (1 - h[i])."""
    k = drafted.numel()
    w, h = rules.block_weights(drafted, q, p)
    out = []
    for t in range(k + 1):
        chance = h[t] if t else 1.0
        for i in range(t + 1, k + 1):
            chance *= 1.0 - h[i]
        source = p[k] if t == k else rules.block_residual(p[t], q[t], w[t])
        out.append((t, chance * source.double()))
    return out


RULES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Outcomes]] = {
    "token": token_outcomes, "block": block_outcomes}


def _blocks(target: Dist, drafter: Dist, k: int, vocab: int):  # noqa: ANN202
    """Every draft block with its probability under the drafter, and the (q, p) rows it is judged by."""
    for xs in itertools.product(range(vocab), repeat=k):
        chance = 1.0
        for i in range(k):
            chance *= float(drafter(xs[:i])[xs[i]])
        if chance > 0:
            q = torch.stack([drafter(xs[:i]) for i in range(k)]).double()
            p = torch.stack([target(xs[:i]) for i in range(k + 1)]).double()
            yield xs, chance, q, p


def exact_joint(rule: str, target: Dist, drafter: Dist, k: int, vocab: int) -> torch.Tensor:
    """The joint distribution of the first k + 1 tokens when one round of `rule` ("token" or
    "block") runs with drafts from `drafter` and the target then carries on alone: (vocab,) * (k + 1).
    Lossless means it equals `target_joint(target, k, vocab)`."""
    out = torch.zeros((vocab,) * (k + 1), dtype=torch.float64)
    for xs, chance, q, p in _blocks(target, drafter, k, vocab):
        for t, source in RULES[rule](torch.tensor(xs), q, p):
            for y in range(vocab):
                if chance * float(source[y]) == 0:
                    continue
                for rest in itertools.product(range(vocab), repeat=k - t):
                    s = xs[:t] + (y, *rest)
                    mass = chance * float(source[y])
                    for j in range(t + 1, k + 1):
                        mass *= float(target(s[:j])[s[j]])
                    out[s] += mass
    return out


def target_joint(target: Dist, k: int, vocab: int) -> torch.Tensor:
    """The target's own joint distribution of k + 1 tokens, (vocab,) * (k + 1)."""
    out = torch.zeros((vocab,) * (k + 1), dtype=torch.float64)
    for s in itertools.product(range(vocab), repeat=k + 1):
        mass = 1.0
        for j in range(k + 1):
            mass *= float(target(s[:j])[s[j]])
        out[s] = mass
    return out


def expected_accepted(rule: str, target: Dist, drafter: Dist, k: int, vocab: int) -> float:
    """Drafts kept per round in expectation, exactly, by enumeration (the toy case: 10/9 vs 11/9)."""
    return sum(chance * t * float(source.sum()) for xs, chance, q, p in _blocks(target, drafter, k, vocab)
               for t, source in RULES[rule](torch.tensor(xs), q, p))


@dataclass(frozen=True)
class Acceptance:
    """Drafts kept in a two-draft round, exactly, for the three rules, when each position's p and q
    are held fixed (the round's first two positions; `exact_acceptance`)."""

    point_mass: float  # argmax drafts, kept with probability p(x)
    token: float  # sampled drafts, min(1, p/q), token by token
    block: float  # sampled drafts, block verification


def exact_acceptance(p: torch.Tensor, q: torch.Tensor) -> Acceptance:
    """p: (2, vocab) the target's, q: (2, vocab) the drafter's, at two positions, held fixed
    whatever was drafted before (the toy case's assumption, here with real rows): expected drafts
    kept of 2, per rule, with no sampling. Block verification's sum over the first draft is done for
    every token at once: sum over x2 of max(0, w p(x2) - q(x2)) is, as a function of w, the
    tokens whose q/p ratio is below w, so one sort and a cumulative sum give it for every x1."""
    p, q = p.double(), q.double()
    a = q.argmax(-1)
    point = float(p[0, a[0]]) * (1 + float(p[1, a[1]]))
    beta = torch.minimum(p, q).sum(-1)  # (2,) token-wise acceptance per position: 1 - TV
    token = float(beta[0] * (1 + beta[1]))
    w1 = torch.where(q[0] > 0, torch.clamp(p[0] / q[0], max=1.0), torch.ones_like(p[0]))  # (vocab,) per x1
    ratio = torch.where(p[1] > 0, q[1] / p[1].clamp(min=1e-300), torch.full_like(p[1], float("inf")))
    order = ratio.argsort()
    zero = torch.zeros(1, dtype=torch.float64)
    cum_p, cum_q = torch.cat([zero, p[1][order].cumsum(0)]), torch.cat([zero, q[1][order].cumsum(0)])
    below = torch.searchsorted(ratio[order].contiguous(), w1, right=False)  # tokens with q/p < w1
    left = (w1 * cum_p[below] - cum_q[below]).clamp(min=0.0)  # (vocab,) sum of max(0, w1 p - q)
    denom = left + 1.0 - w1
    h1 = torch.where(denom > 0, left / denom.clamp(min=1e-300), torch.zeros_like(left))
    # h2 = w2 = min(1, w1 p(x2) / q(x2)); over x2 ~ q its mean is sum of min(q, w1 p) = w1 - left
    e_h2 = (w1 - left).clamp(min=0.0)
    # kept 2 with chance h2, kept 1 with chance h1 (1 - h2): E = 2 E[h2] + h1 (1 - E[h2]) per x1
    block = float((q[0] * (2 * e_h2 + h1 * (1 - e_h2))).sum())
    return Acceptance(point, token, block)


def _first_weights(p1: torch.Tensor, q1: torch.Tensor, p2: torch.Tensor,
                   q2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`rules.block_weights` at the first draft, for every first draft x1 at once (float64 rows as
    `block_first_distribution` takes them): w1, left = sum over x2 of max(0, w1 p2 - q2), and h1."""
    w1 = torch.where(q1 > 0, torch.clamp(p1 / q1.clamp(min=1e-300), max=1.0), torch.ones_like(p1))  # (vocab,)
    left = torch.clamp(w1[:, None] * p2 - q2, min=0.0).sum(-1)
    denom = left + 1.0 - w1
    return w1, left, torch.where(denom > 0, left / denom.clamp(min=1e-300), torch.zeros_like(left))


def block_first_distribution(p1: torch.Tensor, q1: torch.Tensor, p2: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    """Exact distribution of the first token a two-draft round of block verification emits, summed
    over every draft block (x1, x2) with no sampling. p1, q1: (vocab,) the target's and the drafter's
    at the first draft; p2, q2: (vocab, vocab), row x1 their distributions at the second draft after
    x1. Lossless means it equals p1 (`block_round_tv` checks real rounds).

    `rules.block_weights` for every block at once: w1 = min(1, p1(x1)/q1(x1)); h1 = left / (left + 1 -
    w1), left = sum over x2 of max(0, w1 p2 - q2); the last draft's h2 = w2 = min(1, w1 p2(x2)/q2(x2)).
    No draft is kept with chance (1 - h1)(1 - h2); then the token comes from norm(max(0, p1 - q1)),
    whatever the block was; otherwise the first token is x1."""
    p1, q1, p2, q2 = p1.double(), q1.double(), p2.double(), q2.double()
    w1, left, h1 = _first_weights(p1, q1, p2, q2)
    w2 = torch.where(q2 > 0, torch.clamp(w1[:, None] * p2 / q2.clamp(min=1e-300), max=1.0), w1[:, None].expand_as(q2))
    none_kept = (1.0 - h1) * (q2 * (1.0 - w2)).sum(-1)  # (vocab,) per x1: the chance no draft is kept
    return q1 * (1.0 - none_kept) + float((q1 * none_kept).sum()) * rules.block_residual(p1, q1, 1.0).double()


@torch.no_grad()
def round_rows(target: torch.nn.Module, drafter: torch.nn.Module, step: Any, settings: Decoding,
               chunk: int = 256, **prefill_inputs: Any) -> tuple[torch.Tensor, ...]:
    """Every row a two-draft round can be judged by: (p1, q1, p2, q2), float64 on the CPU, p1 and q1
    (vocab,) at the first draft, p2 and q2 (vocab, vocab) at the second, row x1 after first draft x1.

    The drafter starts from what it really saw that round (`step.view`: the target's hidden state
    and K/V); the target reads the round's context again (a fresh prefill: its K/V depend only on
    the tokens). Then every token x1 of the vocabulary goes through one drafter step and one target
    position, `chunk` rows at a time (two batched forwards per chunk): a few seconds a round on one
    CPU thread for the pocket pair (4,096 tokens); vocabularies above MAX_CHECKED_VOCAB are refused.
    """
    from transformers import DynamicCache

    from labkit.glassbox import draft_step, verify_step  # the glass box builds on this module

    def warp(logits: torch.Tensor) -> torch.Tensor:  # the loop's own warp, each row then summed to 1 in float64
        probs = rules.warp(logits.float(), settings.temperature, settings.top_p).double()
        return probs / probs.sum(-1, keepdim=True)

    ids, view = step.context, step.view
    device, position = view.hidden.device, len(step.context) - 1
    embed = target.get_input_embeddings()
    cache = DynamicCache(config=target.config.get_text_config())
    verify_step(target, cache, torch.tensor([ids[:-1]], device=device), 0, **prefill_inputs)
    p1 = warp(verify_step(target, cache, torch.tensor([[ids[-1]]], device=device), position).logits[0, -1])
    first = draft_step(drafter, embed, torch.tensor([[ids[-1]]], device=device), view.hidden, view.shared_kv, position)
    q1 = warp(first.logits[0, -1])
    vocab = p1.numel()
    if vocab > MAX_CHECKED_VOCAB:
        raise BadInputError(f"round_rows holds two {vocab:,} x {vocab:,} tables ({2 * 8 * vocab**2 / 1e9:,.0f} GB): "
                            f"it checks vocabularies up to {MAX_CHECKED_VOCAB:,} tokens (the pocket pair's 4,096)")
    p2, q2 = torch.empty(vocab, vocab, dtype=torch.float64), torch.empty(vocab, vocab, dtype=torch.float64)
    for lo in range(0, vocab, chunk):
        xs = torch.arange(lo, min(lo + chunk, vocab), device=device)[:, None]  # (B, 1): first drafts
        b = xs.shape[0]
        rows = copy.deepcopy(cache)
        rows.batch_repeat_interleave(b)
        p2[lo:lo + b] = warp(verify_step(target, rows, xs, position + 1).logits[:, -1]).cpu()
        kv = {name: (key.expand(b, *key.shape[1:]), value.expand(b, *value.shape[1:]))
              for name, (key, value) in view.shared_kv.items()}
        second = draft_step(drafter, embed, xs, first.last_hidden_state.expand(b, -1, -1), kv, position)
        q2[lo:lo + b] = warp(second.logits[:, -1]).cpu()
    return p1.cpu(), q1.cpu(), p2, q2


def block_round_tv(target: torch.nn.Module, drafter: torch.nn.Module, step: Any, settings: Decoding,
                   chunk: int = 256, **prefill_inputs: Any) -> tuple[float, float]:
    """Block verification's exact check on one real round of two drafts: (TV, drift).

    A round's first token depends on both drafts, so its exact distribution needs the target's and
    the drafter's rows at the second draft for every possible first draft (`round_rows`);
    `block_first_distribution` sums over every block, and TV is its distance to p1. drift: how far
    the re-read q1 and p1 lie from the round's own (`step.qs[0]`, `step.p[0]`): small means the check
    judged the round that ran. `glassbox.speculate(..., check_block=True)` calls it on every such
    round, off the clock.
    """
    p1, q1, p2, q2 = round_rows(target, drafter, step, settings, chunk, **prefill_inputs)
    emitted = block_first_distribution(p1, q1, p2, q2)
    drift = max(float((q1 - step.qs[0].double().cpu()).abs().max()), float((p1 - step.p[0].double().cpu()).abs().max()))
    return rules.tv_distance(emitted, p1), drift


def kept_exactly(p1: torch.Tensor, q1: torch.Tensor, p2: torch.Tensor, q2: torch.Tensor) -> tuple[float, float]:
    """Drafts kept of two in expectation, exactly, summed over every draft block of a real round
    (`round_rows`), for sampled drafts verified token by token and by block verification. Unlike
    `exact_acceptance`, the second position's rows depend on the first draft, as they do in a round.
    Block verification never keeps fewer (Sun et al. 2024)."""
    p1, q1, p2, q2 = p1.double(), q1.double(), p2.double(), q2.double()
    w1, left, h1 = _first_weights(p1, q1, p2, q2)
    token = float((q1 * w1 * (1.0 + torch.minimum(p2, q2).sum(-1))).sum())
    e_h2 = (w1 - left).clamp(min=0.0)  # the last draft's h2 = w2, averaged over x2 ~ q2: sum of min(q2, w1 p2)
    block = float((q1 * (2.0 * e_h2 + h1 * (1.0 - e_h2))).sum())
    return token, block


def first_position_tv(p0: torch.Tensor, q0: torch.Tensor, candidates: Sequence[int] = (), sampled: bool = True) -> float:
    """The exact TV between what a round emits at its first position and the target's p0: one
    draft drawn from q0, or a tree's candidates (drawn from q0 when `sampled`, else the top W as
    point masses), judged one after another (`rules.multi_draft_distribution`). p0 and q0 are summed
    to 1 in float64 first, as torch.multinomial does when it draws from a float32 row: what is left
    is the rule's own error, not float32's (about 1e-6 over 4,096 tokens)."""
    p0, q0 = p0.double() / p0.double().sum(), q0.double() / q0.double().sum()
    if not candidates:
        emitted = rules.emitted_distribution(p0, q0, q0)
    elif sampled:
        emitted = rules.multi_draft_distribution(p0, len(candidates), q0)
    else:
        emitted = rules.multi_draft_distribution(p0, list(candidates))
    return rules.tv_distance(emitted, p0)


# -- chapter 11's exercise checker --------------------------------------------------------------


def check_block_step(fn: Callable[..., tuple[int, torch.Tensor]], cases: int = 200) -> None:
    """Exercise 1 of `11_beyond_one_chain`: fn(drafted, q, p, us) → (accepted, source), block
    verification's verdict given the k uniform draws `us` (one per draft) and the distribution the
    next token is then drawn from. Compared with `rules.block_verify`'s numbers on random rounds,
    greedy ones (one-hot p, argmax drafts) among them."""
    g = torch.Generator().manual_seed(11)
    for case in range(cases):
        k, vocab = 1 + case % 4, 6
        greedy = case % 5 == 0
        logits = torch.randn(k + 1, vocab, generator=g, dtype=torch.float64) * 2
        p = rules.warp(logits, 0.0 if greedy else 1.0).double()
        q = (torch.randn(k, vocab, generator=g, dtype=torch.float64) * 2).softmax(-1)
        drafted = torch.multinomial(q, 1, generator=g)[:, 0]
        if greedy:
            q = torch.stack([rules.point_mass(int(x), vocab).double() for x in drafted])
        us = torch.rand(k, generator=g, dtype=torch.float64).tolist()
        w, h = rules.block_weights(drafted, q, p)
        want = max([0] + [i for i in range(1, k + 1) if us[i - 1] < h[i]])
        source = p[k] if want == k else rules.block_residual(p[want], q[want], w[want])
        got, got_source = fn(drafted, q, p, us)
        assert int(got) == want, (f"case {case}: {got} drafts kept, block verification keeps {want} "
                                  f"(h = {[round(x, 3) for x in h[1:]]}, u = {[round(u, 3) for u in us]})")
        assert torch.allclose(torch.as_tensor(got_source, dtype=torch.float64), source, atol=1e-9), (
            f"case {case}: the next token's distribution differs (kept {want} of {k})")
    print(f"✓ block verification's accept step agrees with rules.block_verify on {cases} rounds")

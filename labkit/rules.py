"""The verification rules, one small function each.

Greedy: keep drafts while they equal the target's argmax, then add the target's argmax.
Sampling (Leviathan et al. 2023, Chen et al. 2023): keep draft x with probability min(1, p(x)/q(x));
on the first rejection draw from norm(max(0, p - q)). If the draft really was drawn from q, the
emitted token is distributed exactly like p: speculative sampling is lossless.

`emitted_distribution` computes, exactly, what a rule emits at a round's first position when the
draft is chosen from one distribution but verified against another. That is how the lab measures
transformers' MTP sampling path, which drafts by argmax yet verifies against softmax(drafter
logits) (`03_verify_and_accept`).

Shapes: `p`, `q` are probability vectors over the vocabulary, `(vocab,)`, or `(k, vocab)`.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper


def warp(logits: torch.Tensor, temperature: float, top_p: float = 1.0) -> torch.Tensor:
    """Sampling probabilities from logits, with transformers' own temperature and top-p warpers.

    logits: (..., vocab). Greedy (temperature 0) is returned as a one-hot of the argmax.
    """
    logits = logits.float()
    if temperature == 0.0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature)])
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    flat = logits.reshape(-1, logits.shape[-1])
    flat = warpers(None, flat.clone())
    return flat.softmax(-1).reshape(logits.shape)


def greedy_accept(drafted: torch.Tensor, target_logits: torch.Tensor) -> tuple[int, int]:
    """Greedy verification. drafted: (k,), target_logits: (k + 1, vocab) → (accepted, bonus)."""
    top = target_logits.argmax(-1)  # (k + 1,)
    agree = (drafted == top[: drafted.numel()]).int()
    accepted = int(agree.cumprod(0).sum())
    return accepted, int(top[accepted])


def accept_probability(p_x: float, q_x: float) -> float:
    """min(1, p(x) / q(x)): the chance a draft x drawn from q is kept (1 where q(x) = 0)."""
    return min(1.0, p_x / q_x) if q_x > 0 else 1.0


def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """norm(max(0, p - q)), the distribution a rejected draft is replaced from. p, q: (vocab,).

    It holds exactly the mass q under-proposed; where p == q nothing is ever rejected, and p itself
    is returned so that a draw from it is still exact.
    """
    r = torch.clamp(p - q, min=0.0)
    total = r.sum()
    return r / total if total > 0 else p


def sample_step(
    p: torch.Tensor, q: torch.Tensor, x: int, u: float, generator: torch.Generator | None = None
) -> tuple[bool, int]:
    """One draft's verdict under sampling: (kept, token). p, q: (vocab,); u: a uniform draw in [0, 1).

    Keep x when u < min(1, p(x) / q(x)); otherwise draw the token from `residual(p, q)`.
    """
    if u < accept_probability(float(p[x]), float(q[x])):
        return True, x
    return False, int(torch.multinomial(residual(p, q), 1, generator=generator))


def rejection_sample(
    drafted: torch.Tensor,
    q: torch.Tensor,
    p: torch.Tensor,
    generator: torch.Generator | None = None,
    draws: list[float] | None = None,
) -> tuple[int, int]:
    """Speculative sampling. drafted: (k,), q: (k, vocab), p: (k + 1, vocab) → (accepted, next).

    `q[j]` must be the distribution draft j was drawn from; then the output is distributed as `p`.
    `draws`, if given, receives each uniform draw u as it is made (the sampled round stepper of
    `03_verify_and_accept` shows them).
    """
    k = drafted.numel()
    for j in range(k):
        u = float(torch.rand((), generator=generator, device=p.device))
        if draws is not None:
            draws.append(u)
        kept, token = sample_step(p[j], q[j], int(drafted[j]), u, generator)
        if not kept:  # rejected: the token came from the part of p that q did not cover
            return j, token
    return k, int(torch.multinomial(p[k], 1, generator=generator))


def point_mass(token: int | torch.Tensor, vocab: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The distribution of a deterministic (argmax) draft: all mass on one token. (vocab,)"""
    return torch.nn.functional.one_hot(torch.as_tensor(token, device=device), vocab).float()


def emitted_distribution(
    p: torch.Tensor, q_verify: torch.Tensor, draft_from: torch.Tensor
) -> torch.Tensor:
    """Exact distribution of the first token a sampling round emits. All arguments (vocab,).

    The draft x is chosen from `draft_from`, kept with probability min(1, p(x)/q_verify(x)),
    otherwise replaced by a draw from norm(max(0, p - q_verify)).
    """
    p, q_verify, draft_from = p.double(), q_verify.double(), draft_from.double()
    keep = torch.where(q_verify > 0, torch.clamp(p / q_verify, max=1.0), torch.ones_like(p))
    kept = draft_from * keep  # mass that leaves as the draft itself
    return kept + (1.0 - kept.sum()) * residual(p, q_verify)


def tv_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Total variation distance between two distributions: half the L1 distance."""
    return 0.5 * float((a.double() - b.double()).abs().sum())


def block_weights(drafted: torch.Tensor, q: torch.Tensor, p: torch.Tensor) -> tuple[list[float], list[float]]:
    """Block verification's numbers for one chain (Sun et al. 2024, arXiv 2403.10444, Algorithm 2).

    drafted: (k,), q: (k, vocab), p: (k + 1, vocab) → (w, h), each (k + 1,) with index 0 unused in h.
    w[i] = min(1, w[i-1] p(x_i) / q(x_i)), w[0] = 1: how much of the block up to draft i the target
    still "owes" the drafter. h[i]: the chance to stop after draft i (h[k] = w[k]); for i < k it is the
    mass w[i] p - q leaves over, against that mass plus 1 - w[i] (0 where both are 0).
    """
    k = drafted.numel()
    w, h = [1.0], [0.0]
    for i in range(1, k + 1):
        x = int(drafted[i - 1])
        qx, px = float(q[i - 1, x]), float(p[i - 1, x])
        w.append(min(1.0, w[-1] * px / qx) if qx > 0 else w[-1])
        if i == k:
            h.append(w[i])
        else:
            left = float(torch.clamp(w[i] * p[i].double() - q[i].double(), min=0.0).sum())
            h.append(left / (left + 1.0 - w[i]) if left + 1.0 - w[i] > 0 else 0.0)
    return w, h


def block_residual(p: torch.Tensor, q: torch.Tensor, w: float) -> torch.Tensor:
    """norm(max(0, w p - q)): where block verification's last token comes from after stopping at a
    draft whose weight is w (w = 1 is the token-wise `residual`). p, q: (vocab,)."""
    r = torch.clamp(w * p.double() - q.double(), min=0.0)
    total = r.sum()
    return (r / total).to(p.dtype) if total > 0 else p


def block_verify(
    drafted: torch.Tensor,
    q: torch.Tensor,
    p: torch.Tensor,
    generator: torch.Generator | None = None,
    draws: list[float] | None = None,
) -> tuple[int, int]:
    """Block verification (Sun et al. 2024). drafted: (k,), q: (k, vocab), p: (k + 1, vocab) →
    (accepted, next), as `rejection_sample` returns them and lossless under the same condition.

    Token-wise verification stops at the first draft it rejects; block verification looks at the
    whole block first: one uniform u per draft, and the block is kept up to the *last* draft i whose
    u < h[i] (`block_weights`), so a draft turned down early can still be kept when the drafts after
    it make up for it. Then a token from `block_residual` (or from p after the last draft). Never
    fewer accepted drafts in expectation than token-wise, and at temperature 0 (p one-hot, argmax
    drafts) the same drafts as greedy verification. `11_beyond_one_chain` works its toy case.
    """
    k = drafted.numel()
    w, h = block_weights(drafted, q, p)
    accepted = 0
    for i in range(1, k + 1):
        u = float(torch.rand((), generator=generator, device=p.device))
        if draws is not None:
            draws.append(u)
        if u < h[i]:
            accepted = i
    source = p[k] if accepted == k else block_residual(p[accepted], q[accepted], w[accepted])
    return accepted, int(torch.multinomial(source, 1, generator=generator))


def multi_draft_sample(
    p: torch.Tensor, candidates: list[int], generator: torch.Generator | None = None,
    draws: list[float] | None = None, q: torch.Tensor | None = None,
) -> tuple[int, int]:
    """Several drafts for one position (a tree's branches), each judged against what the ones before
    it left: (index of the kept candidate or -1, token). p, q: (vocab,).

    Deterministic candidates (q None, the top W): each is a point mass, kept with probability
    left(c); if not, `left` loses c and is renormalised. Candidates drawn independently from q
    (SpecInfer's multi-draft rule): each is kept with min(1, left(c)/q(c)); if not, `left` becomes
    norm(max(0, left - q)). If none is kept, the token is drawn from what is left. Each step is the
    exact one-draft rule, so the token is distributed as p (`multi_draft_distribution`). At
    temperature 0 the candidate equal to the target's argmax is kept, if there is one.
    """
    left = p
    for i, c in enumerate(candidates):
        u = float(torch.rand((), generator=generator, device=p.device))
        if draws is not None:
            draws.append(u)
        against = point_mass(c, p.numel(), p.device) if q is None else q
        if u < accept_probability(float(left[c]), float(against[c])):
            return i, c
        left = residual(left, against)
    return -1, int(torch.multinomial(left, 1, generator=generator))


def multi_draft_distribution(p: torch.Tensor, candidates: list[int] | int, q: torch.Tensor | None = None) -> torch.Tensor:
    """Exact distribution of the token `multi_draft_sample` emits. p: (vocab,) → (vocab,), float64.

    candidates: the deterministic candidates (q None), or how many were drawn from q: then the sum
    runs over every draw, which is simple because a rejection leaves norm(max(0, left - q)) whatever
    was drawn: each draw keeps min(left, q) of the mass and passes the rest on."""
    left, out, reach = p.double(), torch.zeros_like(p, dtype=torch.float64), 1.0
    for c in (candidates if q is None else range(candidates)):
        kept = torch.zeros_like(left)
        if q is None:
            kept[c] = left[c]
            against = point_mass(c, p.numel(), p.device).double()
        else:
            kept = torch.minimum(left, q.double())
            against = q.double()
        out += reach * kept
        reach *= 1.0 - float(kept.sum())
        left = residual(left, against)
    return out + reach * left

"""Checkers for the notebooks' exercises: each builds its own small cases, so it needs no model.

A learner writes a function in the notebook and uncomments `check_...(their_function)`; the
checker compares it with labkit's reference on synthetic traces or random tensors and prints what
passed, or raises an AssertionError that says which case failed. The solutions in
`notebooks/solutions/` run every checker. Left out: hints beyond the failing case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from labkit import metrics, rules
from labkit.experiments import predicted_speedup
from labkit.trace import Round, Trace


def synthetic_trace(accepted: Sequence[int], k: int) -> Trace:
    """A trace whose drafting rounds accept the given numbers of drafts (token ids are arbitrary)."""
    rounds = [Round(0, 3, 0, (), (), (), (5,), 0, (5,), 0.0, 0.0, 0.0)]
    for i, a in enumerate(accepted, start=1):
        drafted = tuple(range(10 * i, 10 * i + k))
        rounds.append(Round(i, 0, k, drafted, (0.5,) * k, (0.5,) * k, drafted[:a] + (1,) * (k + 1 - a),
                            a, drafted[:a] + (1,), 0.0, 0.0, 0.0))
    return Trace(path="glassbox", drafter="mtp", pair="synthetic", prompt_ids=(1, 2, 3), rounds=tuple(rounds), k=k)


def _cases() -> list[Trace]:
    return [synthetic_trace([], 4), synthetic_trace([4, 4], 4), synthetic_trace([0, 1, 2, 3], 3),
            synthetic_trace([2, 0, 5, 1], 5)]


def check_tokens_per_forward(fn: Callable[[Trace], float]) -> None:
    """00_tour: new tokens per target forward (the prefill counts as a forward)."""
    for tr in _cases():
        want = metrics.tau(tr)
        got = fn(tr)
        assert abs(got - want) < 1e-9, f"rounds accepting {[r.accepted for r in tr.rounds[1:]]}: got {got}, want {want}"
    print("✓ tokens_per_forward agrees with labkit.metrics.tau on", len(_cases()), "traces")


def check_greedy_verify(fn: Callable[[torch.Tensor, torch.Tensor], tuple[int, int]]) -> None:
    """03_verify_and_accept: (accepted, bonus) from drafts (k,) and target logits (k + 1, vocab)."""
    gen = torch.Generator().manual_seed(0)
    for case in range(50):
        k, vocab = 1 + case % 6, 8
        logits = torch.randn(k + 1, vocab, generator=gen)
        top = logits.argmax(-1)
        drafted = top[:k].clone()
        cut = case % (k + 1)  # the first draft that disagrees (k: none)
        if cut < k:
            drafted[cut] = (drafted[cut] + 1) % vocab
        want = rules.greedy_accept(drafted, logits)
        got = tuple(int(x) for x in fn(drafted, logits))
        assert got == want, f"drafted {drafted.tolist()}, target argmax {top.tolist()}: got {got}, want {want}"
    print("✓ greedy_verify agrees with labkit.rules.greedy_accept on 50 cases")


def check_residual(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """03_verify_and_accept: the distribution to resample from after a rejection, norm(max(0, p - q))."""
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        p = torch.rand(6, generator=gen).softmax(-1)
        q = (3 * torch.rand(6, generator=gen)).softmax(-1)
        r = fn(p, q)
        assert abs(float(r.sum()) - 1) < 1e-5, "the residual must be a distribution (sum to 1)"
        keep = torch.clamp(p / q, max=1.0)
        emitted = q * keep + (1 - float((q * keep).sum())) * r
        tv = rules.tv_distance(emitted, p)
        assert tv < 1e-5, f"drafting from q with your residual emits a distribution {tv:.3g} away from p"
    print("✓ residual: drafting from q, then resampling from it, emits exactly p (20 random cases)")


def check_expected_tau(fn: Callable[[float, int], float]) -> None:
    """04_acceptance: expected tokens per target forward with acceptance alpha and k drafts."""
    for a in (0.0, 0.3, 0.5, 0.8, 0.99):
        for k in (1, 2, 4, 8):
            want, got = metrics.expected_tau(a, k), fn(a, k)
            assert abs(got - want) < 1e-6, f"alpha = {a}, k = {k}: got {got}, want {want}"
    # and by simulation: i.i.d. coins, stop at the first rejection, plus one target token
    gen = torch.Generator().manual_seed(0)
    coins = torch.rand(20000, 4, generator=gen) < 0.6
    simulated = float(coins.int().cumprod(1).sum(1).float().mean()) + 1
    assert abs(fn(0.6, 4) - simulated) < 0.05, f"simulation says {simulated:.3f} for alpha 0.6, k 4"
    print(f"✓ expected_tau matches the closed form and a simulation ({simulated:.3f} at alpha 0.6, k 4)")


def check_best_k(fn: Callable[[float, float, Sequence[int]], int]) -> None:
    """05_speed_and_cost: the k in ks with the highest predicted speedup for acceptance alpha and cost c."""
    for a in (0.2, 0.5, 0.7, 0.9):
        for c in (0.02, 0.1, 0.3):
            ks = range(1, 11)
            want = max(ks, key=lambda k: predicted_speedup(a, k, c))
            got = fn(a, c, ks)
            assert got == want, f"alpha = {a}, c = {c}: got k = {got}, the cost model says {want}"
    print("✓ best_k agrees with the cost model on 12 (alpha, c) settings")


def check_token_runs(fn: Callable[[Sequence[int], int], list[tuple[int, int]]]) -> None:
    """06_multimodal: the (start, end) runs of one token id in a sequence, as labkit.media finds them."""
    from labkit.media import token_runs

    gen = torch.Generator().manual_seed(6)
    cases = [[], [8], [8, 8, 8], [1, 2, 3], [8, 1, 8, 8, 2]]
    cases += [torch.randint(0, 3, (n,), generator=gen).add(7).tolist() for n in range(1, 40)]
    for ids in cases:
        want, got = token_runs(ids, 8), [tuple(r) for r in fn(ids, 8)]
        assert got == want, f"ids {ids}: got {got}, want {want}"
    print(f"✓ token_runs finds the same runs as labkit.media on {len(cases)} sequences")


def check_kl(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """07_train_a_drafter: KL(p || q) per position from log-probabilities (..., vocab) -> (...)."""
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(7)
    for shape in ((5,), (3, 7), (2, 4, 16)):
        log_p = torch.randn(shape, generator=gen).mul(3).log_softmax(-1)
        log_q = torch.randn(shape, generator=gen).mul(3).log_softmax(-1)
        want = F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1)
        got = fn(log_p, log_q)
        assert got.shape == want.shape, f"shape {tuple(shape)}: got {tuple(got.shape)}, want {tuple(want.shape)}"
        assert torch.allclose(got, want, atol=1e-5), f"shape {tuple(shape)}: got {got}, want {want}"
        assert torch.allclose(fn(log_p, log_p), torch.zeros_like(want), atol=1e-6), "KL(p || p) must be 0"
    print("✓ kl agrees with torch.nn.functional.kl_div on 3 shapes, and KL(p || p) = 0")

"""The checkers issue 38 added to 04, 05 and 09 pass a right answer and catch a wrong one; the
papers' accepted length (metrics.accepted_length) leaves the prefill out of the lab's tau."""

import math

import pytest

from labkit import batching, checks, metrics
from labkit.checks import synthetic_trace


def test_accepted_length_leaves_the_prefill_out():
    trace = synthetic_trace([4, 0, 2], 4)  # prefill: 1 token; rounds: 5, 1, 3 tokens
    assert metrics.tau(trace) == pytest.approx(10 / 4)
    assert metrics.accepted_length(trace) == pytest.approx(9 / 3)
    assert metrics.accepted_length(trace) == pytest.approx(metrics.vllm_counts(trace).mean_acceptance_length)
    assert math.isnan(metrics.accepted_length(synthetic_trace([], 4)))  # the prefill alone: no round


def test_expected_tokens_checker():
    def right(alphas):
        tokens, run = 1.0, 1.0
        for a in alphas:
            run *= a
            tokens += run
        return tokens

    checks.check_expected_tokens(right)
    with pytest.raises(AssertionError):  # the coin model with the mean α: wrong when positions differ
        checks.check_expected_tokens(lambda a: metrics.expected_tau(sum(a) / len(a), len(a)))


def test_alpha_needed_checker():
    def right(costs, speedup, k):
        if costs.speedup(metrics.expected_tau(1.0, k), k) < speedup:
            return float("nan")
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if costs.speedup(metrics.expected_tau(mid, k), k) < speedup else (lo, mid)
        return (lo + hi) / 2

    checks.check_alpha_needed(right)
    with pytest.raises(AssertionError):  # the textbook formula: free verification, no loop work
        checks.check_alpha_needed(lambda costs, s, k: next(
            (a / 1000 for a in range(1001) if metrics.expected_speedup(a / 1000, k, costs.c) >= s), float("nan")))


def test_conditional_from_counters_checker():
    def right(drafts, per_pos):
        reached = [drafts, *per_pos[:-1]]
        return [a / n if n else float("nan") for a, n in zip(per_pos, reached)]

    checks.check_conditional_from_counters(right)
    with pytest.raises(AssertionError):  # vLLM's per-position rate: every round in the denominator
        checks.check_conditional_from_counters(lambda drafts, per_pos: [a / drafts for a in per_pos])


def test_serving_k_checker():
    def right(row, k0, loop, alpha, ks):
        model = batching.costs_at(row, k0, loop)
        best = max(ks, key=lambda k: model.speedup(metrics.expected_tau(alpha, k), k))
        return best if model.speedup(metrics.expected_tau(alpha, best), best) > 1 else 0

    checks.check_serving_k(right)
    with pytest.raises(AssertionError):  # always drafts, even where plain decoding is faster
        checks.check_serving_k(lambda row, k0, loop, alpha, ks: max(
            ks, key=lambda k: batching.costs_at(row, k0, loop).speedup(metrics.expected_tau(alpha, k), k)))


def test_furthest_from_coin_checker():
    rows = [{"k": k, "alpha": 0.7, "per_round": metrics.Estimate(metrics.expected_tau(0.7, k) + gap, 0, 9, 4, 10)}
            for k, gap in ((1, 0.01), (2, -0.3), (4, 0.2))]
    checks.check_furthest_from_coin(lambda rows: 2, rows)
    with pytest.raises(AssertionError):  # the largest gap above, ignoring the one below
        checks.check_furthest_from_coin(lambda rows: 4, rows)


def test_direction_prediction_checker(capsys):
    without, with_ = [synthetic_trace([4, 4, 3], 4)] * 3, [synthetic_trace([0, 1, 0], 4)] * 3
    checks.check_direction_prediction({"direction": "lower", "alpha change": -0.5}, without, with_)
    assert "'lower' ✓" in capsys.readouterr().out
    with pytest.raises(AssertionError):  # no guess written down
        checks.check_direction_prediction({"direction": None, "alpha change": None}, without, with_)

"""The checkers of 04_acceptance and 05_speed_and_cost pass a right answer and catch a wrong one."""

import pytest

from labkit import checks, metrics


def test_alpha_from_rounds_checker():
    def right(rounds):
        accepted = sum(r.accepted for r in rounds)
        return accepted / (accepted + sum(r.rejected for r in rounds))

    checks.check_alpha_from_rounds(right)
    with pytest.raises(AssertionError):  # accepted / drafted: counts drafts nobody judged
        checks.check_alpha_from_rounds(lambda rounds: sum(r.accepted for r in rounds) / sum(r.k for r in rounds))
    with pytest.raises(AssertionError):  # a round cut short counted as a rejection
        checks.check_alpha_from_rounds(
            lambda rounds: sum(r.accepted for r in rounds) / sum(r.accepted + (r.accepted < r.k) for r in rounds))


def test_best_k_for_costs_checker():
    checks.check_best_k_for_costs(
        lambda costs, alpha, ks: max(ks, key=lambda k: costs.speedup(metrics.expected_tau(alpha, k), k)))
    with pytest.raises(AssertionError):  # the textbook's free verification and no loop work
        checks.check_best_k_for_costs(
            lambda costs, alpha, ks: max(ks, key=lambda k: metrics.expected_speedup(alpha, k, costs.c)))

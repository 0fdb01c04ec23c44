"""The verification rules and the trace metrics, checked against exact answers."""

import math

import pytest
import torch

from labkit import metrics, rules
from labkit.trace import Decoding, Round, Trace


def _dists(seed=0, vocab=6):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(vocab, generator=g) ** 2
    q = torch.rand(vocab, generator=g) ** 2
    return p / p.sum(), q / q.sum()


def test_rejection_sampling_is_lossless_statistically():
    p, q = _dists()
    g = torch.Generator().manual_seed(1)
    n = 20000
    counts = torch.zeros_like(p)
    for _ in range(n):
        x = torch.multinomial(q, 1, generator=g)
        accepted, nxt = rules.rejection_sample(x, q[None], torch.stack([p, p]), g)
        counts[int(x) if accepted else nxt] += 1
    assert rules.tv_distance(counts / n, p) < 0.015


def test_emitted_distribution_matches_simulation_of_argmax_drafting():
    """transformers' MTP rule: draft argmax(q), accept with min(1, p/q), else norm(max(0, p-q))."""
    p, q = _dists(seed=3)
    d = int(q.argmax())
    exact = rules.emitted_distribution(p, q, rules.point_mass(d, p.numel()))
    g = torch.Generator().manual_seed(2)
    counts = torch.zeros_like(p)
    n = 20000
    for _ in range(n):
        _, nxt = rules.rejection_sample(torch.tensor([d]), q[None], torch.stack([p, p]), g)
        counts[nxt] += 1
    assert rules.tv_distance(counts / n, exact.float()) < 0.015
    assert rules.tv_distance(exact, p) > 0.05  # biased: not the target's distribution


def test_emitted_distribution_is_exact_for_sampled_or_point_mass_drafts():
    p, q = _dists(seed=4)
    assert rules.tv_distance(rules.emitted_distribution(p, q, q), p) < 1e-6
    d = rules.point_mass(int(q.argmax()), p.numel())
    assert rules.tv_distance(rules.emitted_distribution(p, d, d), p) < 1e-6


def test_greedy_accept():
    logits = torch.full((4, 5), -1.0)
    for i, t in enumerate([2, 3, 1, 4]):
        logits[i, t] = 1.0
    assert rules.greedy_accept(torch.tensor([2, 3, 0]), logits) == (2, 1)
    assert rules.greedy_accept(torch.tensor([2, 3, 1]), logits) == (3, 4)
    assert rules.greedy_accept(torch.tensor([0, 3, 1]), logits) == (0, 2)


def test_warp_matches_transformers_sampling_distribution():
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0])
    probs = rules.warp(logits, 0.5, top_p=1.0)
    assert torch.allclose(probs, (logits / 0.5).softmax(-1))
    top = rules.warp(logits, 1.0, top_p=0.7)
    assert top[-1] == 0 and math.isclose(float(top.sum()), 1.0, rel_tol=1e-6)


def _round(i, k, drafted, accepted, emitted, tv=None):
    return Round(i, 10 + i, k, tuple(drafted), (0.5,) * k, (0.4,) * k, (0,) * (k + 1), accepted,
                 tuple(emitted), 0.01, 0.02, 0.003, tv)


def _trace():
    rounds = (
        _round(0, 0, [], 0, [7]),
        _round(1, 3, [1, 2, 3], 3, [1, 2, 3, 9]),  # all accepted + bonus
        _round(2, 3, [4, 5, 6], 1, [4, 8], tv=0.2),  # second draft rejected
        _round(3, 3, [1, 1, 1], 0, [5], tv=0.4),  # first rejected
    )
    return Trace("glassbox", "mtp", "test", (1, 2), rounds, Decoding(k=3), wall=0.5)


def test_metrics_by_hand():
    t = _trace()
    assert t.new_ids == (7, 1, 2, 3, 9, 4, 8, 5)
    assert metrics.tau(t) == 8 / 4
    assert metrics.acceptance_by_position(t) == [2 / 3, 1 / 3, 1 / 3]
    assert metrics.acceptance_by_position(t, conditional=True) == [2 / 3, 1 / 2, 1.0]
    assert metrics.alpha(t) == 4 / 6  # 4 accepted, 2 rejections judged
    s = metrics.summarize(t)
    assert s.drafter_forwards == 9 and s.target_forwards == 4
    assert s.tv == pytest.approx(0.3)
    assert t.rounds[1].bonus == 9 and t.rounds[2].bonus == 8 and not t.rounds[1].rejected


def test_tokens_per_round_is_what_the_closed_form_predicts():
    from labkit.checks import synthetic_trace

    full = synthetic_trace([4, 4, 4], 4)  # every draft accepted: alpha = 1
    assert metrics.alpha(full) == 1.0 and metrics.tokens_per_round(full) == metrics.expected_tau(1.0, 4) == 5.0
    assert metrics.tau(full) == (1 + 15) / 4  # the prefill forward yields one token
    t = _trace()  # rounds drafting fewer than the trace's k do not count
    full_k = [r for r in t.rounds if r.k == t.k]
    assert metrics.tokens_per_round(t) == sum(r.accepted + 1 for r in full_k) / len(full_k)


def test_theory():
    assert metrics.expected_tau(0.0, 4) == 1.0
    assert metrics.expected_tau(1.0, 4) == 5.0
    assert metrics.expected_tau(0.5, 2) == pytest.approx(1.75)
    assert metrics.expected_speedup(0.5, 2, 0.0) == pytest.approx(1.75)
    assert metrics.expected_speedup(0.5, 2, 0.5) == pytest.approx(1.75 / 2)


def test_trace_json_round_trip(tmp_path):
    t = _trace()
    path = t.save(tmp_path / "t.json")
    back = Trace.load(path)
    assert back == t
    assert metrics.summarize(back) == metrics.summarize(t)


def test_a_saved_trace_renders_without_torch(tmp_path):
    """Traces are data: plots and metrics of a saved trace need neither torch nor transformers."""
    import subprocess
    import sys

    path = _trace().save(tmp_path / "t.json")
    code = f"""
import sys
sys.modules["torch"] = None  # any import of torch now fails
sys.modules["transformers"] = None
from labkit import metrics, plots, style
from labkit.trace import Trace
t = Trace.load({str(path)!r})
figures = [plots.acceptance_figure(t), plots.tau_histogram(t),
           plots.time_split_figure(t), plots.round_figure(t.rounds[1])]
print(len(figures), round(metrics.tau(t), 3), len(style.ansi(t, color=False)) > 0)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["4", str(round(metrics.tau(_trace()), 3)), "True"]


def test_bootstrap_interval_resamples_prompts():
    from labkit.checks import synthetic_trace

    easy = [synthetic_trace([4, 4, 4], 4) for _ in range(5)]
    hard = [synthetic_trace([0, 0, 1], 4) for _ in range(5)]
    est = metrics.interval(metrics.tau, easy + hard, n_boot=400)
    assert est.prompts == 10 and est.rounds == 30
    assert est.lo < est.value < est.hi  # prompts differ, so the interval has width
    assert est.value == pytest.approx(metrics.tau(easy + hard))
    same = metrics.interval(metrics.tau, easy, n_boot=50)
    assert same.lo == same.value == same.hi  # identical prompts: nothing to resample
    assert "10 prompts, 30 rounds" in est.sample and str(est).count("[") == 1
    with pytest.raises(ValueError):
        metrics.interval(metrics.speedup, easy, hard[:2])  # a paired statistic needs paired samples


def test_sample_step_keeps_below_the_ratio_and_resamples_from_the_residual():
    p = torch.tensor([0.5, 0.3, 0.2])
    q = torch.tensor([0.2, 0.6, 0.2])
    assert rules.sample_step(p, q, 1, 0.49) == (True, 1)  # min(1, 0.3 / 0.6) = 0.5
    kept, token = rules.sample_step(p, q, 1, 0.51, torch.Generator().manual_seed(0))
    assert not kept and token == 0  # the residual norm(max(0, p - q)) is all on token 0
    assert torch.allclose(rules.residual(p, q), torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(rules.residual(p, p), p)  # nothing left over: p itself
    draws = []
    drafted, qs, ps = torch.tensor([1, 1]), torch.stack([q, q]), torch.stack([p, p, p])
    rules.rejection_sample(drafted, qs, ps, torch.Generator().manual_seed(1), draws)
    assert 1 <= len(draws) <= 2 and all(0 <= u < 1 for u in draws)


def test_sampling_checkers_accept_the_rule_and_reject_a_wrong_one():
    from labkit import checks

    checks.check_sample_step(rules.sample_step)
    with pytest.raises(AssertionError):  # resampling from p instead of the residual is biased
        checks.check_sample_step(lambda p, q, x, u, g=None: rules.sample_step(p, q, x, u, g) if u < min(1, float(p[x] / q[x]))
                                 else (False, int(torch.multinomial(p, 1, generator=g))))
    checks.check_q_equals_p({"keep": 1.0, "tv_argmax": 0.6})
    with pytest.raises(AssertionError):
        checks.check_q_equals_p({"keep": 1.0, "tv_argmax": 0.0})


def _timed(accepted, k, t_draft, verify, loop, prefill=0.05, plain_steps=0, plain=(0.02, 0.004)):
    """A trace whose rounds took the given seconds (plain_steps > 0: a plain trace of that many steps)."""
    rounds = [Round(0, 3, 0, (), (), (), (5,), 0, (5,), 0.0, prefill, 0.0)]
    if plain_steps:
        rounds += [Round(i, 3 + i, 0, (), (), (), (6,), 0, (6,), 0.0, plain[0], plain[1])
                   for i in range(1, plain_steps + 1)]
    for i, a in enumerate(accepted, start=1):
        drafted = tuple(range(10 * i, 10 * i + k))
        rounds.append(Round(i, 0, k, drafted, (0.5,) * k, (0.5,) * k, drafted[:a] + (1,) * (k + 1 - a), a,
                            drafted[:a] + (1,), k * t_draft, verify[0] + verify[1] * (k + 1), loop[0] + loop[1] * k))
    wall = sum(r.seconds for r in rounds)
    return Trace(path="plain" if plain_steps else "transformers", drafter="mtp", pair="synthetic", prompt_ids=(1, 2, 3),
                 rounds=tuple(rounds), settings=Decoding(k=k), wall=wall)


def test_cost_model_recovers_the_seconds_it_was_built_from():
    from labkit import experiments

    spec = {k: [_timed([k, 1, 0, k], k, 0.002, (0.018, 0.002), (0.005, 0.0005)),
                _timed([2, k, k], k, 0.002, (0.018, 0.002), (0.005, 0.0005))] for k in (1, 2, 4)}
    plain = [_timed([], 0, 0, (0, 0), (0, 0), plain_steps=n - 1) for n in (len(t.new_ids) for t in spec[4])]
    costs = experiments.fit_costs(plain, [t for ts in spec.values() for t in ts])
    assert costs.t_target == pytest.approx(0.02) and costs.loop_plain == pytest.approx(0.004)
    assert costs.t_draft == pytest.approx(0.002) and costs.c == pytest.approx(0.1)
    assert costs.verify == pytest.approx((0.018, 0.002)) and costs.loop_round == pytest.approx((0.005, 0.0005))
    assert costs.v(1) == pytest.approx(1.0)
    # the model predicts the measured ratio exactly when the seconds are exactly its own
    assert experiments.predict(costs, spec[4]) == pytest.approx(metrics.speedup(plain, spec[4]))
    # leaving the loop's work out under-predicts: plain decoding pays it per token, speculation per round
    assert experiments.predict(costs, spec[4], loop=False) < experiments.predict(costs, spec[4])


def test_cost_model_predicts_the_shipped_speed_traces():
    """05_speed_and_cost's claim, on the traces it ships: the cost model within 10 % at every k."""
    import labkit
    from labkit import experiments

    speed, meta = labkit.load_traces("speed")
    ks = sorted(int(name.split("= ")[1]) for name in speed if name.startswith("k = "))
    costs = experiments.fit_costs(speed["plain"], [t for k in ks for t in speed[f"k = {k}"]])
    for k in ks:
        measured = metrics.speedup(speed["plain"], speed[f"k = {k}"])
        predicted = experiments.predict(costs, speed[f"k = {k}"])
        assert abs(predicted / measured - 1) <= 0.10, f"k = {k}: measured {measured:.2f}x, predicted {predicted:.2f}x"
    for traces in speed.values():  # greedy: speculation changed no token
        assert all(t.new_ids == p.new_ids for t, p in zip(traces, speed["plain"]))

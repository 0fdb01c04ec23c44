"""Figures and widgets on synthetic traces: no model, no kernel, no browser.

The browser test (tests/browser) clicks the real thing; here we check that every figure builds with
the lab's colours and that the widgets' panels change when they are driven.
"""

import json

import ipywidgets as widgets
import pytest

from labkit import metrics, plots
from labkit.errors import OfflineError
from labkit.style import COLORS
from labkit.trace import Round, Trace
from labkit.widgets import RoundStepper, SweepExplorer, TourPanel, round_html


def make_trace(accepted=(2, 0, 3, 1, 3), k=3, temperature=0.0, seed=0, path="glassbox"):
    """A trace whose rounds accept the given numbers of drafts; token ids are arbitrary but fixed."""
    rounds = [Round(0, 5, 0, (), (), (), (7,), 0, (7,), 0.0, 0.01, 0.001)]
    nxt = 10 + seed
    for i, a in enumerate(accepted, start=1):
        drafted = tuple(range(nxt, nxt + k))
        emitted = drafted[:a] + (99,)
        rounds.append(Round(
            index=i, position=5 + sum(len(r.emitted) for r in rounds), k=k, drafted=drafted,
            draft_probs=tuple(0.9 - 0.1 * j for j in range(k)),
            target_probs=tuple(0.8 if j < a else 0.1 for j in range(k)),
            target_top=drafted[:a] + (99,) * (k + 1 - a), accepted=a, emitted=emitted,
            t_draft=0.002 * k, t_verify=0.01, t_rest=0.001, tv=0.05 if temperature else None,
        ))
        nxt += k
    pieces = tuple(f"t{t} " for r in rounds for t in r.emitted)
    return Trace(path=path, drafter="mtp", pair="pocket", prompt_ids=(1, 2, 3, 4, 5), rounds=tuple(rounds),
                 temperature=temperature, k=k, wall=0.1, pieces=pieces, prompt_text="a prompt ")


def colors_in(fig):
    return json.dumps(fig.to_dict())


def test_every_figure_builds_with_the_lab_colours():
    tr = make_trace()
    other = make_trace(accepted=(0, 1, 0, 0, 2), seed=1)
    figs = {
        "tokens": plots.tokens_figure(tr, show_prompt=True),
        "round": plots.round_figure(tr.rounds[1], decode=lambda t: f"<{t}>"),
        "acceptance": plots.acceptance_figure({"a": [tr], "b": [other]}),
        "acceptance_cond": plots.acceptance_figure(tr, conditional=True),
        "tau": plots.tau_histogram([tr, other]),
        "sweep": plots.sweep_figure([{"k": k, "tau": 1 + 0.3 * k, "alpha": 0.5, "speedup": 1.1} for k in (1, 2, 4)],
                                    c=0.2),
        "split": plots.time_split_figure({"plain": [tr], "spec": [other]}),
        "cost": plots.cost_curve_figure([{"n": n, "seconds": 0.01 + 0.001 * n, "label": m}
                                         for n in (1, 2, 4) for m in ("x", "y")]),
    }
    for name, fig in figs.items():
        assert fig.data, name
        assert fig.layout.paper_bgcolor == "rgba(0,0,0,0)", name  # readable in dark themes
    assert COLORS["accepted"] in colors_in(figs["tokens"]) and COLORS["bonus"] in colors_in(figs["tokens"])
    assert COLORS["rejected"] in colors_in(figs["round"])  # round 1 rejected its third draft
    assert COLORS["bonus"] in colors_in(figs["round"])
    split = colors_in(figs["split"])
    assert COLORS["accepted"] in split and COLORS["bonus"] in split


def test_tokens_figure_has_one_tile_per_token():
    tr = make_trace()
    fig = plots.tokens_figure(tr)
    assert len(fig.layout.shapes) == len(tr.new_ids)
    fills = [s.fillcolor for s in fig.layout.shapes]
    assert fills.count(COLORS["accepted"]) == sum(r.accepted for r in tr.rounds)


def test_acceptance_figure_plots_the_metric():
    tr = make_trace()
    fig = plots.acceptance_figure(tr, theory=False)
    assert list(fig.data[0].y) == pytest.approx(metrics.acceptance_by_position(tr))


def test_round_html_marks_accept_reject_and_bonus():
    tr = make_trace()
    text = round_html(tr, 1, lambda t: f"tok{t}")
    assert "accepted" in text and "rejected" in text and "tok99" in text


def test_round_stepper_panel_changes_on_next_and_click():
    stepper = RoundStepper(make_trace())
    assert stepper.next_button.description == "Next round"
    assert "labkit-round-panel" in stepper.panel._dom_classes
    first = stepper.panel.value
    stepper.next()
    second = stepper.panel.value
    assert second != first
    stepper.next_button.click()  # what the browser's click does: runs the on_click handlers
    assert stepper.panel.value not in (first, second)
    stepper.reset()
    assert stepper.panel.value == first
    for _ in range(len(stepper.trace.rounds)):  # wraps around instead of getting stuck
        stepper.next()
    assert stepper.panel.value == first


def test_sweep_explorer_summary_follows_the_sliders():
    calls = []

    def fake_run(k, temperature):
        calls.append((k, temperature))
        accepted = [min(k, a) for a in (0, 1, 2, 3, 1)]
        return [make_trace(accepted=accepted, k=k, temperature=temperature)]

    explorer = SweepExplorer(fake_run, k=2)
    assert isinstance(explorer.k, widgets.IntSlider) and explorer.k.description == "k"
    assert explorer.temperature.description == "temperature"
    assert "labkit-sweep-summary" in explorer.summary._dom_classes
    before = explorer.summary.value
    explorer.k.value = 3
    assert explorer.summary.value != before and "k = 3" in explorer.summary.value
    explorer.temperature.value = 0.7
    explorer.k.value = 2
    assert calls == [(2, 0.0), (3, 0.0), (3, 0.7), (2, 0.7)]
    explorer.temperature.value = 0.0  # cached: no new run
    assert len(calls) == 4
    assert [r["k"] for r in explorer.rows(0.0)] == [2, 3]


class FakePair:
    is_pocket, name, label = True, "pocket", "pocket pair"


def test_tour_panel_runs_and_reports_unreachable_weights():
    def fake_run(pair, prompt, path, **kw):
        return make_trace(accepted=() if path == "plain" else (2, 1), k=2, path=path)

    def fake_load(name):
        raise OfflineError(f"cannot reach {name}; the pocket pair still works offline")

    panel = TourPanel(FakePair(), "hello", run=fake_run, load=fake_load)
    panel.button.click()
    assert "tau" in panel.result.value and "speedup" in panel.result.value
    panel.pair_box.value = "google/gemma-4-E2B-it"
    panel.button.click()
    assert "OfflineError" in panel.result.value and "pocket pair still works" in panel.result.value

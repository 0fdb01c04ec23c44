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
from labkit.trace import Decoding, Round, Trace
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
                 settings=Decoding(k=k, temperature=temperature), wall=0.1, pieces=pieces, prompt_text="a prompt ")


def colors_in(fig):
    return json.dumps(fig.to_dict())


def test_every_figure_builds_with_the_lab_colours():
    tr = make_trace()
    other = make_trace(accepted=(0, 1, 0, 0, 2), seed=1)
    figs = {
        "round": plots.round_figure(tr.rounds[1], decode=lambda t: f"<{t}>"),
        "acceptance": plots.acceptance_figure({"a": [tr], "b": [other]}),
        "acceptance_cond": plots.acceptance_figure(tr, conditional=True),
        "tau": plots.tau_histogram([tr, other]),
        "sweep": plots.sweep_figure([{"k": k, "tau": 1 + 0.3 * k, "alpha": 0.5, "per_round": 1.2 + 0.3 * k}
                                     for k in (1, 2, 4)]),
        "speedup": plots.speedup_figure([{"k": k, "measured": metrics.Estimate(1 + 0.1 * k, 0.9, 1.6, 8, 40),
                                          "model": 1.05 + 0.1 * k, "no_loop": 1 + 0.05 * k, "textbook": 1.3}
                                         for k in (1, 2, 4)], title="t"),
        "split": plots.time_split_figure({"plain": [tr], "spec": [other]}),
        "cost": plots.cost_curve_figure({m: [(n, 0.01 + 0.001 * n) for n in (1, 2, 4)] for m in ("x", "y")}),
    }
    for name, fig in figs.items():
        assert fig.data, name
        assert fig.layout.paper_bgcolor == "rgba(0,0,0,0)", name  # readable in dark themes
    assert COLORS["rejected"] in colors_in(figs["round"])  # round 1 rejected its third draft
    assert COLORS["bonus"] in colors_in(figs["round"])
    split = colors_in(figs["split"])
    assert COLORS["accepted"] in split and COLORS["bonus"] in split


def test_acceptance_figure_plots_the_metric():
    tr = make_trace()
    fig = plots.acceptance_figure(tr, theory=False)
    assert list(fig.data[0].y) == pytest.approx(metrics.acceptance_by_position(tr))


def test_round_html_marks_accept_reject_and_bonus():
    tr = make_trace()
    text = round_html(tr, 1, lambda t: f"tok{t}")
    assert "accepted" in text and "rejected" in text and "tok99" in text
    # a sampled round names the rule its path applied (issue 38): transformers' lossless path keeps an
    # argmax draft with probability p(x); drafts sampled from q (the glass box) with min(1, p/q)
    point_mass = round_html(make_trace(temperature=1.0, path="transformers"), 1, str)
    assert "probability p(x)" in point_mass and "point mass" in point_mass
    assert "drafts sampled from q" in round_html(make_trace(temperature=1.0), 1, str)


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


def test_tour_panel_runs_and_reports_unreachable_weights():
    calls = []

    def fake_run(pair, prompt, settings):  # as generation.tour_runner: one pair loads, the others are offline
        calls.append((pair, prompt, settings.k, settings.temperature, settings.max_new_tokens))
        if pair != "pocket":
            raise OfflineError(f"cannot reach {pair}; the pocket pair still works offline")
        traces = [make_trace(accepted=() if path == "plain" else (2, 1), k=2, path=path,
                             temperature=settings.temperature) for path in ("plain", "transformers")]
        return ("pocket pair", *traces)

    panel = TourPanel(fake_run, "hello", max_new_tokens=16)
    assert isinstance(panel.k, widgets.IntSlider) and panel.k.description == "k"
    assert panel.temperature.description == "temperature" and panel.replay_button.disabled
    assert panel.pair_box.value == "pocket"
    panel.button.click()
    assert calls == [("pocket", "hello", 4, 0.0, 16)]
    assert "pocket pair" in panel.result.value
    assert "tau" in panel.result.value and "speedup" in panel.result.value
    assert "greedy" in panel.result.value and "same text as the target alone" in panel.result.value
    assert "labkit-tour-typing" in panel.typing._dom_classes and "@keyframes" in panel.typing.value
    assert "watch it type · pocket pair" in panel.typing.value
    panel.k.value, panel.temperature.value, panel.prompt.value = 3, 0.8, "a prompt of my own"
    panel.button.click()
    assert calls[-1] == ("pocket", "a prompt of my own", 3, 0.8, 16)
    assert "sampled at T = 0.8" in panel.result.value and "differ by chance" in panel.result.value
    shown = panel.typing.value
    panel.replay_button.click()  # a new rendering: the animations start again
    assert panel.typing.value != shown and panel.typing.value.count("lk-t") == shown.count("lk-t")
    panel.pair_box.value = "google/gemma-4-E2B-it"
    panel.button.click()
    assert calls[-1][0] == "google/gemma-4-E2B-it"
    assert "OfflineError" in panel.result.value and "pocket pair still works" in panel.result.value
    assert panel.replay_button.disabled


def test_watch_it_type_uses_the_measured_round_times():
    import re

    from labkit.replay import emission_times, typing_html

    plain = make_trace(accepted=(), k=2, path="plain")
    plain = Trace(**{**plain.__dict__, "rounds": tuple(
        Round(i, 5 + i, 0, (), (), (), (40 + i,), 0, (40 + i,), 0.0, 0.02, 0.001) for i in range(6)),
        "pieces": tuple(f"p{i} " for i in range(6))})
    spec = make_trace(accepted=(2, 0, 3), k=3)
    # plain: one token per round, at each round's end; speculative: a round's tokens together
    assert emission_times(plain) == pytest.approx([0.021 * (i + 1) for i in range(6)])
    ends, clock = [], 0.0
    for r in spec.rounds:
        clock += r.seconds
        ends += [clock] * len(r.emitted)
    assert emission_times(spec) == pytest.approx(ends)
    page = typing_html({"plain": plain, "speculative": spec}, caption="pocket pair")
    delays = [float(d) for d in re.findall(r'class="lk-t" data-t="[^"]+" title="[^"]*" style="animation-delay:([0-9.]+)s', page)]
    assert delays == pytest.approx(emission_times(plain) + emission_times(spec), abs=1e-4)
    assert "<style>" in page and "@keyframes" in page and "real, measured pace" in page
    assert COLORS["accepted"] in page and COLORS["bonus"] in page
    slow = typing_html({"speculative": spec}, slow=4)
    first = float(re.search(r'data-t="[^"]+" title="[^"]*" style="animation-delay:([0-9.]+)s', slow).group(1))
    assert first == pytest.approx(4 * emission_times(spec)[0], abs=1e-3) and "4× slower" in slow


@pytest.fixture
def ipython_shell(monkeypatch):
    """An IPython shell in this process, so `display` publishes (as in a kernel); removed afterwards."""
    import sys
    import types

    import plotly.io as pio
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")  # labkit.setup's choice in a kernel
    # its own user module: a shell otherwise puts a fresh __main__ into sys.modules
    shell = InteractiveShell.instance(config=config, user_module=types.ModuleType("labkit_widget_test"))
    yield shell
    InteractiveShell.clear_instance()
    sys.modules.pop("labkit_widget_test", None)


def test_sweep_explorer_draws_into_outputs_without_capturing(ipython_shell, monkeypatch):
    """Issue 27.7: a `with out:` capture inside a running cell stalled nbclient ~120 s after 04's
    explorer cell (see labkit.widgets.show_in); the figures go into the Output's `outputs` instead.
    test_notebooks.py::test_widget_cells_do_not_stall_nbclient checks the same in a real kernel."""
    def no_capture(self):
        raise AssertionError("an Output captured with `with out:`: use labkit.widgets.show_in")

    monkeypatch.setattr(widgets.Output, "__enter__", no_capture)

    def fake_run(k, temperature):
        return [make_trace(accepted=[min(k, a) for a in (0, 1, 2, 3, 1)], k=k, temperature=temperature)]

    explorer = SweepExplorer(fake_run, k=2)
    outputs = explorer.out.outputs
    assert [o["output_type"] for o in outputs] == ["display_data", "display_data"]
    assert all("application/vnd.plotly.v1+json" in o["data"] for o in outputs)
    explorer.k.value = 3  # a slider move replaces the figures, it does not add to them
    assert len(explorer.out.outputs) == 2 and explorer.out.outputs != outputs
    assert "k = 3" in json.dumps(explorer.out.outputs[0]["data"]["application/vnd.plotly.v1+json"])


def make_sampled_rounds():
    """Two sampled rounds as glassbox.sampled_rounds records them: one rejects, one keeps all."""
    from labkit.glassbox import SampledDraft, SampledRound

    rejecting = SampledRound(
        index=1, position=5, context=(1, 2, 3, 4, 5), k=3,
        drafts=(SampledDraft(10, 0.5, 0.6, 1.0, 0.3), SampledDraft(11, 0.4, 0.1, 0.25, 0.7)),
        top=((12, 0.5, 0.1, 0.8), (13, 0.2, 0.1, 0.2)), token=12, emitted=(10, 12), temperature=1.0)
    keeping = SampledRound(
        index=2, position=7, context=(1, 2, 3, 4, 5, 10, 12), k=1,
        drafts=(SampledDraft(14, 0.3, 0.6, 1.0, 0.9),),
        top=((15, 0.7, 0.0, 0.7), (16, 0.3, 0.0, 0.3)), token=15, emitted=(14, 15), temperature=1.0)
    return [rejecting, keeping]


def test_sampled_round_stepper_walks_draft_by_draft():
    from labkit.widgets import SampledRoundStepper

    stepper = SampledRoundStepper(make_sampled_rounds(), label="pocket pair · sampled at T = 1")
    assert stepper.next_button.description == "Next draft"
    assert "labkit-sampled-panel" in stepper.panel._dom_classes
    first = stepper.panel.value
    assert "u = 0.300 &lt; 1.000" in first and "kept" in first
    stepper.next_button.click()
    second = stepper.panel.value
    assert second != first and "u = 0.700 ≥ 0.250" in second and "rejected" in second
    stepper.next()  # the outcome: the residual's top tokens and what the round emits
    outcome = stepper.panel.value
    assert "residual" in outcome and "← drawn" in outcome and "emits 2 token(s)" in outcome
    stepper.next_round()
    assert "Round 2" in stepper.panel.value
    stepper.next()
    assert "bonus" in stepper.panel.value
    stepper.next_round()  # the first round again, after the last
    assert stepper.panel.value == first
    for _ in range(len(stepper.steps)):  # wraps around
        stepper.next()
    assert stepper.panel.value == first
    stepper.reset()
    assert stepper.panel.value == first
    with pytest.raises(Exception):
        SampledRoundStepper([])


def test_chapter_figures_keep_legends_off_titles_and_name_their_axes():
    from labkit.plots import distill_figure, modality_acceptance_figure, residual_figure

    rejecting, keeping = make_sampled_rounds()
    history = [{"step": s, "kl": 3.0 / s, "agree": [0.1 * s / 5] * 4} for s in range(1, 6)]
    figs = {
        "residual": residual_figure(rejecting, lambda t: f"<{t}>", label="pocket pair · sampled"),
        "bonus": residual_figure(keeping),
        "modality": modality_acceptance_figure({f"q{i}": [make_trace(seed=i)] for i in range(8)}, label="x"),
        "distill": distill_figure(history, smooth=2, label="pocket pair"),
        "round": plots.round_figure(make_trace().rounds[1], label="pocket pair · greedy"),
    }
    for name, fig in figs.items():
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text, name
        legend = fig.layout.legend
        assert legend.y is None or legend.y < 0 or legend.yanchor == "bottom", name
    assert COLORS["rejected"] in colors_in(figs["residual"])  # the residual's colour
    for name in ("modality", "distill"):  # many entries: the legend goes under the plot
        assert figs[name].layout.legend.y < 0 and figs[name].layout.legend.yanchor == "top", name
    assert "#F0E442" not in colors_in(figs["distill"])  # no yellow line on white
    assert figs["distill"].layout.yaxis2.title.text


def test_cost_calculator_follows_its_sliders():
    from labkit.experiments import CostModel
    from labkit.widgets import CostCalculator

    calc = CostCalculator(alpha=0.8, k=4, c=0.1, v=1.0, o=0.0)
    textbook = metrics.expected_tau(0.8, 4) / (4 * 0.1 + 1)
    assert f"{textbook:.2f}×" in calc.summary.value
    before = calc.summary.value
    calc.o.value = 0.3  # the loop's work: plain pays it per token, speculation per round
    assert calc.summary.value != before
    assert CostCalculator.speedup(0.8, 4, 0.1, 1.0, 0.3) > textbook
    calc.alpha.value = 0.0
    assert "slower" in calc.summary.value
    costs = CostModel(t_target=0.02, loop_plain=0.004, t_draft=0.002, verify=(0.018, 0.002),
                      loop_round=(0.005, 0.0), prefill=0.05)
    start = CostCalculator.from_costs(costs, alpha=0.75)
    assert (start.c.value, start.o.value) == (0.1, 0.2) and start.v.value == round(costs.v(5), 2)


def test_drafter_race_names_the_fastest_and_methods_figure_builds():
    from dataclasses import replace

    from labkit.widgets import DrafterRace

    calls = []

    def fake_run(text, method, k):  # as bench.race_runner: one trace per (method, k), faster for more k
        calls.append((text, method, k))
        trace = make_trace(accepted=() if method == "none" else (min(k, 2), 1), k=max(k, 1))
        return replace(trace, wall=0.1 if method == "none" else 0.1 / (1 + 0.1 * k))

    race = DrafterRace(fake_run, ("mtp", "prompt-lookup", "none"), examples={"quote: q-01": "to be or not"},
                       ks=(2, 4), label="pocket pair, glass-box loop")
    race.example.value = "quote: q-01"
    assert race.text.value == "to be or not" and "labkit-race-result" in race.result._dom_classes
    race.button.click()
    assert calls[0] == ("to be or not", "none", 1) and len(calls) == (1 + 3) * (1 + 2 * 2)  # warm-up, 3 repeats
    assert "Fastest here: <b>mtp, k = 4</b>" in race.result.value and "prompt-lookup" in race.result.value
    race.methods.value = ()
    race.button.click()
    assert "pick at least one" in race.result.value
    rows = [{"task": t, "method": m, "tau": metrics.interval(metrics.tau, [make_trace(), make_trace(seed=1)]),
             "speedup": 1.2} for t in ("prose", "quote") for m in ("mtp", "none")]
    fig = plots.methods_figure(rows, label="pocket pair, glass-box loop")
    assert len(fig.data) == 4 and "Which drafter wins" in fig.layout.title.text
    pos = plots.position_acceptance_figure({"exact": [make_trace(accepted=(1,) * 30)] * 3}, window=64, bin_size=16)
    assert pos.data and pos.layout.yaxis.range == (0, 1)


def test_in_the_book_a_widget_shows_its_static_state(ipython_shell, monkeypatch):
    """Executed for the build (LABKIT_BOOK=1): one output carries the live widget (JupyterLab draws
    it) and its static state for the book, where no kernel answers a slider: panels and figures as
    they stand, controls greyed out, and a link to run the chapter (labkit.book)."""
    import plotly.io as pio

    from labkit import book
    from labkit.widgets import CostCalculator

    monkeypatch.setenv("LABKIT_BOOK", "1")
    monkeypatch.setattr(pio.renderers, "default", pio.renderers.default)  # restored afterwards
    book.use_book_renderer()
    calc = CostCalculator(alpha=0.8, k=4, c=0.1, v=1.0, o=0.0)
    shown = []
    monkeypatch.setattr("labkit.widgets.display", lambda obj, **kw: shown.append((obj, kw)))
    calc._ipython_display_()
    ((bundle, kw),) = shown
    assert kw == {"raw": True}
    page = bundle["text/html"]
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == calc.widget.model_id
    assert book.RUN_IT in page and "CostCalculator" in page
    assert calc.summary.value in page  # the panel as it stands
    assert "Plotly.newPlot" in page and "<script src" not in page  # drawn by the book's one plotly.js
    assert "type='range' disabled" in page and "value='0.8'" in page

    monkeypatch.delenv("LABKIT_BOOK")  # in a notebook: the live widget
    shown.clear()
    calc._ipython_display_()
    assert shown == [(calc.widget, {})]

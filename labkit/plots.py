"""Plotly figures of traces and measurements: what the notebooks show.

Every function takes data (traces, summaries, rows of measurements), never a model, so a saved
trace plots the same anywhere. Colours come from `labkit.style`: green for the drafter's accepted
tokens (and drafter time), vermillion for rejected drafts, blue for the target's own tokens (and
target time), grey for the prompt and everything else; several series use the rest of the
Okabe–Ito palette. Backgrounds are transparent and text is mid-grey, so figures read in light and
dark themes alike.

Left out: animation, 3-D, and any static-image export (kaleido is not a dependency).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labkit import metrics
from labkit.style import COLORS, LABELS, MARKERS, MEDIA_COLORS
from labkit.trace import Round, Trace

# Okabe–Ito, minus the three colours that mean accepted / rejected / target: for comparing series.
SERIES = ("#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
INK = "#8a8a8a"  # mid-grey text: readable on white and on a dark notebook theme
GRID = "rgba(128,128,128,0.25)"

Traces = Trace | Sequence[Trace] | Mapping[str, Trace | Sequence[Trace]]


def styled(fig: go.Figure, title: str, **layout: Any) -> go.Figure:
    """The one look: transparent, mid-grey ink, faint grid, legend on top. For notebooks' own figures too."""
    fig.update_layout(
        title={"text": title, "x": 0.01},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": INK, "size": 13},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0.0},
        margin={"l": 60, "r": 20, "t": 80, "b": 50},
        hoverlabel={"font_size": 13},
        **layout,
    )
    fig.update_xaxes(gridcolor=GRID, zerolinecolor=GRID, linecolor=GRID)
    fig.update_yaxes(gridcolor=GRID, zerolinecolor=GRID, linecolor=GRID)
    return fig


def _groups(data: Traces) -> dict[str, list[Trace]]:
    """A trace, a list of traces, or {label: traces} → {label: [traces]}."""
    if isinstance(data, Trace):
        return {data.path: [data]}
    if isinstance(data, Mapping):
        return {str(k): [v] if isinstance(v, Trace) else list(v) for k, v in data.items()}
    return {"traces": list(data)}


def _series_color(i: int, n: int) -> str:
    return COLORS["accepted"] if n == 1 else SERIES[i % len(SERIES)]


def _centers(xs: Sequence[int], i: int, n: int) -> list[float]:
    """Where bar i of n sits in each group of a grouped bar chart (plotly's default gap of 0.2)."""
    return [x - 0.4 + (i + 0.5) * 0.8 / n for x in xs]


def _show(piece: str) -> str:
    return piece.replace("\n", "↵").replace("\t", "⇥") or "∅"


# -- 01_one_token_at_a_time ------------------------------------------------------------------------


_REL_TICKS = (1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


def cost_curve_figure(curves: dict[str, list[tuple[int, float]]], title: str = "", sample: str = "") -> go.Figure:
    """Forward time over n tokens relative to n = 1, one line per model (`01_one_token_at_a_time`).

    A flat line means extra tokens are nearly free (memory-bound); a line along y = n means every
    token costs a full forward (compute-bound). The dotted diagonal is that worst case. Each
    curve's knee (`architecture.knee`) is marked where it falls inside the measured range, else named in the
    legend. `sample` says what was measured (repeats, context), under the title.
    """
    import math

    from labkit.architecture import knee  # the fit that reads a curve; architecture measures it

    palette = [COLORS["bonus"], "#E69F00", COLORS["accepted"], "#CC79A7"]
    fig = go.Figure()
    ns = sorted({n for rows in curves.values() for n, _ in rows})
    fig.add_trace(go.Scatter(x=ns, y=ns, mode="lines", name="n separate forwards (y = n)",
                             line=dict(color=INK, dash="dot", width=1)))
    top = max(ns)
    for (label, rows), color in zip(curves.items(), palette):
        base = dict(rows)[min(n for n, _ in rows)]
        n_knee = knee(rows)
        where = f"knee ≈ {n_knee:.0f}" if n_knee <= max(ns) else f"no knee up to n = {max(ns)}"
        fig.add_trace(go.Scatter(
            x=[n for n, _ in rows], y=[t / base for _, t in rows], mode="lines+markers",
            name=f"{label} ({where})", line=dict(color=color, width=3), marker=dict(size=8),
            customdata=[t * 1e3 for _, t in rows], hovertemplate="n=%{x}: %{customdata:.1f} ms (×%{y:.2f})<extra></extra>",
        ))
        top = max(top, max(t / base for _, t in rows))
        if min(ns) < n_knee <= max(ns):
            fig.add_vline(x=n_knee, line=dict(color=color, dash="dash", width=1.5))
            fig.add_annotation(x=math.log10(n_knee), y=1, yref="paper", text=f"knee ≈ {n_knee:.0f}",
                               showarrow=False, xanchor="left", yanchor="top", xshift=4,
                               font=dict(color=color))
    ticks = [v for v in _REL_TICKS if v <= top * 1.05]
    fig.update_xaxes(type="log", tickvals=ns, ticktext=[str(n) for n in ns], title="tokens in one forward (n)")
    fig.update_yaxes(type="log", tickvals=ticks, ticktext=[f"{v:g}×" for v in ticks],
                     title="time relative to n = 1", range=[math.log10(0.8), math.log10(top * 1.15)])
    styled(fig, title + (f"<br><sup>{sample}</sup>" if sample else ""))
    fig.update_layout(height=460, legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
                      margin=dict(b=120, t=90))
    return fig


# -- 03_verify_and_accept ------------------------------------------------------------------------------


def round_status(r: Round) -> list[str]:
    """For each drafted position: "accepted", "rejected", or "unjudged" (after a rejection)."""
    return ["accepted" if j < r.accepted else "rejected" if j == r.accepted else "unjudged" for j in range(r.k)]


def round_figure(r: Round, decode: Callable[[int], str] | None = None, label: str = "") -> go.Figure:
    """One round: each drafted token with the drafter's q(x) and the target's p(x) (`03_verify_and_accept`).

    Bars are coloured by what happened to the draft; the target's own token closes the round.
    `decode` turns a token id into text (e.g. `tokenizer.decode([t])`); without it ids are shown.
    `label` (the pair and `trace.decoding`) goes under the title.
    """
    name = (lambda t: _show(decode(t))) if decode else (lambda t: f"#{t}")
    status = round_status(r)
    labels = [f"{j + 1}: {name(t)}" for j, t in enumerate(r.drafted)]
    fig = go.Figure()
    colors = [COLORS.get(s, COLORS["prompt"]) for s in status]
    fig.add_trace(go.Bar(x=labels, y=list(r.draft_probs), name="q(x): drafter", marker_color=colors,
                         marker_pattern_shape="/", marker_opacity=0.55,
                         hovertemplate="drafter q = %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Bar(x=labels, y=list(r.target_probs), name="p(x): target", marker_color=colors,
                         hovertemplate="target p = %{y:.3f}<extra></extra>",
                         text=[MARKERS.get(s, "·") for s in status], textposition="outside"))
    if r.bonus is not None:
        fig.add_trace(go.Bar(x=[f"★ {name(r.bonus)}"], y=[1.0], name=LABELS["bonus"],
                             marker_color=COLORS["bonus"], marker_opacity=0.35,
                             hovertemplate="the target's own token<extra></extra>"))
    fig.update_layout(barmode="group", height=400)
    fig.update_xaxes(title="draft position: token (★ the target's own token)")
    fig.update_yaxes(range=[0, 1.12], title="probability of the drafted token")
    verdict = f"{r.accepted} of {r.k} drafts accepted" if r.k else "prefill: the target's first token"
    sub = f"<br><sup>{html.escape(label)}</sup>" if label else ""
    return styled(fig, f"Round {r.index}: {verdict}{sub}").update_layout(margin_t=110 if label else 80)


def residual_figure(rnd: Any, decode: Callable[[int], str] | None = None, label: str = "") -> go.Figure:
    """Where a sampled round's last token came from (`03_verify_and_accept`).

    rnd: a `glassbox.SampledRound`. For its top tokens: the target's p and the drafter's q at the
    first rejected position, and the residual norm(max(0, p − q)) the token was redrawn from (or,
    when every draft was kept, the target's p the bonus was drawn from). The drawn token is starred.
    """
    name = (lambda t: _show(decode(t))) if decode else (lambda t: f"#{t}")
    labels = [("★ " if t == rnd.token else "") + name(t) for t, *_ in rnd.top]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=[p for _, p, _, _ in rnd.top], name="p: target", marker_color=COLORS["bonus"],
                         hovertemplate="p = %{y:.3f}<extra></extra>"))
    if rnd.rejected:
        fig.add_trace(go.Bar(x=labels, y=[q for _, _, q, _ in rnd.top], name="q: drafter",
                             marker_color=COLORS["accepted"], marker_pattern_shape="/", marker_opacity=0.6,
                             hovertemplate="q = %{y:.3f}<extra></extra>"))
        fig.add_trace(go.Bar(x=labels, y=[m for *_, m in rnd.top], name="residual norm(max(0, p − q))",
                             marker_color=COLORS["rejected"], hovertemplate="residual = %{y:.3f}<extra></extra>"))
        what = f"draft {len(rnd.drafts)} rejected, the token redrawn from the residual"
    else:
        what = "every draft kept, the bonus drawn from p"
    fig.update_layout(barmode="group", height=400)
    fig.update_xaxes(title="token (top of the distribution it was drawn from; ★ drawn)")
    fig.update_yaxes(title="probability", rangemode="tozero")
    sub = f"<br><sup>{html.escape(label)}</sup>" if label else ""
    return styled(fig, f"Round {rnd.index}: {what}{sub}").update_layout(margin_t=110 if label else 80)


# -- 04_acceptance ------------------------------------------------------------------------------------


def _error_y(estimates: Sequence[metrics.Estimate]) -> dict[str, Any]:
    """Plotly error bars drawn from bootstrap intervals."""
    return {"type": "data", "symmetric": False, "thickness": 1.5, "width": 4,
            "array": [e.hi - e.value for e in estimates], "arrayminus": [e.value - e.lo for e in estimates]}


def acceptance_figure(data: Traces, conditional: bool = False, theory: bool = True, interval: bool = True,
                      title: str | None = None) -> go.Figure:
    """Acceptance rate at draft position 1, 2, ... for one or more groups of traces (`04_acceptance`).

    Unconditional: P(draft j accepted), which decays like alpha^j if every draft were an independent
    coin with the same alpha (dotted, `theory=True`). Conditional: P(draft j | drafts before it),
    the per-position alpha_j, which would be flat at alpha. `interval`: 90 % bootstrap intervals
    over prompts as error bars (a group needs one trace per prompt).
    """
    groups = _groups(data)
    fig = go.Figure()
    for i, (label, traces) in enumerate(groups.items()):
        rates = metrics.acceptance_by_position(traces, conditional=conditional)
        pos = list(range(1, len(rates) + 1))
        color = _series_color(i, len(groups))
        error = None
        if interval and len(traces) > 1:
            error = _error_y([metrics.interval(
                lambda ts, j=j: metrics.acceptance_by_position(ts, conditional=conditional)[j - 1], traces,
                n_boot=300) for j in pos])
        n_rounds = len(metrics.drafting_rounds(traces))
        name = f"{label} ({len(traces)} prompts, {n_rounds} rounds)"
        fig.add_trace(go.Bar(x=pos, y=rates, name=name, marker_color=color, error_y=error,
                             hovertemplate="position %{x}: %{y:.2f}<extra>" + html.escape(label) + "</extra>"))
        if theory and rates:
            a = metrics.alpha(traces)
            ys = [a] * len(pos) if conditional else [a**j for j in pos]
            fig.add_trace(go.Scatter(x=_centers(pos, i, len(groups)), y=ys, mode="lines+markers",
                                     name=f"{label}: coin model, α = {a:.2f}",
                                     line={"color": color, "dash": "dot"}, marker={"size": 6}))
    kind = "P(kept | drafts before it kept)" if conditional else "P(draft j kept)"
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="draft position j", dtick=1)
    fig.update_yaxes(title=kind, range=[0, 1.05])
    default = ("Conditional acceptance: each draft, given the ones before it were kept" if conditional
               else "Acceptance by draft position")
    fig = styled(fig, title or default)
    n_entries = len(groups) * (2 if theory else 1)
    # the legend goes under the plot: several entries on top would run into the title
    fig.update_layout(legend={"orientation": "h", "y": -0.2, "yanchor": "top", "x": 0.0},
                      margin={"b": 80 + 22 * ((n_entries + 1) // 2)}, height=420 + 22 * ((n_entries + 1) // 2))
    return fig


def tau_histogram(data: Traces, theory: bool = True, title: str = "Accepted drafts per round") -> go.Figure:
    """How many drafts each round kept, 0 … k, per group; with the coin model's expectation (`04_acceptance`).

    Only full rounds count (drafted k and were not cut by the end of generation). With acceptance
    alpha, P(n accepted) = alpha^n (1 - alpha) for n < k, and alpha^k for n = k.
    """
    groups = _groups(data)
    fig = go.Figure()
    for i, (label, traces) in enumerate(groups.items()):
        rounds = [r for t in traces for r in t.rounds if r.k > 0 and (r.rejected or r.accepted == r.k)]
        if not rounds:
            continue
        k = max(r.k for r in rounds)
        rounds = [r for r in rounds if r.k == k]
        counts = [sum(r.accepted == n for r in rounds) / len(rounds) for n in range(k + 1)]
        color = _series_color(i, len(groups))
        fig.add_trace(go.Bar(x=list(range(k + 1)), y=counts, name=f"{label} ({len(rounds)} rounds, k = {k})",
                             marker_color=color, hovertemplate="%{x} accepted: %{y:.2f}<extra></extra>"))
        if theory:
            a = metrics.alpha(traces)
            ys = [a**n * (1 - a) for n in range(k)] + [a**k]
            fig.add_trace(go.Scatter(x=_centers(range(k + 1), i, len(groups)), y=ys, mode="lines+markers",
                                     name=f"{label}: coin model, α = {a:.2f}",
                                     line={"color": color, "dash": "dot"}))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="drafts accepted in the round (tokens emitted = this + 1)", dtick=1)
    fig.update_yaxes(title="fraction of rounds")
    styled(fig, title)
    fig.update_layout(legend={"y": -0.2, "yanchor": "top"}, margin={"b": 110}, height=460)
    return fig


def _value(x: Any) -> float | None:
    return x.value if isinstance(x, metrics.Estimate) else x


def _errors(xs: Sequence[Any]) -> dict[str, Any] | None:
    if not xs or not all(isinstance(x, metrics.Estimate) for x in xs):
        return None
    return _error_y(xs)


def sweep_figure(rows: Sequence[Mapping[str, Any]], title: str = "Sweep over k: measured against the closed form"
                 ) -> go.Figure:
    """Measured tau and tokens per full round against k, with the closed form (`04_acceptance`).

    rows: dicts with "k", "tau", "alpha" and optionally "per_round" (`metrics.tokens_per_round`) and
    "label"; a value may be a `metrics.Estimate`, drawn with its interval. The theory line uses each
    label's mean alpha: (1 - alpha^(k+1)) / (1 - alpha), which predicts tokens per full round (tau
    pays for the prefill and the last, shorter rounds too). Speed against k is `speedup_figure`'s.
    """
    fig = go.Figure()
    labels = list(dict.fromkeys(str(r.get("label", "")) for r in rows))
    for i, label in enumerate(labels):
        sub = sorted((r for r in rows if str(r.get("label", "")) == label), key=lambda r: r["k"])
        pre = f"{label}: " if label else ""
        color = _series_color(i, len(labels))
        ks = [r["k"] for r in sub]
        a = sum(_value(r["alpha"]) for r in sub) / len(sub)
        dense = list(range(1, max(ks) + 1))
        taus = [r["tau"] for r in sub]
        fig.add_trace(go.Scatter(x=ks, y=[_value(t) for t in taus], mode="markers", name=f"{pre}tau (prefill included)",
                                 error_y=_errors(taus), marker={"color": color, "size": 10, "symbol": "diamond"}))
        if any("per_round" in r for r in sub):
            per = [r.get("per_round") for r in sub]
            fig.add_trace(go.Scatter(x=ks, y=[_value(p) for p in per], mode="markers",
                                     name=f"{pre}tokens per full round", error_y=_errors(per),
                                     marker={"color": color, "size": 10, "symbol": "circle-open"}))
        fig.add_trace(go.Scatter(x=dense, y=[metrics.expected_tau(a, k) for k in dense], mode="lines",
                                 name=f"{pre}closed form (1 − α^(k+1)) / (1 − α), α = {a:.2f}",
                                 line={"color": color, "dash": "dot"}))
    fig.update_xaxes(title="k (drafts per round)", dtick=1)
    fig.update_yaxes(title="tokens per target forward", rangemode="tozero")
    styled(fig, title)
    fig.update_layout(height=460, legend={"y": -0.2, "yanchor": "top"}, margin={"b": 130})
    return fig


# -- 05_speed_and_cost -------------------------------------------------------------------------------


def speedup_figure(rows: Sequence[Mapping[str, Any]], title: str) -> go.Figure:
    """Measured speedup against k, with what each cost model predicts (`05_speed_and_cost`).

    rows: dicts with "k", "measured" (a `metrics.Estimate`) and any of "model" (the cost model with
    the loop's work, a float or an Estimate), "no_loop" (forwards only) and "textbook" (v = 1).
    """
    rows = sorted(rows, key=lambda r: r["k"])
    ks = [r["k"] for r in rows]
    fig = go.Figure()
    measured = [r["measured"] for r in rows]
    fig.add_trace(go.Scatter(x=ks, y=[_value(m) for m in measured], error_y=_errors(measured), mode="markers",
                             name="measured", marker={"color": COLORS["bonus"], "size": 11}))
    lines = (("model", "cost model: forwards + the loop's own work", "solid", COLORS["accepted"]),
             ("no_loop", "forwards only: measured tokens, c and v(k + 1)", "dash", SERIES[0]),
             ("textbook", "textbook: coin-model tokens / (k c + 1)", "dot", INK))
    for key, name, dash, color in lines:
        if any(key in r for r in rows):
            ys = [r.get(key) for r in rows]
            fig.add_trace(go.Scatter(x=ks, y=[_value(y) for y in ys], error_y=_errors(ys), mode="lines+markers",
                                     name=name, line={"color": color, "dash": dash}, marker={"size": 6}))
    fig.add_hline(y=1.0, line={"color": INK, "width": 1})
    fig.update_xaxes(title="k (drafts per round)", dtick=1)
    fig.update_yaxes(title="speedup over plain decoding (×)", rangemode="tozero")
    styled(fig, title)
    fig.update_layout(height=460, legend={"y": -0.2, "yanchor": "top"}, margin={"b": 120})
    return fig


def time_split_figure(data: Traces, title: str = "Time split") -> go.Figure:
    """Where the seconds went: drafter, target (verify) and everything else (`05_speed_and_cost`)."""
    groups = _groups(data)
    labels = list(groups)
    sums = [metrics.summarize(traces) for traces in groups.values()]
    fig = go.Figure()
    for part, color, attr in (("drafter", COLORS["accepted"], "t_draft"),
                              ("target (verify)", COLORS["bonus"], "t_verify"),
                              ("rest", COLORS["prompt"], "t_rest")):
        fig.add_trace(go.Bar(y=labels, x=[getattr(s, attr) for s in sums], name=part, orientation="h",
                             marker_color=color, hovertemplate="%{x:.3f} s<extra>" + part + "</extra>"))
    fig.update_layout(barmode="stack", height=160 + 50 * len(labels))
    fig.update_xaxes(title="seconds")
    styled(fig, title)
    fig.update_layout(margin={"t": 100})  # room for the legend between a two-line title and the bars
    return fig


# -- 06_multimodal -------------------------------------------------------------------------------


def kv_figure(segments: Sequence[tuple[str, int, int]], window: int | None = None) -> go.Figure:
    """What each position holds, and which of them the drafter's layers can attend (`06_multimodal`).

    segments: (kind, start, end) runs of "text", "image", "audio", "video" or "generated" positions, as
    `labkit.media.segments` gives them. The drafter drafts after the last position; its full layer
    reads the target's K/V of every earlier position, its sliding layers only the last `window`.
    """
    end = max(e for _, _, e in segments)
    rows = [("sequence", 0)]
    if window is not None:
        rows += [("drafter: full layer", 0), (f"drafter: sliding layers (window {window})", max(0, end - window))]
    fig = go.Figure()
    shown = set()
    for kind, start, stop in segments:
        for label, first in rows:
            lo = max(start, first)
            if lo >= stop:
                continue
            fig.add_trace(go.Bar(
                y=[label], x=[stop - lo], base=[lo], orientation="h", marker_color=MEDIA_COLORS[kind],
                name=kind, legendgroup=kind, showlegend=kind not in shown,
                hovertemplate=f"{kind}: positions {lo}–{stop - 1}<extra></extra>"))
            shown.add(kind)
    fig.update_layout(barmode="overlay", height=140 + 45 * len(rows), bargap=0.35)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="position in the sequence", range=[0, end])
    held = [k for k in ("image", "audio", "video") if k in shown]
    what = " and ".join(held) if held else "media"
    return styled(fig, f"Where the {what} soft tokens sit, and what the drafter can attend")


def attention_figure(weights: Sequence[Any], segments: Sequence[tuple[str, int, int]],
                     layer_types: Sequence[str] | None = None, pieces: Sequence[str] | None = None,
                     label: str = "") -> go.Figure:
    """Share of each drafter layer's attention on text / image / audio / video positions (`06_multimodal`).

    weights: one (positions,) attention vector per layer (`labkit.media.drafter_attention`);
    segments: (kind, start, end) runs as `labkit.media.segments` gives them. With `pieces` (the
    prompt's token text by position) each layer also names the positions it reads most: a layer
    with one sharp head reads one or two positions, so its bar is all one colour.
    """
    names = []
    for i, w in enumerate(weights):
        name = f"layer {i} ({(layer_types[i] if layer_types else '').split('_')[0]})".replace(" ()", "")
        if pieces is not None:
            top = [int(j) for j in w.argsort(descending=True)[:3] if float(w[j]) >= 0.05]
            reads = ", ".join(f"#{j} {html.escape(_show(pieces[j]))} {float(w[j]):.0%}" for j in top if j < len(pieces))
            name += f"<br><sup>reads {reads}</sup>"
        names.append(name)
    fig = go.Figure()
    for kind in ("text", "image", "audio", "video"):
        shares = [float(sum(w[s:e].sum() for k, s, e in segments if k == kind and s < len(w))) for w in weights]
        if any(shares):
            fig.add_trace(go.Bar(y=names, x=shares, name=kind, orientation="h", marker_color=MEDIA_COLORS[kind],
                                 hovertemplate="%{x:.0%}<extra>" + kind + "</extra>"))
    fig.update_layout(barmode="stack", height=170 + 55 * len(weights))
    fig.update_xaxes(title="share of the drafter's attention", range=[0, 1], tickformat=".0%")
    fig.update_yaxes(autorange="reversed", automargin=True)
    sub = f"<br><sup>{html.escape(label)}</sup>" if label else ""
    styled(fig, f"Where the drafter looks for its first draft{sub}")
    return fig.update_layout(margin_t=110 if label else 80)


def modality_acceptance_figure(groups: Mapping[str, Sequence[Trace]], label: str = "") -> go.Figure:
    """Acceptance by draft position for each (modality · question) group (`06_multimodal`).

    `acceptance_figure` without the theory lines, its legend under the plot (one entry per group,
    however many), and `label` (pair, sample, decoding path) under the title.
    """
    fig = acceptance_figure(groups, theory=False)
    palette = ("#E69F00", "#56B4E9", "#CC79A7", COLORS["accepted"])  # no yellow bars on white
    patterns = {"audio": "/", "clip": ".", "document": "x"}  # so modality is not colour alone
    for i, bar in enumerate(fig.data):
        bar.marker.color = palette[i % len(palette)]
        bar.marker.pattern.shape = patterns.get(str(bar.name).split(" ")[0], "")
    rounds = sum(r.k > 0 for traces in groups.values() for t in traces for r in t.rounds)
    sub = f"<br><sup>{html.escape(label)}</sup>" if label else ""
    styled(fig, f"Acceptance by draft position, per question ({rounds} rounds){sub}")
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0.0},
                      height=430 + 22 * ((len(groups) + 1) // 2), margin_t=100 if label else 70, margin_b=130)
    return fig


# -- 07_train_a_drafter ------------------------------------------------------------------------------


def distill_figure(history: Sequence[Mapping[str, Any]], smooth: int = 10, label: str = "") -> go.Figure:
    """A drafter's training: KL to the target (left) and argmax agreement per draft step (right),
    per step of `labkit.distill.fit`, as a running mean over `smooth` steps (batches are small).
    `label` (pair, data, steps) goes under the title."""
    steps = [h["step"] for h in history]

    def mean(xs: Sequence[float]) -> list[float]:
        return [sum(xs[max(0, i - smooth + 1) : i + 1]) / len(xs[max(0, i - smooth + 1) : i + 1])
                for i in range(len(xs))]

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("KL(target ‖ drafter)", "agreement with the target's argmax"))
    fig.add_trace(go.Scatter(x=steps, y=mean([h["kl"] for h in history]), name="KL", mode="lines",
                             line={"color": COLORS["bonus"]}), row=1, col=1)  # blue: the target
    k = len(history[0]["agree"]) if history else 0
    # no yellow: too faint on white; a dash per step, so colour is not the only cue
    colors = ("#E69F00", "#56B4E9", "#CC79A7", COLORS["accepted"])
    dashes = ("solid", "dash", "dot", "dashdot")
    for j in range(k):
        fig.add_trace(go.Scatter(x=steps, y=mean([h["agree"][j] for h in history]), mode="lines",
                                 name=f"draft step {j + 1}",
                                 line={"color": colors[j % len(colors)], "dash": dashes[j % len(dashes)]}),
                      row=1, col=2)
    fig.update_xaxes(title="training step")
    fig.update_yaxes(title="nats", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title="share of positions", range=[0, 1.0], row=1, col=2)
    sub = f"<br><sup>{html.escape(label)}</sup>" if label else ""
    styled(fig, f"Distilling a drafter (running mean over {smooth} steps){sub}")
    fig.update_annotations(font={"color": INK})
    # the legend under the plots: above them it covered the subplot titles
    fig.update_layout(height=440, legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0.0},
                      margin_t=110 if label else 80, margin_b=110)
    return fig


# -- 08_choosing_a_drafter ---------------------------------------------------------------------------


def methods_figure(rows: Sequence[Mapping[str, Any]], label: str = "") -> go.Figure:
    """tau (left) and wall-clock speedup over the target alone (right) per task, one bar per drafting
    method, each with its interval (`08_choosing_a_drafter`).

    rows: dicts with "task", "method", "tau" and "speedup" (`metrics.Estimate`s or floats). Methods
    are told apart by colour and by hatching, tasks sit on the x axis; `label` (pair, path, sample)
    goes under the title.
    """
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    names = list(dict.fromkeys(r["method"] for r in rows))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("tokens per target forward (tau)", "speedup over the target alone"))
    palette = ("#E69F00", "#56B4E9", "#CC79A7", INK)  # no yellow bars on white
    hatches = ("", "/", ".", "x")
    for i, name in enumerate(names):
        by_task = {r["task"]: r for r in rows if r["method"] == name}
        for col, key in ((1, "tau"), (2, "speedup")):
            values = [by_task[t][key] if t in by_task else None for t in tasks]
            fig.add_trace(go.Bar(x=tasks, y=[_value(v) for v in values], name=name, legendgroup=name,
                                 showlegend=col == 1, error_y=_errors([v for v in values if v is not None]),
                                 marker={"color": palette[i % len(palette)],
                                         "pattern": {"shape": hatches[i % len(hatches)]}}), row=1, col=col)
    fig.add_hline(y=1.0, line={"color": INK, "width": 1}, row=1, col=2)
    fig.update_yaxes(title="tokens per target forward", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title="speedup (×)", rangemode="tozero", row=1, col=2)
    fig.update_xaxes(title="task")
    sub = f"<br><sup>{html.escape(label)}</sup>" if label else ""
    styled(fig, f"Which drafter wins, task by task{sub}")
    fig.update_annotations(font={"color": INK})
    fig.update_layout(barmode="group", height=470, legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0.0},
                      margin_t=110 if label else 80, margin_b=120)
    return fig


def position_acceptance_figure(groups: Mapping[str, Sequence[Trace]], window: int | None = None, bin_size: int = 32,
                               label: str = "") -> go.Figure:
    """Acceptance of the first draft of a round against the round's position in the text, in bins
    of `bin_size` tokens, one line per group, with the sliding window marked (`08_choosing_a_drafter`).

    Each bin shows the share of rounds whose first draft was kept, with a 90 % bootstrap interval
    over prompts and the number of rounds in it; bins with fewer than 10 rounds are left out.
    """
    fig = go.Figure()
    for i, (name, traces) in enumerate(groups.items()):
        traces = list(traces)
        top = max(r.position for t in traces for r in t.rounds)
        xs, ests = [], []
        for start in range(0, top + 1, bin_size):
            def first_kept(ts: Sequence[Trace], lo: int = start) -> float:
                rs = [r for t in ts for r in t.rounds[1:] if r.k and lo <= r.position < lo + bin_size]
                return sum(r.accepted > 0 for r in rs) / len(rs) if rs else float("nan")

            n = sum(1 for t in traces for r in t.rounds[1:] if r.k and start <= r.position < start + bin_size)
            if n >= 10:
                xs.append(start + bin_size / 2)
                ests.append(metrics.interval(first_kept, traces))
        fig.add_trace(go.Scatter(x=xs, y=[e.value for e in ests], error_y=_error_y(ests), mode="lines+markers",
                                 name=name, line={"color": SERIES[i % len(SERIES)], "dash": ("solid", "dash")[i % 2]}))
    if window:
        fig.add_vline(x=window, line={"color": INK, "dash": "dot"},
                      annotation_text=f"sliding window ({window} tokens)", annotation_position="top right")
    fig.update_xaxes(title="position of the round's first draft in the text (tokens)")
    fig.update_yaxes(title="first draft kept (share)", range=[0, 1])
    sub = f"<br><sup>{html.escape(label)}</sup>" if label else ""
    styled(fig, f"Acceptance along the text (bins of {bin_size} tokens){sub}")
    fig.update_layout(height=430, legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0.0},
                      margin_t=100 if label else 70, margin_b=120)
    return fig


def serving_position_figure(counts: metrics.SpecDecodeCounts, label: str, level: float = 0.9) -> go.Figure:
    """Acceptance by draft position from a server's counters (`labkit.serving`): vLLM's per-position
    rate (accepted_j / drafts, every draft in the denominator) beside the lab's conditional acceptance
    (accepted_j / drafts that reached position j, the per-position α_j), with Wilson intervals.

    Counters carry no prompts, so the intervals treat rounds as independent and are narrower than
    the bootstrap intervals of `acceptance_figure`. A round ended by EOS right after its kept prefix
    counts as rejected at the next position: counters cannot tell the two apart.
    """
    k = len(counts.accepted_per_pos)
    reached = (counts.drafts, *counts.accepted_per_pos[:-1])
    series = (("vLLM's per-position rate: kept / all drafts", [counts.drafts] * k, "circle"),
              ("the lab's conditional: kept / drafts that reached it", list(reached), "diamond"))
    pos = list(range(1, k + 1))
    fig = go.Figure()
    for i, (name, trials, symbol) in enumerate(series):
        ys = [a / n if n else float("nan") for a, n in zip(counts.accepted_per_pos, trials)]
        bounds = [metrics.wilson(a, n, level) for a, n in zip(counts.accepted_per_pos, trials)]
        error = {"type": "data", "symmetric": False, "thickness": 1.5, "width": 4,
                 "array": [hi - y for y, (_, hi) in zip(ys, bounds)],
                 "arrayminus": [y - lo for y, (lo, _) in zip(ys, bounds)]}
        fig.add_trace(go.Scatter(
            x=_centers(pos, i, 2), y=ys, error_y=error, mode="markers", name=name,
            marker={"color": SERIES[i], "symbol": symbol, "size": 10},  # the shape too: colour is never the only cue
            customdata=[[a, n, j] for a, n, j in zip(counts.accepted_per_pos, trials, pos)],
            hovertemplate="position %{customdata[2]}: %{y:.2f} = %{customdata[0]} / %{customdata[1]}"
                          "<extra></extra>"))
    fig.update_xaxes(title="draft position j (vLLM's position label is j − 1)", dtick=1,
                     range=[0.5, k + 0.5] if k else None)
    fig.update_yaxes(title="acceptance", range=[0, 1.05])
    styled(fig, "Acceptance by draft position, from vLLM's counters"
                f"<br><sup>{html.escape(label)}<br>{counts.drafts} drafts, {level:.0%} Wilson intervals "
                "(rounds as independent)</sup>")
    # the legend under the plot, as in acceptance_figure: on top it would run into the two-line title
    fig.update_layout(height=460, legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0.0},
                      margin_t=110, margin_b=120)
    return fig


# -- 09_serving ------------------------------------------------------------------------------------------


def batch_cost_figure(rows: Sequence[Mapping[str, Any]], k: int, label: str = "") -> go.Figure:
    """What one decoding step costs as the batch grows (`labkit.batching.batch_costs` rows): a plain
    step (B × 1 tokens), a verification (B × (k + 1)) and k drafter steps, per batch size, with the
    spread of the samples (min to max) as error bars. Where the verification line leaves the plain
    one, checking k drafts stops being free."""
    fig = go.Figure()
    batches = [r["batch"] for r in rows]
    series = (("plain step: target over B × 1 tokens", "plain", 1, COLORS["bonus"], "circle"),
              (f"verification: target over B × {k + 1} tokens", "verify", 1, COLORS["rejected"], "diamond"),
              (f"drafting: {k} drafter steps for B rows", "draft", k, COLORS["accepted"], "square"))
    for name, key, times, color, symbol in series:
        ys = [times * r[key] * 1e3 for r in rows]
        lo = [times * min(r["samples"][key]) * 1e3 for r in rows]
        hi = [times * max(r["samples"][key]) * 1e3 for r in rows]
        fig.add_trace(go.Scatter(
            x=batches, y=ys, mode="lines+markers", name=name, line={"color": color, "width": 3},
            marker={"symbol": symbol, "size": 9},
            error_y={"type": "data", "symmetric": False, "array": [h - y for h, y in zip(hi, ys)],
                     "arrayminus": [y - lo_ for y, lo_ in zip(ys, lo)], "thickness": 1.5, "width": 4},
            hovertemplate="B = %{x}: %{y:.1f} ms<extra></extra>"))
    fig.update_xaxes(type="log", tickvals=batches, ticktext=[str(b) for b in batches], title="batch size B (rows decoded together)")
    values = [times * r[key] * 1e3 for _, key, times, *_ in series for r in rows]
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000) if min(values) / 2 <= t <= max(values) * 2]
    fig.update_yaxes(type="log", title="milliseconds (median; bars: min to max)", tickvals=ticks,
                     ticktext=[str(t) for t in ticks])
    styled(fig, f"What a step costs as the batch grows<br><sup>{html.escape(label)}</sup>")
    fig.update_layout(height=470, legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0.0},
                      margin={"t": 90, "b": 130})
    return fig


def batch_speedup_figure(predicted: Sequence[Mapping[str, Any]], measured: Sequence[Mapping[str, Any]],
                         label: str = "") -> go.Figure:
    """Speculation's speedup against batch size: the cost model's prediction (`predicted` rows
    {"batch", "value", "lo", "hi"}: the band is the interval of the tokens a round yields) and
    batched runs (`measured` rows {"batch", "value", "lo", "hi", "predicted"}: their spread over
    repeats, and the model's prediction for the same prompt). Below 1, speculation costs time.
    `label` is trusted HTML (a `<br>` breaks a long sample description)."""
    fig = go.Figure()
    xs = [r["batch"] for r in predicted]
    fig.add_trace(go.Scatter(x=xs + xs[::-1], y=[r["hi"] for r in predicted] + [r["lo"] for r in predicted][::-1],
                             mode="lines", fill="toself", fillcolor="rgba(0,114,178,0.15)", line={"width": 0}, hoverinfo="skip",
                             name="prediction's interval (tokens per round, over prompts)"))
    fig.add_trace(go.Scatter(x=xs, y=[r["value"] for r in predicted], mode="lines+markers",
                             line={"color": COLORS["bonus"], "width": 3}, marker={"size": 8},
                             name="cost model (05) with the forwards measured at B",
                             hovertemplate="B = %{x}: %{y:.2f}×<extra></extra>"))
    mx = [r["batch"] for r in measured]
    fig.add_trace(go.Scatter(
        x=mx, y=[r["value"] for r in measured], mode="markers", name="measured: batched runs of one prompt",
        marker={"color": COLORS["rejected"], "symbol": "diamond", "size": 11},
        error_y={"type": "data", "symmetric": False, "array": [r["hi"] - r["value"] for r in measured],
                 "arrayminus": [r["value"] - r["lo"] for r in measured], "thickness": 1.5, "width": 5},
        hovertemplate="B = %{x}: %{y:.2f}× measured<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=mx, y=[r["predicted"] for r in measured], mode="markers", name="the model's prediction for that prompt",
        marker={"color": COLORS["rejected"], "symbol": "diamond-open", "size": 13, "line": {"width": 2}},
        hovertemplate="B = %{x}: %{y:.2f}× predicted<extra></extra>"))
    fig.add_hline(y=1, line={"color": INK, "dash": "dot", "width": 1}, annotation_text="break-even",
                  annotation_position="bottom left")
    fig.update_xaxes(type="log", tickvals=xs, ticktext=[str(b) for b in xs], title="batch size B (rows decoded together)")
    fig.update_yaxes(title="speedup over plain decoding (×)")
    styled(fig, f"Speculation against batch size<br><sup>{label}</sup>")
    fig.update_layout(height=500, legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0.0},
                      margin={"t": 120, "b": 150})
    return fig


# -- 10_chat_and_thinking ---------------------------------------------------------------------------


def segment_stat(traces: Sequence[Trace], segment: str, key: str = "acceptance") -> float:
    """`metrics.by_segment(traces)[segment][key]`, NaN where the segment never occurs (a bootstrap
    resample may leave it out)."""
    return metrics.by_segment(traces).get(segment, {}).get(key, float("nan"))


def segment_figure(groups: Mapping[str, Sequence[Trace]], label: str = "", key: str = "acceptance",
                   title: str | None = None) -> go.Figure:
    """Acceptance (or tau) per segment of chat replies, thought / answer / template, for one or more
    groups of chat traces (`10_chat_and_thinking`), with 90 % bootstrap intervals over prompts."""
    from labkit.chat import SEGMENTS

    fig = go.Figure()
    for i, (name, traces) in enumerate(groups.items()):
        found = metrics.by_segment(traces)
        segs = [s for s in SEGMENTS if s in found]
        estimates = [metrics.interval(lambda ts, s=s: segment_stat(ts, s, key), traces, n_boot=300) for s in segs]
        judged = sum(found[s]["judged"] for s in segs)
        fig.add_trace(go.Bar(
            x=segs, y=[e.value for e in estimates], error_y=_error_y(estimates),
            name=f"{name} ({len(traces)} prompts, {judged} drafts judged)",
            marker_color=SERIES[i % len(SERIES)] if len(groups) > 1 else COLORS["accepted"],
            # the value at the foot of the bar, clear of its whisker; the legend names the sample even for one group
            text=[f"{e.value:.2f}" for e in estimates], textposition="inside", insidetextanchor="start",
            textfont={"color": "white"}, showlegend=True,
            hovertemplate="%{x}: %{y:.2f}<extra>" + html.escape(name) + "</extra>"))
    what = {"acceptance": "acceptance α (accepted / judged)", "tau": "tokens per target forward (tau)"}[key]
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="segment of the reply (the position a draft was made for)")
    fig.update_yaxes(title=what, range=[0, 1.1] if key == "acceptance" else None, rangemode="tozero")
    default = f"{what.split(' (')[0].capitalize()} by segment" + (f": {label}" if label else "")
    fig = styled(fig, title or default)
    fig.update_layout(legend={"orientation": "h", "y": -0.25, "yanchor": "top", "x": 0.0},
                      margin={"b": 110 + 22 * len(groups)}, height=440 + 22 * len(groups))
    return fig

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
from labkit.style import COLORS, LABELS, MARKERS, MEDIA_COLORS, token_kinds
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


# -- 00_tour -----------------------------------------------------------------------------------------


def tokens_figure(trace: Trace, width: int = 60, show_prompt: bool = False) -> go.Figure:
    """Every new token as a tile coloured by how it was produced (`00_tour`).

    Green: a draft the target accepted; blue: the target's own token (the bonus after an accepted
    prefix, or the correction of a rejected draft). Hover shows the round each token came from.
    """
    kinds = token_kinds(trace)
    rounds = [r.index for r in trace.rounds for _ in r.emitted]
    items = [(trace.prompt_text, "prompt", None)] if show_prompt and trace.prompt_text else []
    items += [(p, kind, rnd) for (p, kind), rnd in zip(kinds, rounds)]
    fig = go.Figure()
    x = line = 0
    shapes, xs, ys, texts, hovers = [], [], [], [], []
    for piece, kind, rnd in items:
        text = _show(piece)
        w = max(len(text), 1)
        if x + w > width and x > 0:
            x, line = 0, line + 1
        shapes.append({"type": "rect", "x0": x + 0.05, "x1": x + w - 0.05, "y0": -line - 0.42, "y1": -line + 0.42,
                           "fillcolor": COLORS[kind], "opacity": 0.35, "line": {"color": COLORS[kind], "width": 1}})
        xs.append(x + w / 2)
        ys.append(-line)
        texts.append(html.escape(text))
        where = "" if rnd is None else f"<br>round {rnd}"
        hovers.append(f"{html.escape(repr(piece))}<br>{LABELS[kind]}{where}")
        x += w
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="text", text=texts, hovertext=hovers, hoverinfo="text",
                             textfont={"family": "monospace", "size": 13}, showlegend=False))
    for kind in ("accepted", "bonus"):  # legend entries only
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{MARKERS[kind]} {LABELS[kind]}",
                                 marker={"symbol": "square", "size": 12, "color": COLORS[kind]}))
    fig.update_layout(shapes=shapes, height=120 + 26 * (line + 1))
    fig.update_xaxes(visible=False, range=[-0.5, width + 0.5])
    fig.update_yaxes(visible=False, range=[-line - 0.6, 0.6])
    n = len(trace.new_ids)
    return styled(fig, f"{n} tokens in {trace.target_forwards} target forwards ({trace.pair}, {trace.path})")


# -- 03_verify_and_accept ------------------------------------------------------------------------------


def round_status(r: Round) -> list[str]:
    """For each drafted position: "accepted", "rejected", or "unjudged" (after a rejection)."""
    return ["accepted" if j < r.accepted else "rejected" if j == r.accepted else "unjudged" for j in range(r.k)]


def round_figure(r: Round, decode: Callable[[int], str] | None = None) -> go.Figure:
    """One round: each drafted token with the drafter's q(x) and the target's p(x) (`03_verify_and_accept`).

    Bars are coloured by what happened to the draft; the target's own token closes the round.
    `decode` turns a token id into text (e.g. `tokenizer.decode([t])`); without it ids are shown.
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
    fig.update_layout(barmode="group", height=380)
    fig.update_yaxes(range=[0, 1.12], title="probability of the drafted token")
    verdict = f"{r.accepted} of {r.k} drafts accepted" if r.k else "prefill: the target's first token"
    return styled(fig, f"Round {r.index}: {verdict}")


# -- 04_acceptance ------------------------------------------------------------------------------------


def acceptance_figure(data: Traces, conditional: bool = False, theory: bool = True) -> go.Figure:
    """Acceptance rate at draft position 1, 2, ... for one or more groups of traces (`04_acceptance`).

    Unconditional: P(draft j accepted), which decays like alpha^j if every draft were an independent
    coin with the same alpha (dotted, `theory=True`). Conditional: P(draft j | drafts before it),
    the per-position alpha_j, which would be flat at alpha.
    """
    groups = _groups(data)
    fig = go.Figure()
    for i, (label, traces) in enumerate(groups.items()):
        rates = metrics.acceptance_by_position(traces, conditional=conditional)
        pos = list(range(1, len(rates) + 1))
        color = _series_color(i, len(groups))
        fig.add_trace(go.Bar(x=pos, y=rates, name=label, marker_color=color,
                             hovertemplate="position %{x}: %{y:.2f}<extra>" + label + "</extra>"))
        if theory and rates:
            a = metrics.alpha(traces)
            ys = [a] * len(pos) if conditional else [a**j for j in pos]
            fig.add_trace(go.Scatter(x=_centers(pos, i, len(groups)), y=ys, mode="lines+markers", name=f"{label}: theory, α = {a:.2f}",
                                     line={"color": color, "dash": "dot"}, marker={"size": 6}))
    kind = "P(draft j accepted | drafts before it accepted)" if conditional else "P(draft j accepted)"
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="draft position j", dtick=1)
    fig.update_yaxes(title=kind, range=[0, 1.05])
    return styled(fig, "Acceptance by draft position")


def tau_histogram(data: Traces, theory: bool = True) -> go.Figure:
    """How many drafts each round kept, 0 … k, per group; with the i.i.d. expectation (`04_acceptance`).

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
                                     name=f"{label}: i.i.d. theory, α = {a:.2f}",
                                     line={"color": color, "dash": "dot"}))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="drafts accepted in the round (tokens emitted = this + 1)", dtick=1)
    fig.update_yaxes(title="fraction of rounds")
    return styled(fig, "Accepted drafts per round")


def sweep_figure(rows: Sequence[Mapping[str, Any]], c: float | None = None) -> go.Figure:
    """Measured tau (and speedup, if rows have it) against k, with the closed forms (`04_acceptance`).

    rows: dicts with "k", "tau", "alpha" and optionally "per_round" (`metrics.tokens_per_round`),
    "speedup" and "label". The theory line uses each label's pooled alpha: (1 - alpha^(k+1)) /
    (1 - alpha), which predicts tokens per full round (tau pays for the prefill and the last,
    shorter rounds too); speedup(k) = tau / (k c + 1) when `c` (drafter step / target forward) is given.
    """
    has_speed = any("speedup" in r for r in rows)
    fig = make_subplots(rows=1, cols=2 if has_speed else 1, horizontal_spacing=0.12,
                        subplot_titles=("tokens per target forward (tau)", "wall-clock speedup")
                        if has_speed else None)
    labels = list(dict.fromkeys(str(r.get("label", "")) for r in rows))
    for i, label in enumerate(labels):
        sub = sorted((r for r in rows if str(r.get("label", "")) == label), key=lambda r: r["k"])
        pre = f"{label}: " if label else ""
        color = _series_color(i, len(labels))
        ks = [r["k"] for r in sub]
        a = sum(r["alpha"] for r in sub) / len(sub)
        dense = list(range(1, max(ks) + 1))
        fig.add_trace(go.Scatter(x=ks, y=[r["tau"] for r in sub], mode="markers", name=f"{pre}measured tau",
                                 marker={"color": color, "size": 10}), row=1, col=1)
        if any("per_round" in r for r in sub):
            fig.add_trace(go.Scatter(x=ks, y=[r.get("per_round") for r in sub], mode="markers",
                                     name=f"{pre}measured tokens per full round",
                                     marker={"color": color, "size": 10, "symbol": "circle-open"}), row=1, col=1)
        fig.add_trace(go.Scatter(x=dense, y=[metrics.expected_tau(a, k) for k in dense], mode="lines",
                                 name=f"{pre}(1 − α^(k+1)) / (1 − α), α = {a:.2f}",
                                 line={"color": color, "dash": "dot"}), row=1, col=1)
        if has_speed:
            fig.add_trace(go.Scatter(x=ks, y=[r.get("speedup") for r in sub], mode="markers",
                                     name=f"{pre}measured speedup", showlegend=False,
                                     marker={"color": color, "size": 10, "symbol": "diamond"}), row=1, col=2)
            if c is not None:
                fig.add_trace(go.Scatter(x=dense, y=[metrics.expected_speedup(a, k, c) for k in dense],
                                         mode="lines", name=f"{pre}tau / (k c + 1), c = {c:.2f}",
                                         line={"color": color, "dash": "dash"}), row=1, col=2)
    if has_speed:
        fig.add_hline(y=1.0, line={"color": INK, "width": 1}, row=1, col=2)
    fig.update_xaxes(title="k (drafts per round)", dtick=1)
    styled(fig, "Sweep over k: measured against the closed form")
    fig.update_layout(height=460, legend={"y": -0.22, "yanchor": "top"}, margin={"b": 110})
    return fig


# -- 05_speed_and_cost -------------------------------------------------------------------------------


def time_split_figure(data: Traces) -> go.Figure:
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
    return styled(fig, "Time split")


def cost_curve_figure(rows: Sequence[Mapping[str, Any]], relative: bool = True) -> go.Figure:
    """Forward time against the number of tokens in the forward, one line per model (`05_speed_and_cost`).

    rows: dicts with "n", "seconds" and optionally "label". relative=True divides by each line's
    time at n = 1: a flat line means the extra tokens were free.
    """
    labels = list(dict.fromkeys(str(r.get("label", "model")) for r in rows))
    fig = go.Figure()
    for i, label in enumerate(labels):
        sub = sorted((r for r in rows if str(r.get("label", "model")) == label), key=lambda r: r["n"])
        base = sub[0]["seconds"] if relative else 1.0
        ys = [r["seconds"] / base if relative else 1000 * r["seconds"] for r in sub]
        fig.add_trace(go.Scatter(x=[r["n"] for r in sub], y=ys, mode="lines+markers", name=label,
                                 line={"color": SERIES[i % len(SERIES)] if len(labels) > 1 else COLORS["bonus"]}))
    if relative:
        fig.add_hline(y=1.0, line={"color": INK, "width": 1, "dash": "dot"})
    fig.update_xaxes(title="tokens in one forward")
    fig.update_yaxes(title="time / time for 1 token" if relative else "milliseconds per forward")
    return styled(fig, "Cost of one forward pass")



# -- 06_multimodal -------------------------------------------------------------------------------


def kv_figure(segments: Sequence[tuple[str, int, int]], window: int | None = None) -> go.Figure:
    """What each position holds, and which of them the drafter's layers can attend (`06_multimodal`).

    segments: (kind, start, end) runs of "text", "image", "audio" or "generated" positions, as
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
    return styled(fig, "Where image and audio soft tokens sit, and what the drafter can attend")


def attention_figure(weights: Sequence[Any], segments: Sequence[tuple[str, int, int]],
                     layer_types: Sequence[str] | None = None) -> go.Figure:
    """Share of each drafter layer's attention on text / image / audio positions (`06_multimodal`).

    weights: one (positions,) attention vector per layer (`labkit.media.drafter_attention`);
    segments: (kind, start, end) runs as `labkit.media.segments` gives them.
    """
    names = [f"layer {i} ({(layer_types[i] if layer_types else '').split('_')[0]})".replace(" ()", "")
             for i in range(len(weights))]
    fig = go.Figure()
    for kind in ("text", "image", "audio"):
        shares = [float(sum(w[s:e].sum() for k, s, e in segments if k == kind and s < len(w))) for w in weights]
        if any(shares):
            fig.add_trace(go.Bar(y=names, x=shares, name=kind, orientation="h", marker_color=MEDIA_COLORS[kind],
                                 hovertemplate="%{x:.0%}<extra>" + kind + "</extra>"))
    fig.update_layout(barmode="stack", height=150 + 45 * len(weights))
    fig.update_xaxes(title="share of the drafter's attention", range=[0, 1], tickformat=".0%")
    fig.update_yaxes(autorange="reversed")
    return styled(fig, "Where the drafter looks for its first draft")


# -- 07_train_a_drafter ------------------------------------------------------------------------------


def distill_figure(history: Sequence[Mapping[str, Any]], smooth: int = 10) -> go.Figure:
    """A drafter's training: KL to the target (left) and argmax agreement per draft step (right),
    per step of `labkit.distill.fit`, as a running mean over `smooth` steps (batches are small)."""
    steps = [h["step"] for h in history]

    def mean(xs: Sequence[float]) -> list[float]:
        return [sum(xs[max(0, i - smooth + 1) : i + 1]) / len(xs[max(0, i - smooth + 1) : i + 1])
                for i in range(len(xs))]

    fig = make_subplots(rows=1, cols=2, subplot_titles=("KL(target ‖ drafter), nats", "agreement with the target"))
    fig.add_trace(go.Scatter(x=steps, y=mean([h["kl"] for h in history]), name="KL", mode="lines",
                             line={"color": COLORS["bonus"]}), row=1, col=1)  # blue: the target
    k = len(history[0]["agree"]) if history else 0
    for j in range(k):
        fig.add_trace(go.Scatter(x=steps, y=mean([h["agree"][j] for h in history]), mode="lines",
                                 name=f"draft step {j + 1}", line={"color": SERIES[j % len(SERIES)]}),
                      row=1, col=2)
    fig.update_xaxes(title="training step")
    fig.update_yaxes(range=[0, 1.0], row=1, col=2)
    fig.update_annotations(font={"color": INK})
    return styled(fig, f"Distilling a drafter (running mean over {smooth} steps)")

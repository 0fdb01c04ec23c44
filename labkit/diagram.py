"""The MTP drafter's data path for one round, as a figure with the shapes measured live (`02`).

`measure_round` runs one drafting round of a pair's assistant exactly as `glassbox.MTPDrafter`
does (`glassbox.draft_step`), with forward hooks on its submodules, and returns what flowed: the
shape at every stage, the target's shared K/V, the constant position id and the drafts. `round_figure` draws the path:
embedding ⊕ hidden → pre_projection → 4 layers whose queries attend into the target's K/V →
post_projection, fed back as the next step's hidden state, and the output head (the centroid head
on E2B/E4B-style assistants) whose argmax is the next step's token.

Left out: attention weights (`06_multimodal` shows them) and any layout engine: the boxes sit at
fixed places, so the figure is the same for every pair and only the measured labels change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import plotly.graph_objects as go
import torch

from labkit.architecture import assistant_summary, record_shapes
from labkit.glassbox import draft_step
from labkit.loading import Pair
from labkit.plots import INK, styled
from labkit.style import COLORS


@contextmanager
def _input_shape(module: torch.nn.Module) -> Iterator[list[tuple]]:
    """The shape of what `module` is called with, while the block runs (a forward pre-hook)."""
    shapes: list[tuple] = []
    hook = module.register_forward_pre_hook(lambda _module, args: shapes.append(tuple(args[0].shape)))
    try:
        yield shapes
    finally:
        hook.remove()


@torch.no_grad()
def measure_round(pair: Pair, prompt: str, k: int = 3) -> dict[str, Any]:
    """One greedy drafting round after `prompt` (and the target's own next token), with shapes.

    Returns {"steps": [per-step dict of shapes, position, token in, draft], "kv": {kind: (K, V)
    shapes}, "context": tokens seen, "summary": `assistant_summary`, "drafts": token ids}.
    """
    target, drafter, tok = pair.target, pair.drafter, getattr(pair.tokenizer, "tokenizer", pair.tokenizer)
    device = pair.device
    ids = tok(prompt, return_tensors="pt").input_ids.to(device)
    out = target(input_ids=ids, output_hidden_states=True, return_shared_kv_states=True, use_cache=True)
    context = ids[0].tolist() + [int(out.logits[0, -1].argmax())]  # the round starts after the target's token
    hidden, shared_kv = out.hidden_states[-1][:, -1:], out.shared_kv_states
    embed = target.get_input_embeddings()
    position = len(context) - 1  # constant for the whole round
    n_layers = drafter.config.get_text_config().num_hidden_layers
    head = "masked_embedding" if drafter.config.use_ordered_embeddings else "lm_head"
    watch = ["pre_projection", *[f"model.layers.{i}" for i in range(n_layers)], "model.layers.0.self_attn.q_proj",
             "post_projection", head]
    token, steps = context[-1], []
    for _ in range(k):
        # the step as glassbox.MTPDrafter takes it; hooks measure the embedding and the drafter's input
        with record_shapes(embed, [""]) as emb_log, record_shapes(drafter, watch) as log, \
                _input_shape(drafter.get_submodule("pre_projection")) as inputs:
            d = draft_step(drafter, embed, torch.tensor([[token]], device=device), hidden, shared_kv, position)
        shapes = dict(log)
        logits = d.logits[0, -1]
        draft = int(logits.argmax())
        steps.append({
            "position": position, "token_in": token, "token_in_text": tok.decode([token]),
            "embedding": emb_log[0][1], "hidden": tuple(hidden.shape), "input": inputs[0],
            "pre_projection": shapes["pre_projection"],
            "layers": [shapes[f"model.layers.{i}"] for i in range(n_layers)],
            "queries": shapes["model.layers.0.self_attn.q_proj"],
            "post_projection": shapes["post_projection"], "logits": tuple(d.logits.shape),
            "rows_scored": int((logits > logits.min()).sum()), "draft": draft, "draft_text": tok.decode([draft]),
        })
        token, hidden = draft, d.last_hidden_state  # post_projection output: the next step's "hidden state"
    return {
        "steps": steps,
        "kv": {kind.removesuffix("_attention"): (tuple(kk.shape), tuple(v.shape)) for kind, (kk, v) in shared_kv.items()},
        "heads": drafter.config.get_text_config().num_attention_heads,
        "context": len(context),
        "layer_types": [t.removesuffix("_attention") for t in drafter.config.get_text_config().layer_types],
        "summary": assistant_summary(target.config, drafter.config),
        "drafts": [s["draft"] for s in steps],
    }


def _shape(s: tuple) -> str:
    return "(" + ", ".join(f"{d:,}" for d in s) + ")"


def _box(fig: go.Figure, x0: float, y0: float, x1: float, y1: float, text: str, color: str,
         dash: str = "solid") -> None:
    fig.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line={"color": color, "width": 2, "dash": dash},
                  fillcolor=color, opacity=0.18, layer="below")
    fig.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line={"color": color, "width": 2, "dash": dash})
    fig.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2, text=text, showarrow=False, font={"size": 11})


def _arrow(fig: go.Figure, x0: float, y0: float, x1: float, y1: float, color: str = INK, dash: bool = False) -> None:
    if dash:
        fig.add_shape(type="line", x0=x0, y0=y0, x1=x1, y1=y1, line={"color": color, "width": 1.5, "dash": "dot"})
    fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", text="",
                       showarrow=True, arrowhead=2, arrowsize=1.2, arrowwidth=1.5,
                       arrowcolor=color if not dash else color)


def _path(fig: go.Figure, points: list[tuple[float, float]], color: str, label: str, label_at: tuple) -> None:
    d = "M " + " L ".join(f"{x} {y}" for x, y in points[:-1])
    fig.add_shape(type="path", path=d, line={"color": color, "width": 2})
    _arrow(fig, *points[-2], *points[-1], color)
    fig.add_annotation(x=label_at[0], y=label_at[1], text=label, showarrow=False, font={"size": 11, "color": color},
                       bgcolor="rgba(255,255,255,0)")


def round_figure(measured: dict[str, Any], label: str = "") -> go.Figure:
    """The drafter's data path for one round, labelled with the shapes `measure_round` measured."""
    s0 = measured["steps"][0]
    summary = measured["summary"]
    t_width, d_width = s0["hidden"][-1], s0["pre_projection"][-1]
    target_c, drafter_c, head_c = COLORS["bonus"], COLORS["accepted"], "#CC79A7"
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 120], y=[0, 70], mode="markers", marker={"opacity": 0}, hoverinfo="skip",
                             showlegend=False))
    _box(fig, 1, 49, 14, 61, f"target hidden state<br>{_shape(s0['hidden'])}", target_c)
    _box(fig, 1, 31, 14, 43, f"target embedding of<br>the last token<br>{_shape(s0['embedding'])}", target_c)
    _box(fig, 18, 40, 28, 52, f"⊕ concat<br>{_shape(s0['input'])}", INK)
    _arrow(fig, 14, 55, 18, 48)
    _arrow(fig, 14, 37, 18, 44)
    _box(fig, 32, 40, 44, 52, f"pre_projection<br>{t_width * 2:,} → {d_width:,}<br>{_shape(s0['pre_projection'])}",
         drafter_c)
    _arrow(fig, 28, 46, 32, 46)
    xs = [48, 60, 72, 84]
    for i, (x, kind) in enumerate(zip(xs, measured["layer_types"])):
        _box(fig, x, 40, x + 10, 52, f"layer {i}<br>{kind}<br>{_shape(s0['layers'][i])}", drafter_c)
        _arrow(fig, x - 4 if i else 44, 46, x, 46)
    _box(fig, 98, 40, 111, 52, f"post_projection<br>{d_width:,} → {t_width:,}<br>{_shape(s0['post_projection'])}",
         drafter_c)
    _arrow(fig, 94, 46, 98, 46)
    kv = measured["kv"]
    def kv_line(kind: str, kk: tuple, v: tuple) -> str:
        return f"{kind}: K, V {_shape(kk)}" if kk == v else f"{kind}: K {_shape(kk)}, V {_shape(v)}"

    kv_text = " · ".join(kv_line(kind, kk, v) for kind, (kk, v) in sorted(kv.items(), reverse=True))
    n_kv = next(iter(kv.values()))[0][2]
    heads = measured["heads"]
    _box(fig, 46, 13, 95, 31, f"the target's shared K/V of {n_kv} tokens (all but the last)<br>{kv_text}"
         "<br>(batch, KV heads, tokens, head dim), from the target's own forward"
         f"<br>queries {_shape(s0['queries'])} = {heads} heads × {s0['queries'][-1] // heads}; the drafter writes no K/V",
         target_c, dash="dash")
    for i, (x, kind) in enumerate(zip(xs, measured["layer_types"])):
        _arrow(fig, x + 5, 30, x + 5, 40, target_c, dash=True)
    fig.add_annotation(x=71, y=57, showarrow=False, font={"size": 11},
                       text=f"position id {s0['position']} at every step: constant within the round")
    if summary["centroid_head"]:
        head = (f"centroid head: {summary['num_centroids']:,} clusters,<br>top {summary['centroids_kept']} → "
                f"{s0['rows_scored']:,} of {summary['vocab_size']:,} rows<br>logits {_shape(s0['logits'])}")
    else:
        head = f"output head: every row scored<br>logits {_shape(s0['logits'])}"
    _box(fig, 98, 19, 119, 33, head, head_c)
    _arrow(fig, 94, 42, 104, 33, head_c)
    _box(fig, 98, 5, 119, 14, f"argmax → draft<br>{', '.join(repr(s['draft_text']) for s in measured['steps'])}",
         head_c)
    _arrow(fig, 108.5, 19, 108.5, 14, head_c)
    _path(fig, [(104.5, 52), (104.5, 66), (7.5, 66), (7.5, 61)], drafter_c,
          "post_projection's output is the next step's hidden state", (56, 68))
    _path(fig, [(108.5, 5), (108.5, 1.5), (-1.5, 1.5), (-1.5, 37), (1, 37)], head_c,
          "the draft is the next step's token", (30, 3.2))
    fig.update_xaxes(visible=False, range=[-3, 121])
    fig.update_yaxes(visible=False, range=[0, 70])
    k = len(measured["steps"])
    title = (f"One drafting round, k = {k}: shapes measured live ({label}, context of {measured['context']} tokens)"
             f"<br><sup>step 1 shown; every step has the same shapes, only the token and the hidden state change</sup>")
    styled(fig, title)
    # fixed size: the boxes' labels are sized for it (a narrower notebook scrolls instead of overlapping)
    fig.update_layout(width=1080, height=520, showlegend=False, margin={"l": 10, "r": 10, "t": 80, "b": 10})
    return fig

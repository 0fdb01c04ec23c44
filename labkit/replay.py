"""Replay traces at their measured pace: "watch it type" (`00_tour`).

Each token appears at the moment the run emitted it. Plain decoding emits one token at the end of
each round (one target forward per token); speculative decoding emits a round's accepted drafts
and the target's own token together, at the end of that round. The moments are the cumulative
round timings the trace recorded (`Round.seconds`, which add up to `Trace.wall`): nothing is
invented or smoothed.

The view is plain HTML: every token is a span with a CSS animation whose `animation-delay` is its
emission time, and a `<style>` block holds the `@keyframes`. It plays in JupyterLab, Colab and a
headless browser with no JavaScript and no kernel round-trip; rendering it again replays it.

Left out: streaming while the models run (the view plays back after both runs have finished).
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Mapping

from labkit.style import COLORS, LABELS, MARKERS, token_kinds
from labkit.trace import Trace

_renders = itertools.count()  # a fresh name per render, so views on one page never share keyframes


def emission_times(trace: Trace) -> list[float]:
    """Seconds after the start of generation at which each new token appeared, in output order."""
    times, clock = [], 0.0
    for r in trace.rounds:
        clock += r.seconds
        times += [clock] * len(r.emitted)
    return times


def _lane(trace: Trace, title: str, uid: str, slow: float, longest: float) -> str:
    times = emission_times(trace)
    total = sum(r.seconds for r in trace.rounds)
    spans = []
    for (piece, kind), t in zip(token_kinds(trace), times):
        c = COLORS[kind]
        text = html.escape(piece).replace("\n", "↵<br>")
        spans.append(
            f'<span class="lk-t" data-t="{t:.4f}" title="{LABELS[kind]}, at {t:.2f} s" '
            f'style="animation-delay:{t * slow:.4f}s;background:{c}33;border-bottom:2px solid {c};'
            f'border-radius:3px;padding:0 1px">{text}</span>'
        )
    width = 100 * total / longest if longest else 0
    done = (f'<span class="lk-t" style="animation-delay:{total * slow:.4f}s;white-space:nowrap">'
            f"  ✓ {len(times)} tokens in {total:.2f} s</span>")
    return (
        f'<div style="flex:1;min-width:260px">'
        f'<div style="font-weight:bold">{html.escape(title)}</div>'
        f'<div style="font-size:0.85em;opacity:0.8">{len(times)} tokens, {trace.target_forwards} target '
        f"forwards, {html.escape(trace.decoding)}</div>"
        f'<div style="height:6px;background:rgba(128,128,128,0.2);border-radius:3px;margin:4px 0">'
        f'<div class="lk-bar-{uid}" style="width:{width:.1f}%;height:6px;background:{COLORS["bonus"]};'
        f'border-radius:3px;animation-duration:{total * slow:.4f}s"></div></div>'
        f'<div style="font-family:ui-monospace,monospace;white-space:pre-wrap;line-height:1.7">'
        f'<span style="color:{COLORS["prompt"]}">{html.escape(trace.prompt_text)}</span>'
        + "".join(spans) + done + "</div></div>"
    )


def typing_html(lanes: Mapping[str, Trace], *, slow: float = 1.0, caption: str = "") -> str:
    """Side-by-side lanes (title → trace), each token appearing at its measured emission time.

    slow: play the measured times `slow` times slower (1 = real pace); the caption says so.
    """
    uid = f"{next(_renders)}"
    longest = max((sum(r.seconds for r in t.rounds) for t in lanes.values()), default=0.0)
    pace = "real, measured pace" if slow == 1 else f"{slow:g}× slower than measured"
    legend = " ".join(
        f'<span style="border-bottom:2px solid {COLORS[k]};background:{COLORS[k]}33;padding:0 4px">'
        f"{MARKERS[k]} {LABELS[k]}</span>" for k in ("accepted", "bonus"))
    style = (
        f"<style>@keyframes lk-in-{uid} {{ from {{ opacity: 0 }} to {{ opacity: 1 }} }}"
        f" @keyframes lk-grow-{uid} {{ from {{ width: 0 }} }}"
        f" .lk-type-{uid} .lk-t {{ animation: lk-in-{uid} 0.05s linear both; }}"
        f" .lk-bar-{uid} {{ animation-name: lk-grow-{uid}; animation-timing-function: linear; }}</style>"
    )
    body = "".join(_lane(t, title, uid, slow, longest) for title, t in lanes.items())
    return (
        f'{style}<div class="lk-type-{uid} labkit-typing">'
        f'<div style="font-size:0.9em;margin-bottom:4px">{html.escape(caption)}{" · " if caption else ""}'
        f"played at {pace} · {legend}</div>"
        f'<div style="display:flex;gap:24px;flex-wrap:wrap">{body}</div></div>'
    )

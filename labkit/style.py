"""One colour scheme for accepted / rejected / bonus tokens: plots, widgets and the terminal.

Colours are from the Okabe–Ito palette, which stays distinguishable with the common forms of
colour blindness, and each kind also has a text marker so colour is never the only cue.
Introduced in `00_tour`.
"""

from __future__ import annotations

import html

from labkit.trace import Trace

COLORS = {
    "accepted": "#009E73",  # bluish green: a drafted token the target kept
    "rejected": "#D55E00",  # vermillion: a drafted token the target turned down
    "bonus": "#0072B2",  # blue: the target's own token (correction or bonus)
    "prompt": "#999999",  # grey: the prompt
}
# What a position of a multimodal sequence holds (`06_multimodal`): the prompt's text stays grey,
# soft tokens take three Okabe-Ito colours not used above, generated text is the target's blue.
MEDIA_COLORS = {"text": "#999999", "image": "#CC79A7", "audio": "#E69F00", "video": "#56B4E9",
                "generated": "#0072B2"}
MARKERS = {"accepted": "✓", "rejected": "✗", "bonus": "★", "prompt": ""}
LABELS = {
    "accepted": "accepted draft",
    "rejected": "rejected draft",
    "bonus": "target token (bonus or correction)",
    "prompt": "prompt",
}


def token_kinds(trace: Trace) -> list[tuple[str, str]]:
    """(piece, kind) for every new token, kind "accepted" or "bonus", in output order."""
    pieces = trace.pieces or tuple(str(t) for t in trace.new_ids)
    kinds = []
    for r in trace.rounds:
        kinds += ["accepted"] * min(r.accepted, len(r.emitted))
        kinds += ["bonus"] * (len(r.emitted) - r.accepted)
    return list(zip(pieces, kinds))


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))


def ansi(trace: Trace, color: bool = True) -> str:
    """The generated text for a terminal: accepted drafts green, target tokens blue (24-bit)."""
    out = []
    for piece, kind in token_kinds(trace):
        if not color:
            out.append(piece)
            continue
        r, g, b = _rgb(COLORS[kind])
        out.append(f"\x1b[38;2;{r};{g};{b}m{piece}\x1b[0m")
    return "".join(out)


def legend_ansi() -> str:
    parts = []
    for kind in ("accepted", "bonus"):
        r, g, b = _rgb(COLORS[kind])
        parts.append(f"\x1b[38;2;{r};{g};{b}m{MARKERS[kind]} {LABELS[kind]}\x1b[0m")
    return "   ".join(parts)


def token_html(trace: Trace, show_prompt: bool = True) -> str:
    """The text as HTML: every token a chip coloured by how it was produced, with a tooltip.

    Background tints with a coloured underline keep it readable in light and dark themes.
    """
    chips = []
    if show_prompt and trace.prompt_text:
        chips.append(f'<span style="color:{COLORS["prompt"]}">{html.escape(trace.prompt_text)}</span>')
    for piece, kind in token_kinds(trace):
        c = COLORS[kind]
        text = html.escape(piece).replace("\n", "↵<br>")
        chips.append(
            f'<span title="{LABELS[kind]}" style="background:{c}33;border-bottom:2px solid {c};'
            f'border-radius:3px;padding:0 1px;margin:0 0.5px">{text}</span>'
        )
    legend = " ".join(
        f'<span style="border-bottom:2px solid {COLORS[k]};background:{COLORS[k]}33;padding:0 4px">'
        f"{MARKERS[k]} {LABELS[k]}</span>"
        for k in ("accepted", "bonus")
    )
    return (
        '<div style="font-family:ui-monospace,monospace;white-space:pre-wrap;line-height:1.7">'
        + "".join(chips)
        + f'</div><div style="font-size:0.85em;margin-top:4px">{legend}</div>'
    )


# What part of a chat reply a token is (`10_chat_and_thinking`, labkit.chat.segments): Okabe-Ito
# colours apart from accepted/rejected/bonus, and a line style each, so colour is not the only cue.
SEGMENT_STYLES = {
    "thought": ("#E69F00", "dashed"), "answer": ("#56B4E9", "solid"), "template": ("#999999", "dotted"),
    "tool_call": ("#CC79A7", "double"), "tool_response": ("#F0E442", "double"),
}


def segment_html(pieces: list[str], labels: list[str] | tuple[str, ...], ids: list[int] | None = None) -> str:
    """Tokens as chips underlined by segment (thought dashed, answer solid, template dotted), each
    with its segment (and id) in the tooltip, then a legend of the segments present."""
    chips = []
    for n, (piece, label) in enumerate(zip(pieces, labels)):
        color, line = SEGMENT_STYLES.get(label, ("#999999", "solid"))
        text = html.escape(piece).replace("\n", "↵<br>") or "∅"
        tip = label + (f" · id {ids[n]}" if ids is not None else "")
        chips.append(f'<span title="{tip}" style="background:{color}26;border-bottom:3px {line} {color};'
                     f'border-radius:3px;padding:0 1px;margin:0 1px">{text}</span>')
    legend = " ".join(
        f'<span style="border-bottom:3px {SEGMENT_STYLES[s][1]} {SEGMENT_STYLES[s][0]};'
        f'background:{SEGMENT_STYLES[s][0]}26;padding:0 4px">{s}</span>'
        for s in SEGMENT_STYLES if s in labels)
    return ('<div style="font-family:ui-monospace,monospace;white-space:pre-wrap;line-height:1.9">'
            + "".join(chips) + f'</div><div style="font-size:0.85em;margin-top:4px">{legend}</div>')


def media_strip_html(pieces: list[str], segments: list[tuple[str, int, int]],
                     thumbnails: list[str] | None = None) -> str:
    """A multimodal prompt as a token strip (`06_multimodal`): text tokens as grey chips, each run of
    soft tokens as one block in its modality's colour saying how many it holds, with a picture of
    what it stands for when `thumbnails` (image URLs, one per run, in order) are given.

    pieces: the prompt's token text by position; segments: (kind, start, end) runs as
    `labkit.media.segments` gives them."""
    chips, run = [], 0
    for kind, start, end in segments:
        if kind in ("text", "generated"):
            for piece in pieces[start:end]:
                text = html.escape(piece).replace("\n", "↵") or "∅"
                chips.append(f'<span style="color:{COLORS["prompt"]};border:1px solid {COLORS["prompt"]}55;'
                             f'border-radius:3px;padding:0 2px;margin:1px">{text}</span>')
            continue
        color = MEDIA_COLORS.get(kind, COLORS["prompt"])
        thumb = (f'<img src="{thumbnails[run]}" style="height:34px;vertical-align:middle;margin-right:4px">'
                 if thumbnails and run < len(thumbnails) else "")
        chips.append(f'<span title="positions {start}–{end - 1}" style="display:inline-block;background:{color}33;'
                     f'border:2px solid {color};border-radius:4px;padding:1px 6px;margin:1px;vertical-align:middle">'
                     f'{thumb}{end - start} × {html.escape(pieces[start])}</span>')
        run += 1
    legend = " ".join(f'<span style="border:2px solid {MEDIA_COLORS[k]};background:{MEDIA_COLORS[k]}33;'
                      f'padding:0 4px">{k} soft tokens</span>'
                      for k in ("image", "audio", "video") if any(s[0] == k for s in segments))
    return ('<div style="font-family:ui-monospace,monospace;line-height:2.2">' + "".join(chips)
            + f'</div><div style="font-size:0.85em;margin-top:4px">{legend}</div>')

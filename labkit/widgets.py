"""Widgets for poking at speculative decoding: step through rounds, sweep k, try a pair.

Built only from ipywidgets APIs that exist in both 7.7 (Colab) and 8 (JupyterLab, VS Code):
`HTML`, `Output`, `Button`, `IntSlider`, `FloatSlider`, `Combobox`, `Dropdown`, `Textarea`,
`FileUpload` (whose value changed shape between them: `_uploaded` reads both), `VBox`/`HBox`,
`observe` and `on_click`. Panels are plain HTML (which renders everywhere, and which a browser
test can read); figures are ordinary plotly figures shown in an `Output` (by `show_in`), because
`go.FigureWidget` needs anywidget on plotly 6+ and a widget manager Colab does not ship.

Each widget is a small class with a `.widget` (the box to display) and `_ipython_display_` (from
`Shown`), so a notebook cell can end with the object itself; in the book it shows a static copy. Widgets read traces, never models; the ones that
generate take a `run` function, which tests replace with a fake.

Left out: streaming tokens while they are generated (TourPanel replays them afterwards, at their
measured pace: `labkit.replay`), and saving widget state in the notebook (the book shows a static
copy instead: `labkit.book`).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import ipywidgets as widgets
from IPython import get_ipython
from IPython.display import display

from labkit import book, media, metrics, plots, synthetic
from labkit.chat import is_conversation, user_text, with_user_text
from labkit.errors import BadInputError, LabkitError
from labkit.experiments import Timed, speedup_of, time_paths
from labkit.generation import run
from labkit.loading import Pair
from labkit.paths import MEDIA_DIR
from labkit.replay import typing_html
from labkit.style import COLORS, LABELS, MARKERS, token_html
from labkit.trace import Decoding, Round, Trace


class Shown:
    """Base of every widget here: a notebook cell can end with the object. Executed for the build
    (`labkit.book`, LABKIT_BOOK=1) it shows the live widget and its static state in one output."""

    widget: widgets.Widget

    def _ipython_display_(self) -> None:
        if book.in_book():
            display(book.widget_bundle(self.widget, type(self).__name__), raw=True)
        else:
            display(self.widget)


def piece_decoder(trace: Trace, tokenizer: Any = None) -> Callable[[int], str]:
    """Token id → text: the tokenizer if given, else the trace's own pieces, else "#id"."""
    if tokenizer is not None:
        tok = getattr(tokenizer, "tokenizer", tokenizer)
        return lambda t: tok.decode([t])
    known = dict(zip(trace.new_ids, trace.pieces))
    return lambda t: known.get(t, f"#{t}")


def _chip(text: str, kind: str, title: str = "") -> str:
    c = COLORS.get(kind, COLORS["prompt"])
    shown = html.escape(text.replace("\n", "↵")) or "∅"
    return (f'<span title="{html.escape(title)}" style="background:{c}33;border-bottom:2px solid {c};'
            f'border-radius:3px;padding:0 3px;font-family:ui-monospace,monospace">{shown}</span>')


def _bar(value: float, color: str) -> str:
    width = max(0.0, min(1.0, value)) * 100
    return (f'<div style="width:120px;height:10px;background:rgba(128,128,128,0.2);border-radius:2px">'
            f'<div style="width:{width:.1f}%;height:10px;background:{color};border-radius:2px"></div></div>')


def round_html(trace: Trace, index: int, decode: Callable[[int], str]) -> str:
    """One round as HTML: context, then each draft with q, p and the verdict, then the bonus."""
    r: Round = trace.rounds[index]
    before = "".join(decode(t) for rr in trace.rounds[:index] for t in rr.emitted)
    context = (trace.prompt_text + before)[-80:]
    if trace.greedy:
        rule = "greedy: keep a draft while it equals the target's top token"
    elif trace.path == "transformers" and trace.lossless:  # argmax drafts, verified as point masses
        rule = (f"sampling (T = {trace.temperature:g}), argmax drafts verified as point masses: keep draft x "
                "with probability p(x) (min(1, p/q) with q all on x)")
    elif trace.path == "transformers":
        rule = (f"sampling (T = {trace.temperature:g}), transformers' as-shipped MTP path: keeps x with "
                "probability min(1, p(x) / q(x)) for a q it did not draft from (biased; 03)")
    else:
        rule = f"sampling (T = {trace.temperature:g}), drafts sampled from q: keep draft x with probability min(1, p(x) / q(x))"
    head = (f"<b>Round {r.index} of {len(trace.rounds) - 1}</b> · position {r.position} · "
            + (f"{r.k} drafted, {r.accepted} accepted" if r.k else "prefill: no drafts, the target's first token"))
    rows = []
    for j, (t, q, p) in enumerate(zip(r.drafted, r.draft_probs, r.target_probs)):
        kind = "accepted" if j < r.accepted else "rejected" if j == r.accepted else "unjudged"
        verdict = {"accepted": f"{MARKERS['accepted']} accepted", "rejected": f"{MARKERS['rejected']} rejected",
                   "unjudged": "· never judged (after a rejection)"}[kind]
        if trace.greedy:
            why = f"target's top: {_chip(decode(r.target_top[j]), 'bonus')}"
        else:
            why = f"min(1, p/q) = {min(1.0, p / q) if q > 0 else 1.0:.2f}"
        color = COLORS.get(kind, COLORS["prompt"])
        rows.append(
            f"<tr><td>{j + 1}</td><td>{_chip(decode(t), kind)}</td>"
            f"<td>{_bar(q, color)}</td><td>{q:.3f}</td><td>{_bar(p, color)}</td><td>{p:.3f}</td>"
            f"<td>{why}</td><td style='color:{color}'>{verdict}</td></tr>"
        )
    table = ""
    if rows:
        table = ("<table style='border-collapse:separate;border-spacing:8px 3px'>"
                 "<tr><th>#</th><th>draft</th><th colspan=2>drafter q(x)</th><th colspan=2>target p(x)</th>"
                 "<th></th><th></th></tr>" + "".join(rows) + "</table>")
    bonus = (f"<div>{MARKERS['bonus']} {LABELS['bonus']}: {_chip(decode(r.bonus), 'bonus')}</div>"
             if r.bonus is not None else "<div>no target token: generation ended here</div>")
    emitted = "".join(_chip(decode(t), "accepted" if i < r.accepted else "bonus") for i, t in enumerate(r.emitted))
    return (
        f"<div style='line-height:1.8'>{head}<br><span style='opacity:0.75'>{html.escape(rule)}</span>"
        f"<div style='font-family:ui-monospace,monospace;color:{COLORS['prompt']}'>…{html.escape(context)}</div>"
        f"{table}{bonus}<div>this round adds {len(r.emitted)} token(s): {emitted}</div></div>"
    )


class RoundStepper(Shown):
    """Step through a trace one round at a time (`03_verify_and_accept`)."""

    def __init__(self, trace: Trace, tokenizer: Any = None):
        self.trace = trace
        self.decode = piece_decoder(trace, tokenizer)
        self.index = 1 if len(trace.rounds) > 1 else 0  # the first round with drafts
        self.panel = widgets.HTML()
        self.panel.add_class("labkit-round-panel")
        buttons = [widgets.Button(description=d) for d in ("Previous", "Next round", "Reset")]
        for button, action in zip(buttons, (self.previous, self.next, self.reset)):
            button.on_click(lambda _, act=action: act())
        self.next_button = buttons[1]
        self.widget = widgets.VBox([widgets.HBox(buttons), self.panel])
        self._render()

    def _render(self) -> None:
        self.panel.value = round_html(self.trace, self.index, self.decode)

    def next(self) -> None:
        """The next round; after the last one, back to the prefill."""
        self.index = (self.index + 1) % len(self.trace.rounds)
        self._render()

    def previous(self) -> None:
        self.index = (self.index - 1) % len(self.trace.rounds)
        self._render()

    def reset(self) -> None:
        self.index = 1 if len(self.trace.rounds) > 1 else 0
        self._render()


RunFn = Callable[[int, float], Sequence[Trace]]  # (k, temperature) → traces


class SweepExplorer(Shown):
    """Sliders for k and temperature; acceptance and tau update as they move (`04_acceptance`).

    `run(k, temperature)` produces the traces for one setting; results are cached, so moving back
    to a setting is instant. `run` is any function of (k, temperature) that returns traces: a
    notebook's own measurement (`04_acceptance`), or saved traces looked up.
    """

    def __init__(self, run: RunFn, *, ks: Sequence[int] = range(1, 9), k: int = 4,
                 temperature: float = 0.0, label: str = "",
                 known: Mapping[tuple[int, float], Sequence[Trace]] | None = None):
        self.run, self.label = run, label
        # (k, temperature) → traces; `known` seeds it with traces the notebook already measured
        self.cache = {(int(k), round(float(t), 2)): list(v) for (k, t), v in (known or {}).items()}
        self.k = widgets.IntSlider(description="k", value=k, min=min(ks), max=max(ks), continuous_update=False)
        self.temperature = widgets.FloatSlider(description="temperature", value=temperature, min=0.0, max=1.5,
                                               step=0.1, continuous_update=False)
        self.summary = widgets.HTML()
        self.summary.add_class("labkit-sweep-summary")
        self.out = widgets.Output()
        self.widget = widgets.VBox([widgets.HBox([self.k, self.temperature]), self.summary, self.out])
        self.k.observe(self._update, names="value")
        self.temperature.observe(self._update, names="value")
        self._update()

    def traces(self, k: int, temperature: float) -> list[Trace]:
        key = (int(k), round(float(temperature), 2))
        if key not in self.cache:
            self.cache[key] = list(self.run(*key))
        return self.cache[key]

    def rows(self, temperature: float) -> list[dict[str, Any]]:
        """One row per k already measured at this temperature, for `plots.sweep_figure`."""
        t = round(float(temperature), 2)
        return [{"k": k, "tau": metrics.tau(tr), "alpha": metrics.alpha(tr)}
                for (k, temp), tr in sorted(self.cache.items()) if temp == t]

    def _update(self, change: Any = None) -> None:
        k, t = self.k.value, self.temperature.value
        self.summary.value = f"measuring k = {k}, temperature = {t:g} …"
        try:
            traces = self.traces(k, t)
        except LabkitError as err:
            self.summary.value = f"<b>Could not run:</b> {html.escape(str(err))}"
            return
        s = metrics.summarize(traces)
        acc = " · ".join(f"{a:.2f}" for a in s.acceptance)
        self.summary.value = (
            f"<b>k = {k}, temperature = {t:g}</b> ({html.escape(self.label) or 'measured now'}): "
            f"tau = <b>{s.tau:.2f}</b> tokens per target forward; α = {s.alpha:.2f}, so the closed form "
            f"(1 − α<sup>k+1</sup>) / (1 − α) predicts {metrics.expected_tau(s.alpha, k):.2f}. "
            f"Acceptance by position: {acc or '–'}."
        )
        self.figures = [plots.acceptance_figure({f"k = {k}, T = {t:g}": traces}),
                        plots.sweep_figure(self.rows(t))]
        show_in(self.out, *self.figures)  # not `with self.out: display(...)`: see show_in


TourRunFn = Callable[[str, str, Decoding], tuple[str, Any, Any]]
# (pair box text, prompt, settings) → (that pair's label, plain, speculative): each an
# `experiments.Timed` (repeats, its median run's trace) or a bare trace (one run)


def _timed(result: Any) -> Any:
    """A `Timed` from what a runner returned: a `Timed` as it is, a bare trace as one run."""
    return result if isinstance(result, Timed) else Timed.once(result)


class TourPanel(Shown):
    """Pick a pair, k and a temperature, type any prompt, press Run: plain and speculative decoding
    of it, then both replayed side by side at their measured pace ("watch it type", `00_tour`).

    `run(pair, prompt, settings)` decodes the prompt both ways with the pair the box names
    ("pocket" or a Hugging Face id of a Gemma 4 target) and returns that pair's label with the two
    traces; `generation.tour_runner(pair)` builds it, loading another pair when the box names one.
    `pair` is the text the box starts at, the name of the pair `run` starts with. If a pair's
    weights cannot be reached, labkit's error message is shown instead of a traceback.
    `prompt` may be chat messages (a list of {"role", "content"}, `10_chat_and_thinking`): the box
    then holds the last user turn, and `run` gets the messages with that turn as edited.
    """

    PAIRS = ("pocket", "pocket-chat", "google/gemma-4-E2B-it", "google/gemma-4-E4B-it")
    PACES = (("real pace", 1.0), ("4× slower", 4.0), ("10× slower", 10.0))

    def __init__(self, run: TourRunFn, prompt: str | list[dict[str, Any]] = "", *, pair: str = "pocket",
                 k: int = 4, temperature: float = 0.0, max_new_tokens: int = 32):
        self.run, self.max_new_tokens = run, max_new_tokens
        self.conversation = prompt if is_conversation(prompt) else None  # the turns around the box's text
        self.ran, self.label = pair, ""  # the pair of the last run: another name in the box loads first
        self.traces: dict[str, Trace] = {}
        self.pair_box = widgets.Combobox(value=pair, options=list(self.PAIRS), description="pair",
                                         ensure_option=False)
        self.k = widgets.IntSlider(description="k", value=k, min=1, max=8, continuous_update=False)
        self.temperature = widgets.FloatSlider(description="temperature", value=temperature, min=0.0, max=1.5,
                                               step=0.1, continuous_update=False,
                                               style={"description_width": "initial"})
        self.pace = widgets.Dropdown(description="replay", options=list(self.PACES), value=1.0)
        self.prompt = widgets.Textarea(value=user_text(prompt), description="message" if self.conversation else "prompt",
                                       placeholder="type any prompt",
                                       layout=widgets.Layout(width="90%", height="4em"))
        self.button = widgets.Button(description="Run", button_style="primary")
        self.button.on_click(lambda _: self.go())
        self.replay_button = widgets.Button(description="Replay", disabled=True)
        self.replay_button.on_click(lambda _: self.replay())
        self.result = widgets.HTML()
        self.result.add_class("labkit-tour-result")
        self.typing = widgets.HTML()
        self.typing.add_class("labkit-tour-typing")
        self.widget = widgets.VBox([
            widgets.HBox([self.pair_box, self.k, self.temperature]), self.prompt,
            widgets.HBox([self.button, self.replay_button, self.pace]), self.result, self.typing])

    def go(self) -> None:
        """Run plain and speculative decoding on the prompt, report, and play both back."""
        k, temperature = self.k.value, round(self.temperature.value, 2)
        wanted = self.pair_box.value.strip() or "pocket"
        if wanted != self.ran:  # the last replay stays up while the new pair loads
            self.result.value = f"loading {html.escape(wanted)} …"
        else:
            self.result.value, self.typing.value = "running …", ""
        try:
            settings = Decoding(k=k, max_new_tokens=self.max_new_tokens, temperature=temperature)
            prompt = with_user_text(self.conversation, self.prompt.value)
            label, plain_timed, spec_timed = self.run(wanted, prompt, settings)
        except LabkitError as err:
            self.result.value = f"<div style='color:{COLORS['rejected']}'><b>{type(err).__name__}:</b> {html.escape(str(err))}</div>"
            self.replay_button.disabled = True
            return

        plain_timed, spec_timed = _timed(plain_timed), _timed(spec_timed)
        plain, spec = plain_timed.trace, spec_timed.trace  # the median runs: what the replay plays
        self.ran, self.label = wanted, label
        self.traces = {"plain decoding: the target alone": plain, f"speculative decoding, k = {k}": spec}
        speedup = speedup_of(plain_timed, spec_timed)
        if spec.greedy:
            same = "same text as the target alone: <b>" + ("yes" if plain.new_ids == spec.new_ids else "NO") + "</b>"
        else:
            same = ("sampled: each run is one draw from the target's distribution (the speculative path is "
                    "lossless), so the two texts differ by chance")
        self.result.value = (
            f"<div>{html.escape(label)}, {html.escape(spec.decoding)}, k = {k}, "
            f"{len(spec.new_ids)} new tokens: {same} · tau = <b>{metrics.tau(spec):.2f}</b> tokens per target "
            f"forward ({spec.target_forwards} forwards instead of {plain.target_forwards}) · speedup = "
            f"<b>{speedup.value:.2f}×</b> (after a warm-up, {speedup.how}; plain {plain_timed}, speculative "
            f"{spec_timed}; one prompt)</div>"
        )
        self.replay_button.disabled = False
        self.replay()

    def replay(self) -> None:
        """Play the last runs again (a new rendering restarts the CSS animations)."""
        if self.traces:
            self.typing.value = typing_html(self.traces, slow=self.pace.value,
                                            caption=f"watch it type · {self.label}")


RaceRunFn = Callable[[Any, str, int], Trace]  # (text or messages, method, k) → that method's trace


class DrafterRace(Shown):
    """Paste any text, pick which drafting methods and which k to try, press Race: each runs on the
    text and a table says which wins on this machine (`08_choosing_a_drafter`).

    `run(text, method, k)` returns the trace of `method` ("none" for the target alone) at k, all
    on one decoding path; `bench.race_runner(pair, draft_model)` builds it. `examples` fill the
    text box from a menu ({name: text, or chat messages whose last user turn the box holds}).
    Every entrant runs once to warm up, then `repeats` times,
    interleaved with the others (`experiments.time_paths`); the table shows median speedups with
    their range. One prompt, so the table says "on this text, now", not which method is better
    in general (the chapter's intervals do that).
    """

    def __init__(self, run: RaceRunFn, methods: Sequence[str], *, examples: Mapping[str, str] | None = None,
                 ks: Sequence[int] = (2, 4, 6), label: str = "", repeats: int = 3):
        self.run, self.label, self.repeats = run, label, repeats
        self.conversation: list[dict[str, Any]] | None = None  # the picked example's turns, if it is a chat
        self.example = widgets.Dropdown(description="example", options=["(your own text)", *(examples or {})],
                                        style={"description_width": "initial"})
        self.examples = dict(examples or {})
        self.example.observe(self._pick, names="value")
        self.text = widgets.Textarea(description="text", placeholder="paste any text to continue",
                                     layout=widgets.Layout(width="90%", height="7em"))
        self.methods = widgets.SelectMultiple(description="methods", options=[m for m in methods if m != "none"],
                                              value=[m for m in methods if m != "none"], rows=3)
        self.ks = widgets.SelectMultiple(description="k", options=[1, 2, 3, 4, 5, 6, 8], value=tuple(ks), rows=3)
        self.button = widgets.Button(description="Race", button_style="primary")
        self.button.on_click(lambda _: self.go())
        self.result = widgets.HTML()
        self.result.add_class("labkit-race-result")
        self.widget = widgets.VBox([self.example, self.text, widgets.HBox([self.methods, self.ks]),
                                    self.button, self.result])

    def _pick(self, change: dict) -> None:
        example = self.examples.get(change["new"])
        self.conversation = example if is_conversation(example) else None
        if example is not None:
            self.text.value = user_text(example)

    def go(self) -> None:
        """Run the target alone and every chosen method at every chosen k; show the table."""
        if not self.methods.value or not self.ks.value:
            self.result.value = "pick at least one method and one k"
            return

        self.result.value = "racing …"
        text = with_user_text(self.conversation, self.text.value)
        entrants = {("none", 1): lambda: self.run(text, "none", 1)}
        entrants.update({(m, k): (lambda m=m, k=k: self.run(text, m, k))
                         for m in self.methods.value for k in sorted(self.ks.value)})
        try:
            timed = time_paths(entrants, repeats=self.repeats)
        except LabkitError as err:
            self.result.value = f"<div style='color:{COLORS['rejected']}'><b>{type(err).__name__}:</b> {html.escape(str(err))}</div>"
            return
        alone = timed.pop(("none", 1))
        rows = [(m, k, t, speedup_of(alone, t)) for (m, k), t in timed.items()]
        best = max(rows, key=lambda r: r[3].value)
        bold = " style='font-weight:bold'"
        cells = "".join(
            f"<tr{bold if (m, k) == best[:2] else ''}><td>{html.escape(m)}</td><td>{k}</td>"
            f"<td>{metrics.tau(t.trace):.2f}</td><td>{s.value:.2f}×</td><td>{s.lo:.2f}–{s.hi:.2f}</td>"
            f"<td>{'yes' if t.trace.new_ids == alone.trace.new_ids else 'NO'}</td></tr>" for m, k, t, s in rows)
        runs = "one run each" if self.repeats == 1 else f"each warmed up, then {self.repeats} interleaved runs"
        self.result.value = (
            f"<div>{html.escape(self.label)}, {len(alone.trace.new_ids)} new tokens, {runs}; the target alone "
            f"took {alone}. Fastest here: <b>{html.escape(best[0])}, k = {best[1]}</b>.</div>"
            "<table><tr><th>method</th><th>k</th><th>tau</th><th>speedup</th><th>range</th><th>same text</th></tr>"
            f"{cells}</table>")


def _uploaded(upload: Any) -> tuple[str, bytes] | None:
    """(name, bytes) of the last file in a FileUpload: a dict in ipywidgets 7, a tuple in 8."""
    value = upload.value
    if not value:
        return None
    if isinstance(value, Mapping):  # 7.x: {name: {"metadata": ..., "content": bytes}}
        name, item = list(value.items())[-1]
        return name, bytes(item["content"])
    item = value[-1]  # 8.x: ({"name", "type", "size", "content": memoryview, ...}, ...)
    return item["name"], bytes(item["content"])


MediaRunFn = Callable[..., tuple[Trace, Trace]]
# (question, picture, sound, settings, frames=None) → (plain trace, speculative trace)


def media_runner(pair: Pair, repeats: int = 3) -> Callable[..., tuple[Any, Any]]:
    """The `run` of `widgets.MediaPanel` (`06_multimodal`): (question, picture, sound, settings,
    frames=None) → (plain decoding timed, speculative decoding timed), each an `experiments.Timed`
    whose `.trace` is its median run, of `pair` answering one chat turn that holds the picture
    and/or the sound (16 kHz samples), or the video's frames, before the question. Both paths are
    warmed up, then run `repeats` times each, interleaved (`experiments.time_paths`)."""
    def run_both(question: str, image: Any, audio: Any, settings: Decoding, frames: Any = None) -> tuple[Any, Any]:
        inputs = media.media_inputs(pair, question, image=image, audio=audio, video=frames,
                                    sampling_rate=media.SAMPLE_RATE)
        ids = inputs.pop("input_ids")
        inputs.pop("attention_mask", None)
        kw = {**asdict(settings), **inputs}
        timed = time_paths({"plain": lambda: run(pair, ids, path="plain", **kw),
                            "speculative": lambda: run(pair, ids, path="transformers", **kw)}, repeats=repeats)
        return timed["plain"], timed["speculative"]

    return run_both


class MediaPanel(Shown):
    """Pick a picture (a scene or a page of text) and/or a sound, or a clip, and a question, press
    Run: the pocket multimodal pair answers with and without its drafter (`06_multimodal`).

    Inputs: the shipped samples (data/media), a new random scene, page, beep sequence or clip
    (held-out seeds, never trained on), or your own file (a clip as an animated GIF). The preview
    shows the picture, an audio player or the clip's frames with their timestamps; the result shows
    both answers, whether they are the same, tau and the speedup, the truth where it is known, and
    labkit's message instead of a traceback for a file that cannot be used.

    `run(question, picture, sound, settings, frames=None)` answers with and without the drafter
    (picture a PIL image, sound 16 kHz samples, frames a list of PIL images; any may be None) and
    returns the plain and the speculative trace; `media_runner(pair)` (here, beside it) builds it.
    `label` names the pair; `soft_token_ids` maps "image", "audio" and "video" to the target's
    placeholder token ids (`media.soft_token_ids(config)`), which the panel counts in the traces' prompts.
    """

    NONE, RANDOM, UPLOAD = "(none)", "a new random one", "your upload"
    RANDOM_PAGE = "a new random page"

    def __init__(self, run: MediaRunFn, *, label: str = "",
                 soft_token_ids: Mapping[str, int | None] | None = None, k: int = 4,
                 max_new_tokens: int = 20):
        import json

        self.run, self.label, self.k, self.max_new_tokens = run, label, k, max_new_tokens
        self.soft_token_ids = dict(soft_token_ids or {})
        self._fresh = 0  # how many random samples were drawn: each press gives a new one
        rows = json.loads((MEDIA_DIR / "samples.json").read_text())
        self.samples = {r["file"]: r for r in rows}
        images = [r["file"] for r in rows if r["modality"] in ("image", "document")]
        sounds = [r["file"] for r in rows if r["modality"] == "audio"]
        clips = [r["file"] for r in rows if r["modality"] == "clip"]
        self.image = widgets.Dropdown(options=images + [self.RANDOM, self.RANDOM_PAGE, self.UPLOAD, self.NONE],
                                      value=images[0] if images else self.NONE, description="picture")
        self.sound = widgets.Dropdown(options=sounds + [self.RANDOM, self.UPLOAD, self.NONE],
                                      value=self.NONE, description="sound")
        self.clip = widgets.Dropdown(options=clips + [self.RANDOM, self.UPLOAD, self.NONE],
                                     value=self.NONE, description="clip")
        self.image_upload = widgets.FileUpload(accept="image/*", multiple=False, description="picture")
        self.sound_upload = widgets.FileUpload(accept="audio/*", multiple=False, description="sound")
        self.clip_upload = widgets.FileUpload(accept="image/gif,image/webp", multiple=False, description="clip")
        for box, upload in ((self.image, self.image_upload), (self.sound, self.sound_upload),
                            (self.clip, self.clip_upload)):
            upload.observe(lambda _, box=box: setattr(box, "value", self.UPLOAD), names="value")
        questions = (synthetic.IMAGE_QUESTIONS + synthetic.AUDIO_QUESTIONS + synthetic.CLIP_QUESTIONS
                     + (synthetic.DOCUMENT_QUESTIONS[1],)
                     + tuple(synthetic.DOCUMENT_QUESTIONS[0].format(n=n) for n in range(1, synthetic.PAGE_LINES[1] + 1))
                     + synthetic.TABLE_QUESTIONS)
        self.question = widgets.Combobox(value=synthetic.IMAGE_QUESTIONS[0], ensure_option=False,
                                         options=list(questions), description="question",
                                         layout=widgets.Layout(width="420px"))
        self.button = widgets.Button(description="Run", button_style="primary")
        self.button.on_click(lambda _: self.go())
        self.preview, self.result = widgets.HTML(), widgets.HTML()
        self.result.add_class("labkit-media-result")
        self.widget = widgets.VBox([
            widgets.HBox([self.image, self.image_upload]), widgets.HBox([self.sound, self.sound_upload]),
            widgets.HBox([self.clip, self.clip_upload]),
            widgets.HBox([self.question, self.button]), self.preview, self.result])

    def _pick(self, choice: str, upload: Any, modality: str) -> tuple[Any, str, Any]:
        """(source for labkit.media, a caption for the preview, the truth or None)."""
        if choice == self.NONE:
            return None, "", None
        if choice == self.UPLOAD:
            got = _uploaded(upload)
            if got is None:
                what = {"image": "picture", "audio": "sound", "clip": "clip (animated GIF)"}[modality]
                raise BadInputError(f"choose a {what} file with the upload button first")
            return got[1], got[0], None
        if choice in (self.RANDOM, self.RANDOM_PAGE):
            self._fresh += 1
            family = "document" if choice == self.RANDOM_PAGE else modality
            ex = synthetic.example(synthetic.HELD_OUT + 900_000 + self._fresh, family)
            return ex.item, f"random {'page' if family == 'document' else family} #{self._fresh}", ex.truth
        row = self.samples[choice]
        return MEDIA_DIR / choice, choice, _Known(row["answers"])

    def go(self) -> None:
        """Build the chat, run plain and speculative decoding, show both answers."""
        import numpy as np

        try:
            image, image_name, image_truth = self._pick(self.image.value, self.image_upload, "image")
            sound, sound_name, sound_truth = self._pick(self.sound.value, self.sound_upload, "audio")
            clip, clip_name, clip_truth = self._pick(self.clip.value, self.clip_upload, "clip")
            if image is None and sound is None and clip is None:
                raise BadInputError("pick a picture, a sound or a clip")
            if clip is not None and (image is not None or sound is not None):
                raise BadInputError("a clip goes alone: set picture and sound to (none), or the clip to (none)")
            picture = media.load_image(image) if image is not None else None
            wave = media.load_audio(sound, media.SAMPLE_RATE if isinstance(sound, np.ndarray) else None) \
                if sound is not None else None
            frames = media.load_video(clip) if clip is not None else None
            parts = []
            if picture is not None:
                parts.append(media.image_html(picture, image_name))
            if wave is not None:  # with its length: a sub-second clip's player reads "0:00 / 0:00"
                parts.append(media.audio_html(wave, sound_name, media.SAMPLE_RATE))
            if frames is not None:  # the frames as the target reads them: each after its timestamp
                parts += [media.image_html(f, t, width=84) for f, t in zip(frames, media.timestamps(len(frames)))]
                parts.append(f"<div style='margin:0 0 1.2em 6px'>{html.escape(clip_name)}: {len(frames)} frames</div>")
            self.preview.value = f'<div style="display:flex;align-items:flex-end;flex-wrap:wrap">{"".join(parts)}</div>'
            self.result.value = "running …"
            settings = Decoding(k=self.k, max_new_tokens=self.max_new_tokens)
            if frames is None:
                plain_timed, spec_timed = self.run(self.question.value, picture, wave, settings)
            else:
                plain_timed, spec_timed = self.run(self.question.value, None, None, settings, frames=frames)
        except LabkitError as err:
            self.result.value = (f"<div style='color:{COLORS['rejected']}'><b>{type(err).__name__}:</b> "
                                 f"{html.escape(str(err))}</div>")
            return
        known = [t.answer(self.question.value) for t in (image_truth, sound_truth, clip_truth) if t is not None]
        expected = next((a for a in known if a is not None), None)

        plain_timed, spec_timed = _timed(plain_timed), _timed(spec_timed)
        plain, spec = plain_timed.trace, spec_timed.trace  # the median runs
        answer = media.answer(plain)
        verdict = "" if expected is None else (
            f" · truth: <i>{html.escape(expected)}</i> ({'right' if answer == expected else 'wrong'})")
        speedup = speedup_of(plain_timed, spec_timed)
        ids = plain.prompt_ids  # the chat turn as the target read it, soft tokens included
        spans = {m: media.token_runs(ids, t) for m, t in self.soft_token_ids.items()}
        counts = ", ".join(f"{sum(e - s for s, e in v)} {m}" for m, v in spans.items() if v)
        self.result.value = (
            f"<div>{html.escape(self.label)}, k = {self.k}: answer <b>{html.escape(answer)}</b>"
            f"{verdict}</div>"
            f"<div>prompt: {len(ids)} tokens ({counts} soft tokens) · same text with the drafter: "
            f"<b>{'yes' if plain.new_ids == spec.new_ids else 'NO'}</b> · tau = <b>{metrics.tau(spec):.2f}</b>"
            f" · speedup = <b>{speedup.value:.2f}×</b> (after a warm-up, {speedup.how}; plain {plain_timed}, speculative "
            f"{spec_timed}; this one question)</div>"
            + token_html(media.without_end(spec), show_prompt=False)
        )


class _Known:
    """The answers samples.json gives for a shipped sample, shaped like a Scene or Beeps."""

    def __init__(self, answers: Mapping[str, str]):
        self.answers = answers

    def answer(self, question: str) -> str | None:
        return self.answers.get(question)


def _u_line(accept: float, u: float) -> str:
    """The unit interval: the keep zone [0, min(1, p/q)) in green, the rest vermillion, u as a tick."""
    a, x = max(0.0, min(1.0, accept)) * 100, max(0.0, min(1.0, u)) * 100
    return (f"<div style='position:relative;width:220px;height:14px;border-radius:2px;"
            f"background:linear-gradient(90deg,{COLORS['accepted']}99 {a:.1f}%,{COLORS['rejected']}55 {a:.1f}%)'>"
            f"<div title='u' style='position:absolute;left:calc({x:.1f}% - 1px);top:-4px;width:3px;height:22px;"
            "background:currentColor'></div></div>")


def sampled_step_html(rnd: Any, step: int, decode: Callable[[int], str], label: str = "") -> str:
    """One step of a `glassbox.SampledRound` as HTML: drafts 1 … step judged; at step
    len(rnd.drafts) also where the round's last token came from and what the round emits."""
    n = len(rnd.drafts)
    done = step >= n
    context = "".join(decode(t) for t in rnd.context)[-80:]
    head = (f"<b>Round {rnd.index} · draft {min(step + 1, n)} of {n} judged</b> ({rnd.k} drafted)"
            if not done else f"<b>Round {rnd.index} · outcome</b>: {rnd.accepted} of {rnd.k} drafts kept")
    rows = []
    for j, d in enumerate(rnd.drafts[: step + 1]):
        kind = "accepted" if d.kept else "rejected"
        sign = "&lt;" if d.kept else "≥"
        verdict = (f"{MARKERS[kind]} u = {d.u:.3f} {sign} {d.accept:.3f}: "
                   + ("kept" if d.kept else "rejected, resample from the residual"))
        rows.append(
            f"<tr style='{'font-weight:bold' if j == step else ''}'><td>{j + 1}</td><td>{_chip(decode(d.token), kind)}</td>"
            f"<td>{d.q:.3f}</td><td>{d.p:.3f}</td><td>{d.accept:.3f}</td><td>{_u_line(d.accept, d.u)}</td>"
            f"<td style='color:{COLORS[kind]}'>{verdict}</td></tr>")
    table = ("<table style='border-collapse:separate;border-spacing:8px 3px'><tr><th>#</th><th>draft x</th>"
             "<th>q(x)</th><th>p(x)</th><th>min(1, p/q)</th><th>u against it (keep zone green)</th><th></th></tr>"
             + "".join(rows) + "</table>")
    tail = ""
    if done:
        if rnd.rejected:
            source = ("draft rejected: the round's last token is drawn from the residual "
                      "norm(max(0, p − q)), the mass the drafter under-proposed")
        else:
            source = "every draft kept: the bonus token is drawn from the target's p after the last draft"
        most = max((m for *_, m in rnd.top), default=1.0) or 1.0  # bars relative to the top token
        bars = "".join(
            f"<tr><td>{_chip(decode(t), 'bonus' if t == rnd.token else 'prompt')}</td><td>{_bar(m / most, COLORS['bonus'])}</td>"
            f"<td>{m:.3f}</td><td style='opacity:0.75'>p {p:.3f}" + (f" · q {q:.3f}" if rnd.rejected else "")
            + f"</td><td>{'← drawn' if t == rnd.token else ''}</td></tr>"
            for t, p, q, m in rnd.top)
        emitted = "".join(_chip(decode(t), "accepted" if i < rnd.accepted else "bonus")
                          for i, t in enumerate(rnd.emitted))
        tail = (f"<div>{html.escape(source)} (top tokens):</div>"
                f"<table style='border-collapse:separate;border-spacing:8px 1px'>{bars}</table>"
                f"<div>this round emits {len(rnd.emitted)} token(s): {emitted}</div>")
    return (f"<div style='line-height:1.8'>{head}"
            + (f" <span style='opacity:0.75'>· {html.escape(label)}</span>" if label else "")
            + f"<div style='font-family:ui-monospace,monospace;color:{COLORS['prompt']}'>…{html.escape(context)}</div>"
            + table + tail + "</div>")


class SampledRoundStepper(Shown):
    """Step through sampled rounds draft by draft: q(x), p(x), min(1, p/q), the draw u, and on a
    rejection the residual the token is resampled from (`03_verify_and_accept`).

    Reads `glassbox.SampledRound` records (`glassbox.sampled_rounds` makes them), never a model.
    """

    def __init__(self, rounds: Sequence[Any], tokenizer: Any = None, label: str = ""):
        if not rounds:
            raise BadInputError("no sampled rounds to step through: record some with glassbox.sampled_rounds")
        self.rounds, self.label = list(rounds), label
        tok = getattr(tokenizer, "tokenizer", tokenizer)
        self.decode = (lambda t: tok.decode([t])) if tok is not None else (lambda t: f"#{t}")
        # every (round, step): one step per judged draft, then the outcome
        self.steps = [(i, s) for i, r in enumerate(self.rounds) for s in range(len(r.drafts) + 1)]
        self.index = 0
        self.panel = widgets.HTML()
        self.panel.add_class("labkit-sampled-panel")
        # not "Next round": that name is RoundStepper's, which the browser test clicks
        buttons = [widgets.Button(description=d) for d in ("Previous", "Next draft", "Skip round", "Reset")]
        for button, action in zip(buttons, (self.previous, self.next, self.next_round, self.reset)):
            button.on_click(lambda _, act=action: act())
        self.next_button = buttons[1]
        self.widget = widgets.VBox([widgets.HBox(buttons), self.panel])
        self._render()

    def _render(self) -> None:
        i, s = self.steps[self.index]
        self.panel.value = sampled_step_html(self.rounds[i], s, self.decode, self.label)

    def next(self) -> None:
        """The next draft (or the round's outcome); after the last round, back to the first."""
        self.index = (self.index + 1) % len(self.steps)
        self._render()

    def previous(self) -> None:
        self.index = (self.index - 1) % len(self.steps)
        self._render()

    def next_round(self) -> None:
        """The first draft of the next round."""
        i = self.steps[self.index][0]
        self.index = self.steps.index(((i + 1) % len(self.rounds), 0))
        self._render()

    def reset(self) -> None:
        self.index = 0
        self._render()


def show_in(out: widgets.Output, *objs: Any) -> None:
    """Show `objs` in an Output widget, replacing what it showed (SweepExplorer, `04_acceptance`).

    Writes the widget's `outputs` with the bundles `display(obj)` would publish; every front end
    renders those (JupyterLab, Colab, exported HTML). It does not capture with `with out:`: inside
    a running cell a capture makes nbclient (`jupyter nbconvert --execute`, papermill, the test
    suite) answer each captured output on the kernel's shell socket while it waits for the cell's
    reply on that socket, which can leave the reply unread until the cell timeout (forever without
    one). Without IPython (a script, a unit test) there is nothing to draw on and it does nothing.
    """
    from IPython.utils.capture import capture_output

    if get_ipython() is None:
        return
    with capture_output(stdout=False, stderr=False) as captured:
        for obj in objs:
            display(obj)
    out.outputs = tuple({"output_type": "display_data", "data": o.data, "metadata": o.metadata}
                        for o in captured.outputs)


class CostCalculator(Shown):
    """Sliders for α, k, c, v and the loop's work o: the cost model's speedup, no model needed
    (`05_speed_and_cost`).

    Units are one target forward over one token. A round yields (1 − α^(k+1)) / (1 − α) tokens and
    costs k·c + v + o; plain decoding costs 1 + o per token. Start it from a fitted
    `experiments.CostModel` with `CostCalculator.from_costs(costs, alpha)` to begin at this machine.
    """

    def __init__(self, *, alpha: float = 0.7, k: int = 4, c: float = 0.1, v: float = 1.1, o: float = 0.0,
                 label: str = ""):
        self.label = label
        slider = dict(continuous_update=False, style={"description_width": "initial"})
        self.alpha = widgets.FloatSlider(description="α (acceptance)", value=alpha, min=0.0, max=0.99, step=0.01,
                                         **slider)
        self.k = widgets.IntSlider(description="k (drafts per round)", value=k, min=1, max=12, **slider)
        self.c = widgets.FloatSlider(description="c (drafter step)", value=c, min=0.0, max=1.0, step=0.01, **slider)
        self.v = widgets.FloatSlider(description="v (verify k + 1)", value=v, min=1.0, max=4.0, step=0.05, **slider)
        self.o = widgets.FloatSlider(description="o (loop per step)", value=o, min=0.0, max=1.0, step=0.01,
                                     **slider)
        self.summary = widgets.HTML()
        self.summary.add_class("labkit-cost-summary")
        self.out = widgets.Output()
        self.widget = widgets.VBox([widgets.HBox([self.alpha, self.k, self.c]), widgets.HBox([self.v, self.o]),
                                    self.summary, self.out])
        for s in (self.alpha, self.k, self.c, self.v, self.o):
            s.observe(self._update, names="value")
        self._update()

    @classmethod
    def from_costs(cls, costs: Any, alpha: float, k: int = 4, label: str = "") -> CostCalculator:
        """Start at a fitted `experiments.CostModel`'s c, v(k + 1) and loop work, and a measured α."""
        return cls(alpha=round(alpha, 2), k=k, c=round(costs.c, 2), v=round(max(1.0, costs.v(k + 1)), 2),
                   o=round(costs.loop_plain / costs.t_target, 2), label=label)

    @staticmethod
    def speedup(alpha: float, k: int, c: float, v: float, o: float) -> float:
        return metrics.expected_tau(alpha, k) * (1 + o) / (k * c + v + o)

    def _update(self, change: Any = None) -> None:
        a, k, c, v, o = self.alpha.value, self.k.value, self.c.value, self.v.value, self.o.value
        tokens, cost = metrics.expected_tau(a, k), k * c + v + o
        s = self.speedup(a, k, c, v, o)
        verdict = "faster" if s > 1 else "slower" if s < 1 else "the same speed"
        best = max(range(1, 13), key=lambda kk: self.speedup(a, kk, c, v, o))
        self.summary.value = (
            f"A round yields <b>{tokens:.2f}</b> tokens and costs k·c + v + o = <b>{cost:.2f}</b> one-token "
            f"forwards; plain decoding pays 1 + o = {1 + o:.2f} per token. Speedup "
            f"{tokens:.2f} × {1 + o:.2f} / {cost:.2f} = <b>{s:.2f}×</b>: speculation comes out {verdict}. "
            f"Best k for these α, c, v, o: {best}."
            + (f" <i>Started from: {html.escape(self.label)}.</i>" if self.label else ""))
        ks = list(range(1, 13))
        fig = plots.styled(plots.go.Figure(), f"Cost model: speedup against k (α = {a:.2f}, c = {c:.2f}, "
                                              f"v = {v:.2f}, o = {o:.2f})")
        fig.add_trace(plots.go.Scatter(x=ks, y=[self.speedup(a, kk, c, v, o) for kk in ks], mode="lines+markers",
                                       name="predicted speedup", line={"color": COLORS["accepted"]}))
        fig.add_trace(plots.go.Scatter(x=[k], y=[s], mode="markers", name=f"k = {k}",
                                       marker={"color": COLORS["bonus"], "size": 14, "symbol": "diamond"}))
        fig.add_hline(y=1.0, line={"color": plots.INK, "width": 1, "dash": "dot"})
        fig.update_xaxes(title="k (drafts per round)", dtick=1)
        fig.update_yaxes(title="speedup (×)", rangemode="tozero")
        fig.update_layout(height=360, legend={"y": -0.25, "yanchor": "top"}, margin={"b": 90})
        self.figure = fig
        show_in(self.out, fig)

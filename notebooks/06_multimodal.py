# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Multimodal: pictures, sounds, clips and pages go to the target; the drafter still only drafts text
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/06_multimodal.ipynb)
#
# **Goal.** Give a Gemma 4 target a picture, a sound, a video clip or a page of text, and see
# speculative decoding work exactly as with text: the target's vision and audio towers turn the
# input into *soft tokens* in its prefill, the MTP drafter never sees a pixel or a sample, yet it
# drafts the answer by attending to the target's K/V, where the soft tokens sit. We check that the
# answer with the drafter is the target's own, token for token, and measure acceptance per
# modality and per question, down to the lesson of reading: when the answer is text written in
# the picture, how much of it can the drafter draft?
#
# Offline, this runs on the **pocket multimodal pair**: a small `Gemma4ForConditionalGeneration`
# trained in this repo on things you can check by eye and by ear: pictures of coloured shapes and
# sequences of beeps, short clips of a shape moving, and pages of words, numbers and small tables
# (`labkit.synthetic` draws them all; how often it answers right on samples it never saw is measured
# near the end). Whatever the target says, right or wrong, the drafter must reproduce it exactly,
# and we measure how much of it the drafter drafts. A real E2B/E4B pair, which reads photos, video
# and scanned documents, is one argument away (end of the notebook).

# %% tags=["live"]
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %% tags=["live"]
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # the pair labkit.load_pair() loads (LABKIT_PAIR=..., if set, wins)

# %% tags=["live"]
import json
from pathlib import Path

import torch
from IPython.display import HTML, display

from labkit import experiments, media, metrics, plots, synthetic, widgets

# The pocket multimodal pair runs offline; a real pair: labkit.load_pair("google/gemma-4-E4B-it")
pair = labkit.load_pair("pocket-multimodal")
tag = pair.label
pair

# %% [markdown]
# ## The samples
#
# The lab ships four pictures, four pages (two of them tables), four sounds and four clips, drawn by `labkit.synthetic`
# from seeds the model never saw in training, with the answers they should get
# (`data/media/samples.json`). The sounds are short: a browser's player counts whole seconds (a
# 0.4 s sound reads "0:00"), so each one's length is written under it. A clip is a list of frames,
# a frame a second (shipped as animated GIFs); its frames are shown side by side.

# %%
samples = json.loads((media.MEDIA_DIR / "samples.json").read_text())
pictures = [s for s in samples if s["modality"] == "image"]
pages = [s for s in samples if s["modality"] == "document"]
sounds = [s for s in samples if s["modality"] == "audio"]
clips = [s for s in samples if s["modality"] == "clip"]
display(HTML("<div style='display:flex;flex-wrap:wrap'>" + "".join(
    media.image_html(media.MEDIA_DIR / s["file"], s["answers"]["Describe the picture."], width=140)
    for s in pictures) + "".join(
    media.image_html(media.MEDIA_DIR / s["file"], f"{s['file']}: " + (
        f"boxed '{s['answers'][synthetic.DOCUMENT_QUESTIONS[1]]}'" if synthetic.DOCUMENT_QUESTIONS[1] in s["answers"]
        else "a table"), width=140) for s in pages) + "</div>"))
display(HTML("<div style='display:flex;flex-wrap:wrap'>" + "".join(
    media.audio_html(media.MEDIA_DIR / s["file"], f"{s['file']}: {s['answers']['Describe the sound.']}")
    for s in sounds) + "</div>"))
for s in clips[:2]:  # two of the four: each frame under its timestamp
    frames = media.load_video(media.MEDIA_DIR / s["file"])
    display(HTML(f"<div>{s['file']}: " + " · ".join(s["answers"].values()) + "</div><div style='display:flex'>"
                 + "".join(media.image_html(f, t, width=90) for f, t in zip(frames, media.timestamps(len(frames))))
                 + "</div>"))

# %% [markdown]
# ## From a chat to soft tokens
#
# The chat template puts one placeholder per picture or sound into the user's turn. The processor
# then expands each placeholder to a run of soft tokens: `<|image>`, 64 × `<|image|>`, `<image|>`
# for a picture (at the smallest of Gemma 4's image budgets, 70 tokens: 16-pixel patches pooled
# 3 × 3), and `<|audio>`, one `<|audio|>` per 40 ms, `<audio|>` for a sound. Below, the prompt as a
# token strip: text tokens in grey, the picture's 64 soft tokens as one block.

# %%
question = "Describe the picture."
chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
print(pair.processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))

inputs = media.media_inputs(pair, question, image=media.MEDIA_DIR / pictures[0]["file"])
ids = inputs.pop("input_ids")
inputs.pop("attention_mask")
print({name: tuple(value.shape) for name, value in inputs.items()})  # what the vision tower reads
print(f"{ids.shape[1]} prompt tokens; soft-token runs:", media.soft_token_spans(ids, pair.target.config))
pieces = [pair.tokenizer.decode([t]) for t in ids[0].tolist()]
display(HTML(labkit.style.media_strip_html(pieces, media.segments(ids, pair.target.config),
                                           [media.image_url(media.MEDIA_DIR / pictures[0]["file"])])))

# %% [markdown]
# ## With and without the drafter
#
# `labkit.run` takes the extra inputs (`pixel_values`, …) and hands them to the target's prefill
# only. The drafter joins from the first drafting round on. The target ends its answer with the
# end-of-turn token `<turn|>`; `media.answer` shows the answer without it (the token is still
# generated and counted).

# %%
# Both paths run once untimed (first calls pay one-off costs), then three times each, taking turns.
timed = experiments.time_paths({
    "plain": lambda: labkit.run(pair, ids, path="plain", max_new_tokens=20, **inputs),
    "speculative": lambda: labkit.run(pair, ids, path="transformers", k=4, max_new_tokens=20, **inputs)})
plain, spec = timed["plain"].trace, timed["speculative"].trace  # each path's median run
speedup = experiments.speedup_of(timed["plain"], timed["speculative"])
print("target alone:    ", repr(media.answer(plain)))
print("with the drafter:", repr(media.answer(spec)))
print(f"same tokens: {plain.new_ids == spec.new_ids} · tau = {metrics.tau(spec):.2f} · "
      f"{spec.target_forwards} target forwards instead of {plain.target_forwards}")
print(f"speedup {speedup}   ({tag}, {spec.decoding}, k = 4, one prompt, measured now)")
display(HTML(labkit.style.token_html(media.without_end(spec), show_prompt=False)))

# %% [markdown]
# ## What the drafter attends to
#
# The drafter has no K/V of its own: every one of its layers reads the target's cache, the full
# layer from the target's last full-attention layer, the sliding layers from its last sliding one.
# Those caches hold a row for every position, soft tokens included, so that is how the picture
# reaches the drafter. The target computes them in the prefill:

# %%
with torch.no_grad():
    out = pair.target(input_ids=ids, **inputs, use_cache=False, return_shared_kv_states=True)
for layer_type, (keys, values) in out.shared_kv_states.items():
    print(f"{layer_type:18s} K {tuple(keys.shape)}  V {tuple(values.shape)}   (batch, kv heads, positions, head dim)")

# %% [markdown]
# The sliding layers only look back `sliding_window` positions. On a long prompt the soft tokens
# fall out of their window, and only the drafter's one full-attention layer still sees them:

# %%
window = pair.drafter.config.get_text_config().sliding_window
plots.kv_figure(media.segments(ids, pair.target.config, generated=len(spec.new_ids)), window=window)

# %% [markdown]
# Does the drafter actually use those rows? Its attention weights say so. One drafting step for
# the first answer token, with the weights kept: the share of each drafter layer's attention that
# lands on the picture's soft tokens, against the text around them, and under each layer the
# positions it reads most (measured on this prompt):

# %%
weights = media.drafter_attention(pair, ids, **inputs)
drafter_config = pair.drafter.config.get_text_config()
pieces = [pair.tokenizer.decode([t]) for t in ids[0].tolist()]
print(f"drafter: {drafter_config.num_attention_heads} attention head(s) per layer; "
      "share of each layer's attention on its 3 most-read positions: "
      + ", ".join(f"{float(w.topk(3).values.sum()):.0%}" for w in weights))
plots.attention_figure(weights, media.segments(ids, pair.target.config), drafter_config.layer_types,
                       pieces=pieces, label=f"{tag}, {pictures[0]['file']}, '{question}', first draft step")

# %% [markdown]
# Each bar is (almost) all one colour: a layer reads the picture *or* the text, rarely both. That
# is what this drafter does, not a broken figure. The pocket drafter has a single attention head
# per layer (printed above; the real E2B/E4B assistants have four), so nothing averages the bars
# out, and a small trained drafter attends sharply: the printed shares say how much of each
# layer's attention lands on its three most-read positions, named under its bar. Layers that read
# image soft tokens pick some patches, not the whole picture. Layers that read text often settle
# on `<bos>` or a turn marker, positions that carry
# little about this prompt: an *attention sink*, where a layer parks its attention when it has
# nothing to fetch at that step. Averaged over the heads of a real assistant, the bars would mix.

# %% [markdown]
# ## A clip: frames as soft tokens
#
# Gemma 4 reads a video as its frames: each frame is a picture for the vision tower (64 soft
# tokens here), written after its timestamp `mm:ss`, all in the one user turn. Gemma 4's video
# processor lays this out and needs torchvision; without it, `media.frame_inputs` builds the same
# layout from the frames with the image processor (the test suite checks the two texts agree). So
# a clip of six frames is six pictures' worth of prompt. The token strip shows the prompt as the
# target reads it, each frame's soft tokens one block:

# %%
clip = clips[1]
question = "Which way does the shape move?"
inputs = media.media_inputs(pair, question, video=media.MEDIA_DIR / clip["file"])
ids = inputs.pop("input_ids")
inputs.pop("attention_mask")
print({name: tuple(value.shape) for name, value in inputs.items()})  # what the vision tower reads
frame_runs = media.soft_token_spans(ids, pair.target.config)["video"]
print(f"{ids.shape[1]} prompt tokens: {len(frame_runs)} frames × {frame_runs[0][1] - frame_runs[0][0]} soft tokens "
      f"= {sum(e - s for s, e in frame_runs)} of them")
pieces = [pair.tokenizer.decode([t]) for t in ids[0].tolist()]
frames = media.load_video(media.MEDIA_DIR / clip["file"])
display(HTML(labkit.style.media_strip_html(pieces, media.segments(ids, pair.target.config),
                                           [media.image_url(f) for f in frames])))

# %% [markdown]
# The same two calls as for a picture answer it, with and without the drafter:

# %%
timed = experiments.time_paths({
    "plain": lambda: labkit.run(pair, ids, path="plain", max_new_tokens=20, **inputs),
    "speculative": lambda: labkit.run(pair, ids, path="transformers", k=4, max_new_tokens=20, **inputs)})
clip_plain, clip_spec = timed["plain"].trace, timed["speculative"].trace
print(f"target alone: {media.answer(clip_plain)!r} · with the drafter: {media.answer(clip_spec)!r} · "
      f"truth: {clip['answers'][question]!r}")
print(f"same tokens: {clip_plain.new_ids == clip_spec.new_ids} · tau = {metrics.tau(clip_spec):.2f} · "
      f"speedup {experiments.speedup_of(timed['plain'], timed['speculative'])}   "
      f"({tag}, {clip_spec.decoding}, k = 4, {clip['file']}, measured now)")

# %% [markdown]
# Where do those frames sit for the drafter? Its sliding layers read only the last `window`
# positions of the target's K/V (printed: 512 for this pocket pair, as on E2B; 1,024 on the larger
# models). A six-frame clip, about 450 tokens, still fits: every drafter layer can reach every
# frame. The second figure lays out the same clip played four times over (24 frames, the most this
# pocket pair's context holds): now the first frames are past the window, and they reach the
# drafter through its one full-attention layer alone. However wide the window, a long enough clip
# outgrows it, and a drafter without a full layer could not compare the first frame of such a clip
# with its last (which way something moved).

# %%
print(f"window {window}; this clip: {ids.shape[1]} prompt tokens")
plots.kv_figure(media.segments(ids, pair.target.config, generated=len(clip_spec.new_ids)), window=window)

# %%
longer = media.media_inputs(pair, question, video=frames * 4)["input_ids"]  # prompt only: nothing runs
print(f"window {window}; the clip four times over: {len(frames) * 4} frames, {longer.shape[1]} prompt tokens")
plots.kv_figure(media.segments(longer, pair.target.config), window=window)

# %% [markdown]
# And which frames does it read when it drafts the first answer token? The attention of each
# drafter layer, summed per frame (measured on this prompt; the rest is the text: timestamps,
# turn markers, the question):

# %%
weights = media.drafter_attention(pair, ids, **inputs)
for layer, (w, kind) in enumerate(zip(weights, drafter_config.layer_types)):
    per_frame = [float(w[s:e].sum()) for s, e in frame_runs]
    print(f"layer {layer} ({kind.split('_')[0]:7s}) " + " ".join(
        f"{t} {share:4.0%}" for t, share in zip(media.timestamps(len(frame_runs)), per_frame))
          + f" · text {max(0.0, 1 - sum(per_frame)):4.0%}")  # max: float rounding can leave -0

# %% [markdown]
# ## A page: the answer is written in the picture
#
# A page of text is a picture like any other: 64 soft tokens. What is new is the answer. "Describe
# the picture" has a grammar ("a … … left of a … …"): once the first words are out, much of the rest
# can be drafted from the pattern. A number on a page has none: every digit must be read from the
# page's soft tokens, through the target's K/V, by a drafter that never sees the page. A boxed word
# is read too, but it is one of 16 words: after its first piece, the rest of the word follows. One
# document in four is a small table instead ("What number is in row 2, column B?"): a number again,
# found by its row and column rather than its line.

# %%
page = next(s for s in pages if synthetic.DOCUMENT_QUESTIONS[1] in s["answers"] and len(s["answers"]) > 1)  # lines, a number
for q, truth in page["answers"].items():
    inputs = media.media_inputs(pair, q, image=media.MEDIA_DIR / page["file"])
    ids = inputs.pop("input_ids")
    inputs.pop("attention_mask")
    plain = labkit.run(pair, ids, path="plain", max_new_tokens=20, **inputs)
    spec = labkit.run(pair, ids, path="transformers", k=4, max_new_tokens=20, **inputs)
    print(f"{q!r}: {media.answer(plain)!r} (truth {truth!r}) · same with the drafter: "
          f"{plain.new_ids == spec.new_ids} · tau {metrics.tau(spec):.2f}")
    display(HTML(labkit.style.token_html(media.without_end(spec), show_prompt=False)))
display(HTML(media.image_html(media.MEDIA_DIR / page["file"], page["file"], width=160)))

# %% [markdown]
# ## Acceptance per modality and per question
#
# Every shipped sample with each of its questions (a table's four cells included), plus eight
# held-out pages asked for a number and, where the page has one, its boxed word (the shipped pages
# hold few), plain and speculative, greedy, `k = 4`.

# %%
asked = [(s["modality"], q, media.sample_input(s), truth) for s in samples for q, truth in s["answers"].items()]
for i in range(8):  # held-out pages (seeds never trained on)
    ex = synthetic.example(synthetic.HELD_OUT + 700_000 + i, "document")
    numbers = [q for q in ex.truth.questions if q != synthetic.DOCUMENT_QUESTIONS[1]]  # on a line or in a cell
    words = [q for q in ex.truth.questions if q == synthetic.DOCUMENT_QUESTIONS[1]]
    for q in numbers[:1] + words:
        asked.append(("document", q, {"image": ex.item}, ex.truth.answer(q)))
groups, plains, rows = {}, {}, []
for family, q, source, truth in asked:
    key = f"{family} · {synthetic.question_kind(q)}"
    inputs = media.media_inputs(pair, q, **source)
    ids = inputs.pop("input_ids")
    inputs.pop("attention_mask")
    # once each (the cells above warmed both paths), the path that goes first alternating
    timed = experiments.time_paths({
        "plain": lambda: labkit.run(pair, ids, path="plain", max_new_tokens=20, **inputs),
        "speculative": lambda: labkit.run(pair, ids, path="transformers", k=4, max_new_tokens=20, **inputs)},
        repeats=1, warmup=False, offset=len(rows))
    plain, spec = timed["plain"].trace, timed["speculative"].trace
    groups.setdefault(key, []).append(spec)
    plains.setdefault(key, []).append(plain)
    rows.append({"group": key, "same": plain.new_ids == spec.new_ids, "right": media.answer(plain) == truth})

print(f"{'':48s} {'right':>6s} {'same':>5s} {'tau [90% interval]':>19s} {'speedup [90% interval]':>23s}")
for name, traces in groups.items():
    sub = [r for r in rows if r["group"] == name]
    tau = metrics.interval(metrics.tau, traces)
    speedup = metrics.interval(metrics.speedup, plains[name], traces)
    print(f"{name:48s} {sum(r['right'] for r in sub):>2d}/{len(sub):<3d} {all(r['same'] for r in sub)!s:>5s} "
          f"{tau!s:>19s} {speedup!s:>22s}x")
sizes = sorted({len(v) for v in groups.values()})
sample = f"{len(rows)} prompts ({sizes[0]}–{sizes[-1]} per question), {spec.decoding}, k = 4"
print(f"({tag}; {sample}; intervals resample each question's prompts)")
plots.modality_acceptance_figure(groups, label=f"{tag}; {sample}")

# %% [markdown]
# The answers are short (a handful of tokens) and follow a fixed grammar once the first word is
# out; the drafts that miss are where the drafter has to *look* at the soft tokens (a colour, a
# count, a digit) rather than follow the grammar. Four to ten samples per question (printed) make wide
# intervals: read the table for which questions clearly differ (intervals apart) and treat the
# rest as unsettled. Whatever the speedup, the prefill (towers included) is the same for both
# paths, and on answers this short it is a large share of the time; a clip's prefill is six
# pictures' worth.
#
# **Reading against describing.** Pool the questions by what the answer asks of the drafter: to
# read characters off a page (a number, digit by digit; a word, from a list of 16), or to describe
# what it sees or hears (a caption with a grammar, a direction, a count). The share of drafts kept,
# per kind, with a 90 % interval over prompts. The comparison only means something when the target
# does read the pages; the cell says whether it did:

# %%
kinds = {"reading a number": ["document · What number is on line n?", "document · What number is in row r, column c?"],
         "reading a word": ["document · Read the word in the box."],
         "describing": [g for g in groups if not g.startswith("document")]}
kept = {}
for kind, names in kinds.items():
    traces = [t for g in names for t in groups.get(g, [])]
    kept[kind] = metrics.interval(metrics.alpha, traces)
    judged = sum(r.accepted + r.rejected for r in metrics.drafting_rounds(traces))
    print(f"{kind:18s} drafts kept (accepted / judged) {kept[kind]!s:>19s}   ({len(traces)} prompts, {judged} drafts judged)")
num, desc = kept["reading a number"], kept["describing"]
read = [r["right"] for r in rows if r["group"].startswith("document")]
if sum(read) < len(read) / 2:  # its answers are not read off the page: the comparison would not be about reading
    print(f"→ no verdict: the target read {sum(read)} of {len(read)} pages right, so its answers to them are not "
          f"text read off the page, and their drafts say nothing about reading ({tag})")
else:
    verdict = ("kept less often when reading a number (the intervals do not overlap)" if num.hi < desc.lo else
               "kept more often when reading a number (the intervals do not overlap)" if num.lo > desc.hi else
               "not clearly different between reading a number and describing (the intervals overlap)")
    print(f"→ drafts are {verdict}; the target read {sum(read)} of {len(read)} pages right; "
          f"{tag}, {spec.decoding}, k = 4")

# %% [markdown]
# A few samples per question say little about how often the target is right. The script that
# trained the pocket pair (`scripts/train_multimodal.py`) measured that when it built it, on
# held-out samples drawn from seeds never trained on (greedy, target alone, exact answers), and
# which parts of the wrong descriptions were still right:

# %%
build = Path(pair.target_id).parent / "metrics.json"  # written next to the weights by the build
if pair.is_pocket and build.exists():
    m = json.loads(build.read_text())
    width = max(map(len, m["accuracy"]))
    print(f"{'':{width}s} {'right [90% interval]':>22s}  (held-out samples; {m['recipe']} recipe, measured at build time)")
    for key, accuracy in m["accuracy"].items():
        n = m["samples"][key]
        lo, hi = metrics.wilson(round(accuracy * n), n)
        print(f"{key:{width}s} {accuracy:6.1%} [{lo:.1%}, {hi:.1%}]   of {n}")
    print("parts right in descriptions:", " · ".join(f"{k} {v:.0%}" for k, v in m["caption_parts"].items()))
    print(f"greedy with the drafter identical to without on all of them: {m['greedy_identical_with_drafter']}")
else:
    print(f"{tag}: no build measurement; the table above is all there is")

# %% [markdown]
# ## Try it: your own picture, page, sound or clip
#
# Pick a shipped sample, draw a new random one (a picture, a page or a clip, from seeds never
# trained on), or upload your own file (PNG/JPEG for a picture or a page, WAV/FLAC/OGG for a sound,
# any sample rate, resampled to 16 kHz; an animated GIF or WebP for a clip). A file the lab cannot
# use gets a message, not a traceback. Choose `(none)` for the picture to ask about a sound alone.

# %% tags=["live"]
# Widgets never hold a model: the panel gets a function that answers both ways, plus the pair's
# label and the soft-token ids it counts, as plain data.
panel = widgets.MediaPanel(widgets.media_runner(pair), label=pair.label,
                           soft_token_ids=media.soft_token_ids(pair.target.config))
panel.go()
panel

# %% [markdown]
# ## Bad inputs get a clear message
#
# Every input is checked before the model runs:

# %%
import numpy as np

from labkit.errors import MediaError

for label, kwargs in [
    ("silent audio", {"audio": np.zeros(16000, np.float32), "sampling_rate": 16000}),
    ("bytes that are no image", {"image": b"GIF89a but not really"}),
    ("an array without its rate", {"audio": np.ones(800, np.float32)}),
]:
    try:
        media.media_inputs(pair, "Describe it.", **kwargs)
    except MediaError as err:
        print(f"{label:28s} -> MediaError: {err}")

tone = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000).astype(np.float32)  # 1 s at 8 kHz
print(f"{'audio at 8 kHz':28s} -> resampled to {len(media.load_audio(tone, sampling_rate=8000))} samples at 16 kHz")

# %% [markdown]
# ## The real Gemma 4 path
#
# The same calls run a real pair. E2B and E4B read images and audio; 26B-A4B and 31B read images
# (audio gets a `MediaError` saying so). Without torchvision, labkit builds the processor without
# its video part from the checkpoint's own `processor_config.json`.
#
# ```python
# pair = labkit.load_pair("google/gemma-4-E4B-it")      # + google/gemma-4-E4B-it-assistant
# inputs = media.media_inputs(pair, "What is in this picture?", image="photo.jpg")
# ids = inputs.pop("input_ids"); inputs.pop("attention_mask")
# trace = labkit.run(pair, ids, path="transformers", k=6, max_new_tokens=64, **inputs)
#
# # a video: its frames (a list of images, an animated GIF, or a (frames, H, W, 3) array), fps apart
# inputs = media.media_inputs(pair, "What happens in this clip?", video="clip.gif", fps=1.0)
# # a scanned page is a picture
# inputs = media.media_inputs(pair, "What is the total on this invoice?", image="scan.png")
# ```
#
# With torchvision installed the processor's own video part lays out the frames; without it (as
# here) the frames go through the image processor into the same layout. A real Gemma 4 processor
# gives each picture up to 280 soft tokens by default (the pocket pair uses the smallest budget,
# 70), so a page's small print stays legible; a 32-frame video is thousands of prompt tokens, most
# of them outside the drafter's sliding window.
#
# The test suite runs exactly this path on tiny random-weight models of the same classes, saved
# the way the hub holds them (`tests/test_media.py`), pictures, sounds and clips alike.

# %% [markdown]
# ## Summary
#
# - A Gemma 4 target turns a picture or a sound into a run of soft tokens in its prefill; the
#   MTP drafter never sees them directly but attends to their rows in the target's K/V.
# - Greedy speculative decoding with images and audio returns the target's own tokens: the
#   verification rule does not care where the context came from.
# - Only the drafter's full-attention layer sees soft tokens beyond its sliding window. A clip is a
#   run of pictures, one per frame after its timestamp; a long clip outgrows the window, and its
#   first frames reach the drafter through that one layer.
# - A page's answer is written in the picture: digits have no grammar to draft from, so the drafter
#   must read them from the page's soft tokens through the target's K/V; a word from a short list
#   is easier once its first piece is out. The pocket target does read them (its held-out figures
#   above), so the gap "Reading against describing" measures is the drafter's.
# - Acceptance can depend on the question: drafts that follow the answers' grammar are easy,
#   words that must be read off the picture or the sound are not. With a handful of samples per
#   question, the intervals say which of the measured differences are more than noise.
# - Each pocket drafter layer has one sharp attention head: it reads a patch or two of the
#   picture, or parks on `<bos>`, so its attention bar is all one colour.
#
# ## Exercises
#
# 1. Write `token_runs(ids, token_id)`: the `(start, end)` runs of `token_id` in a list of ids
#    (end exclusive), the way `media.soft_token_spans` finds where a picture's or a sound's soft
#    tokens sit. Uncomment the checker.
# 2. Predict, then measure. The lengths of the shipped sounds `beeps_0` … `beeps_3` are under
#    their players at the top. Before counting anything, predict how many
#    audio soft tokens the processor gives each, from what this notebook says about audio soft
#    tokens. Put your numbers in `prediction`; the checker counts them with the pair's processor.
# 3. Predict, then measure. How many prompt tokens does `clip_2.gif` take, and how many of them
#    are soft tokens? Use what this notebook says about frames (count its frames above, or with
#    `media.load_video`). Put your numbers in `clip_prediction`; the checker builds the prompt.
# 4. Predict, then measure. Ask a question the pocket target was never trained on ("Is the circle
#    big?") about `scene_0.png`. Will the answer with the drafter be the target's own, token for
#    token? Write your guess (and, if you like, a guess of `tau`), run both paths greedy, and pass
#    the two traces to the checker. Why must the answer come out as it does?

# %%
from labkit import checks

check_1 = checks.check_token_runs  # uncomment the calls at the bottom once your code is ready
check_2 = checks.check_audio_token_prediction
check_3 = checks.check_clip_token_prediction
check_4 = checks.check_untrained_question


def token_runs(ids, token_id):
    raise NotImplementedError("one pass over the ids: remember where a run of token_id began, and "
                              "close it when something else comes (or the ids end)")


sound_prediction = {"beeps_0.wav": None, "beeps_1.wav": None, "beeps_2.wav": None, "beeps_3.wav": None}
clip_prediction = {"soft tokens": None, "frames": None}
untrained_prediction = {"same": None, "tau": None}
# untrained_plain = labkit.run(pair, ..., path="plain", max_new_tokens=20, ...)   # see "With and
# untrained_spec = labkit.run(pair, ..., path="transformers", k=4, ...)          #  without the drafter"

# check_1(token_runs)
# check_2(sound_prediction, pair)
# check_3(clip_prediction, pair)
# check_4(untrained_prediction, untrained_plain, untrained_spec)

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
# # 06 · Multimodal: pictures and sounds go to the target, the drafter still only drafts text
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/06_multimodal.ipynb)
#
# **Goal.** Give a Gemma 4 target a picture or a sound, and see speculative decoding work exactly
# as with text: the target's vision and audio towers turn the input into *soft tokens* in its
# prefill, the MTP drafter never sees a pixel or a sample, yet it drafts the answer by attending to
# the target's K/V, where the soft tokens sit. We check that the answer with the drafter is the
# target's own, token for token, and measure acceptance per modality and per question.
#
# Offline, this runs on the **pocket multimodal pair**: a small `Gemma4ForConditionalGeneration`
# trained in this repo to describe pictures of coloured shapes and sequences of beeps, things you
# can check by eye and by ear. A real E2B/E4B pair is one argument away (end of the notebook).
# It gets most held-out questions right, sounds less often than pictures (measured below); but
# whatever the target says, right or wrong, the drafter must reproduce it exactly.

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
# The lab ships four pictures and four sounds, drawn by `labkit.synthetic` from seeds the model
# never saw in training, with the answers they should get (`data/media/samples.json`). The sounds
# are short: a browser's player counts whole seconds (a 0.4 s clip reads "0:00"), so each clip's
# length is written under it.

# %%
samples = json.loads((media.MEDIA_DIR / "samples.json").read_text())
pictures = [s for s in samples if s["modality"] == "image"]
sounds = [s for s in samples if s["modality"] == "audio"]
display(HTML("<div style='display:flex'>" + "".join(
    media.image_html(media.MEDIA_DIR / s["file"], s["answers"]["Describe the picture."], width=140)
    for s in pictures) + "</div>"))
display(HTML("<div style='display:flex;flex-wrap:wrap'>" + "".join(
    media.audio_html(media.MEDIA_DIR / s["file"], f"{s['file']}: {s['answers']['Describe the sound.']}")
    for s in sounds) + "</div>"))

# %% [markdown]
# ## From a chat to soft tokens
#
# The chat template puts one placeholder per picture or sound into the user's turn. The processor
# then expands each placeholder to a run of soft tokens: `<|image>`, 64 × `<|image|>`, `<image|>`
# for a picture (at the smallest of Gemma 4's image budgets, 70 tokens: 16-pixel patches pooled
# 3 × 3), and `<|audio>`, one `<|audio|>` per 40 ms, `<audio|>` for a sound.

# %%
question = "Describe the picture."
chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
print(pair.processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))

inputs = media.media_inputs(pair, question, image=media.MEDIA_DIR / pictures[0]["file"])
ids = inputs.pop("input_ids")
inputs.pop("attention_mask")
print({name: tuple(value.shape) for name, value in inputs.items()})  # what the vision tower reads
print(f"{ids.shape[1]} prompt tokens; soft-token runs:", media.soft_token_spans(ids, pair.target.config))

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
# ## Acceptance per modality and per question
#
# Every shipped sample with both of its questions, plain and speculative, greedy, `k = 4`.

# %%
groups, plains, rows = {}, {}, []
for s in samples:
    key = "image" if s["modality"] == "image" else "audio"
    for q, truth in s["answers"].items():
        inputs = media.media_inputs(pair, q, **{key: media.MEDIA_DIR / s["file"]})
        ids = inputs.pop("input_ids")
        inputs.pop("attention_mask")
        # once each (the cell above warmed both paths), the path that goes first alternating
        timed = experiments.time_paths({
            "plain": lambda: labkit.run(pair, ids, path="plain", max_new_tokens=20, **inputs),
            "speculative": lambda: labkit.run(pair, ids, path="transformers", k=4, max_new_tokens=20, **inputs)},
            repeats=1, warmup=False, offset=len(rows))
        plain, spec = timed["plain"].trace, timed["speculative"].trace
        groups.setdefault(f"{key} · {q}", []).append(spec)
        plains.setdefault(f"{key} · {q}", []).append(plain)
        rows.append({"group": f"{key} · {q}", "same": plain.new_ids == spec.new_ids,
                     "right": media.answer(plain) == truth})

print(f"{'':34s} {'right':>6s} {'same':>5s} {'tau [90% interval]':>19s} {'speedup [90% interval]':>23s}")
for name, traces in groups.items():
    sub = [r for r in rows if r["group"] == name]
    tau = metrics.interval(metrics.tau, traces)
    speedup = metrics.interval(metrics.speedup, plains[name], traces)
    print(f"{name:34s} {sum(r['right'] for r in sub)}/{len(sub):<4d} {all(r['same'] for r in sub)!s:>5s} "
          f"{tau!s:>19s} {speedup!s:>22s}x")
sample = f"{len(rows)} prompts ({len(rows) // len(groups)} per question), {spec.decoding}, k = 4"
print(f"({tag}; {sample}; intervals resample each question's {len(rows) // len(groups)} samples)")
plots.modality_acceptance_figure(groups, label=f"{tag}; {sample}")

# %% [markdown]
# The answers are short (a handful of tokens) and follow a fixed grammar once the first word is
# out; the drafts that miss are where the drafter has to *look* at the soft tokens (a colour, a
# count) rather than follow the grammar. Four samples per question make wide intervals: read the
# table for which questions clearly differ (intervals apart) and treat the rest as unsettled.
# Whatever the speedup, the prefill (towers included) is the same for both paths, and on answers
# this short it is a large share of the time.
#
# Eight samples say little about how often the target is right. The script that trained the pocket
# pair (`scripts/train_multimodal.py`) measured that when it built it, on held-out samples drawn
# from seeds never trained on (greedy, target alone, exact answers), and which parts of the wrong
# descriptions were still right:

# %%
build = Path(pair.target_id).parent / "metrics.json"  # written next to the weights by the build
if pair.is_pocket and build.exists():
    m = json.loads(build.read_text())
    print(f"{'':40s} {'right':>6s}   (held-out samples; {m['recipe']} recipe, measured at build time)")
    for key, accuracy in m["accuracy"].items():
        print(f"{key:40s} {accuracy:6.1%}   of {m['samples'][key]}")
    print("parts right in descriptions:", " · ".join(f"{k} {v:.0%}" for k, v in m["caption_parts"].items()))
    print(f"greedy with the drafter identical to without on all of them: {m['greedy_identical_with_drafter']}")
else:
    print(f"{tag}: no build measurement; the table above is all there is")

# %% [markdown]
# ## Try it: your own picture or sound
#
# Pick a shipped sample, draw a new random one (seeds never trained on), or upload your own file
# (PNG/JPEG, WAV/FLAC/OGG; any sample rate, resampled to 16 kHz). A file the lab cannot use gets
# a message, not a traceback. Choose `(none)` for the picture to ask about a sound alone.

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
# ```
#
# The test suite runs exactly this path on tiny random-weight models of the same classes, saved
# the way the hub holds them (`tests/test_media.py`).

# %% [markdown]
# ## Summary
#
# - A Gemma 4 target turns a picture or a sound into a run of soft tokens in its prefill; the
#   MTP drafter never sees them directly but attends to their rows in the target's K/V.
# - Greedy speculative decoding with images and audio returns the target's own tokens: the
#   verification rule does not care where the context came from.
# - Only the drafter's full-attention layer sees soft tokens beyond its sliding window.
# - Acceptance can depend on the question: drafts that follow the answers' grammar are easy,
#   words that must be read off the picture or the sound are not. With four samples per question,
#   the intervals say which of the measured differences are more than noise.
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
# 3. Predict, then measure. Ask a question the pocket target was never trained on ("Is the circle
#    big?") about `scene_0.png`. Will the answer with the drafter be the target's own, token for
#    token? Write your guess (and, if you like, a guess of `tau`), run both paths greedy, and pass
#    the two traces to the checker. Why must the answer come out as it does?

# %%
from labkit import checks

check_1 = checks.check_token_runs  # uncomment the calls at the bottom once your code is ready
check_2 = checks.check_audio_token_prediction
check_3 = checks.check_untrained_question


def token_runs(ids, token_id):
    raise NotImplementedError("one pass over the ids: remember where a run of token_id began, and "
                              "close it when something else comes (or the ids end)")


sound_prediction = {"beeps_0.wav": None, "beeps_1.wav": None, "beeps_2.wav": None, "beeps_3.wav": None}
untrained_prediction = {"same": None, "tau": None}
# untrained_plain = labkit.run(pair, ..., path="plain", max_new_tokens=20, ...)   # see "With and
# untrained_spec = labkit.run(pair, ..., path="transformers", k=4, ...)          #  without the drafter"

# check_1(token_runs)
# check_2(sound_prediction, pair)
# check_3(untrained_prediction, untrained_plain, untrained_spec)

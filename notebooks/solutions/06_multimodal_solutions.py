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
# # 06 · Multimodal: solutions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/solutions/06_multimodal_solutions.ipynb)
#
# Solutions to the exercises of `06_multimodal`, on the pocket multimodal pair.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # choose the pair you chose in the chapter (LABKIT_PAIR=..., if set, wins)

# %% [markdown]
# **1.** One pass with a sentinel at the end, so a run that reaches the last id is closed too.

# %%
from labkit import checks, media


def token_runs(ids, token_id):
    runs, start = [], None
    for i, t in enumerate(list(ids) + [None]):  # the sentinel closes a run at the end
        if t == token_id and start is None:
            start = i
        elif t != token_id and start is not None:
            runs.append((start, i))
            start = None
    return runs


checks.check_token_runs(token_runs)

# %% [markdown]
# **2.** One audio soft token per 40 ms (10 ms mel frames, then two stride-2 convolutions: 4
# frames a token), so a clip of `ms` milliseconds gets about `ms / 40`; the processor's exact
# count rounds at the edges, which is why the checker allows one token either way.

# %%
import json

pair = labkit.load_pair("pocket-multimodal")
sounds = [r["file"] for r in json.loads((media.MEDIA_DIR / "samples.json").read_text()) if r["modality"] == "audio"]
sound_prediction = {}
for name in sounds:
    ms = 1000 * len(media.load_audio(media.MEDIA_DIR / name)) / media.SAMPLE_RATE
    sound_prediction[name] = round(ms / 40)
checks.check_audio_token_prediction(sound_prediction, pair)

# %% [markdown]
# **3.** A clip is read as its frames, each one picture of 64 soft tokens (after its timestamp), so
# the soft tokens are frames × 64; the prompt adds per frame the timestamp and the `<|image>` /
# `<image|>` markers, then the turn around the question.

# %%
frames = len(media.load_video(media.MEDIA_DIR / "clip_2.gif"))
checks.check_clip_token_prediction({"frames": frames, "soft tokens": frames * 64}, pair)

# %% [markdown]
# **4.** The answer with the drafter is the target's own, token for token, whatever the question:
# greedy verification keeps a draft only when it equals the target's own choice, and the target's
# token closes every round. A question the target never trained on changes what it answers, and
# perhaps how well the drafter guesses (`tau`), never whether the two paths agree.

# %%
inputs = media.media_inputs(pair, "Is the circle big?", image=media.MEDIA_DIR / "scene_0.png")
ids = inputs.pop("input_ids")
inputs.pop("attention_mask")
untrained_plain = labkit.run(pair, ids, path="plain", max_new_tokens=20, **inputs)
untrained_spec = labkit.run(pair, ids, path="transformers", k=4, max_new_tokens=20, **inputs)
print(f"answer: {media.answer(untrained_plain)!r} ({untrained_spec.decoding})")
checks.check_untrained_question({"same": True}, untrained_plain, untrained_spec)

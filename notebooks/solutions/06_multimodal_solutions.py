# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Multimodal: solutions

# %%
from labkit import checks


def token_runs(ids, token_id):
    runs, start = [], None
    for i, t in enumerate(list(ids) + [None]):  # a sentinel closes a run at the end
        if t == token_id and start is None:
            start = i
        elif t != token_id and start is not None:
            runs.append((start, i))
            start = None
    return runs


checks.check_token_runs(token_runs)

# %% [markdown]
# Exercise 2: a question the target never saw in training still gets *some* answer, and the
# drafter reproduces it exactly, because greedy verification keeps only tokens the target itself
# would pick: the output cannot depend on whether the drafter guessed well, only the speed can.

# %%
import labkit
from labkit import media

pair = labkit.load_pair("pocket-multimodal")
inputs = media.media_inputs(pair, "Is the circle big?", image=media.MEDIA_DIR / "scene_0.png")
ids = inputs.pop("input_ids")
inputs.pop("attention_mask")
plain = labkit.run(pair, ids, path="plain", max_new_tokens=20, **inputs)
spec = labkit.run(pair, ids, path="transformers", k=4, max_new_tokens=20, **inputs)
print(repr(plain.text), "| same with the drafter:", plain.new_ids == spec.new_ids,
      f"| tau {labkit.tau(spec):.2f}")

# %% [markdown]
# Exercise 3: one audio soft token per 40 ms (10 ms mel frames, then two stride-2 convolutions).
# A shipped clip shows the arithmetic:

# %%
wave = media.load_audio(media.MEDIA_DIR / "beeps_0.wav")
inputs = media.media_inputs(pair, "Describe the sound.", audio=wave, sampling_rate=media.SAMPLE_RATE)
(start, end), = media.soft_token_spans(inputs["input_ids"], pair.target.config)["audio"]
ms = 1000 * len(wave) / media.SAMPLE_RATE
print(f"{ms:.0f} ms of audio -> {end - start} soft tokens: {ms / (end - start):.1f} ms per token")

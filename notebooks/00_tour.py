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
# # 00 · A tour: one prompt, decoded two ways
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/00_tour.ipynb)
#
# **Goal.** See speculative decoding do its one trick before we take it apart. A large *target*
# model normally produces one token per forward pass. Gemma 4 ships a small *drafter* (Google calls
# it an MTP head) that guesses the next `k` tokens; the target checks all of them in a single
# forward pass and keeps the ones it agrees with. We decode the same prompt both ways and compare:
# is the text the same, how many tokens did each target forward yield (`tau`), and was it faster?

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

env = labkit.setup()

# %%
from IPython.display import HTML, display

from labkit import generation, metrics, plots, style, widgets

# The pocket pair: a small Gemma 4 target and its MTP drafter, trained in this repo; runs offline.
# A real pair is one argument away: pair = labkit.load_pair("google/gemma-4-E2B-it")
pair = labkit.load_pair()
pair

# %% [markdown]
# ## One token at a time
#
# Plain decoding: the target reads the prompt, emits one token, reads it back, emits the next.
# Every new token costs one full target forward pass.

# %%
prompt = generation.load_prompts("prose", limit=1)[0]
new_tokens = 32
settings = dict(max_new_tokens=new_tokens, stop_at_eos=False)  # same length on both paths

generation.run(pair, prompt, path="transformers", k=4, max_new_tokens=4)  # warm-up: torch's first-call costs
plain = generation.run(pair, prompt, path="plain", **settings)
print(f"prompt: {prompt!r}")
print(f"plain decoding: {len(plain.new_ids)} tokens, {plain.target_forwards} target forwards, {plain.wall:.2f} s")

# %% [markdown]
# ## Draft, then verify
#
# Speculative decoding with transformers' own `generate(..., assistant_model=drafter)`: each round
# the drafter proposes `k` tokens, the target scores all of them in one forward, keeps the longest
# prefix it agrees with, and adds one token of its own (the *bonus*, or a correction where it
# disagreed). labkit traces every round without changing what transformers does.

# %%
k = 4
spec = generation.run(pair, prompt, path="transformers", k=k, **settings)
same = spec.new_ids == plain.new_ids
speedup = plain.wall / spec.wall
print(f"speculative (k = {k}): {len(spec.new_ids)} tokens, {spec.target_forwards} target forwards, {spec.wall:.2f} s")
print(f"same text as plain decoding: {same}")
print(f"tau = {metrics.tau(spec):.2f} tokens per target forward (plain decoding: {metrics.tau(plain):.2f})")
print(f"speedup = {speedup:.2f}x  ({pair.label}, this machine, one prompt)")

# %% [markdown]
# Every token, coloured by how it was produced: green tokens were drafted and accepted (the target
# only checked them), blue ones the target produced itself. The more green, the fewer target
# forwards. Hover a tile for its round.

# %%
display(HTML(style.token_html(spec)))
plots.tokens_figure(spec)

# %% [markdown]
# Where the time went: drafting, verifying (target forwards), and everything else. Speculative
# decoding pays off only when the target forwards it saves outweigh the drafting it adds.

# %%
plots.time_split_figure({"plain": plain, f"speculative, k = {k}": spec})

# %% [markdown]
# ## Try it yourself
#
# Type a prompt and press **Run**. The pair box takes `pocket` or the id of a real Gemma 4 target
# (e.g. `google/gemma-4-E2B-it`); without its weights on disk or a network, you get a message
# saying so, and the pocket pair keeps working.

# %%
widgets.TourPanel(pair, prompt, k=k, max_new_tokens=new_tokens)

# %% [markdown]
# ## Summary
#
# - Speculative decoding drafts `k` tokens cheaply and lets the target verify them in one forward.
# - With greedy decoding the text is the target's own text (checked above); only the number of
#   target forwards changes. `tau` counts tokens per target forward; plain decoding has `tau = 1`.
# - A higher `tau` does not guarantee a speedup: drafting and bookkeeping cost time too. Notebooks
#   03–05 take the rounds apart, measure acceptance, and build the cost model.
#
# ## Exercises
#
# 1. Compute `tau` yourself from a trace: new tokens divided by target forwards. A `Trace` has
#    `.new_ids` and `.rounds` (one per target forward, the prefill included). Write it below and
#    uncomment the checker.
# 2. Change `k` to 1 and to 8 and rerun the speculative cell. How do `tau` and the speedup move?
# 3. Try a code prompt: `generation.load_prompts("code", limit=1)[0]`. Is more of it green?

# %%
from labkit import checks

check_1 = checks.check_tokens_per_forward  # uncomment the call(s) at the bottom once your code is ready


def tokens_per_forward(trace):
    raise NotImplementedError("new tokens / target forwards")


# check_1(tokens_per_forward)

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
# # 00 · A tour: solutions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/solutions/00_tour_solutions.ipynb)
#
# Solutions to the exercises of `00_tour`, each followed by its checker.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # choose the pair you chose in the chapter (LABKIT_PAIR=..., if set, wins)

# %%
from labkit import checks, generation, metrics

pair = labkit.load_pair()

# %% [markdown]
# **1.** Every round is one target forward, and the prefill is round 0, so tau is the number of new
# tokens over the number of rounds.

# %%
def tokens_per_forward(trace):
    return len(trace.new_ids) / len(trace.rounds)  # one round per target forward, prefill included


checks.check_tokens_per_forward(tokens_per_forward)

# %% [markdown]
# **2.** Draft `k` tokens, then run the target once over the context *and* the drafts. Row
# `len(ids) - 1` of its logits is the target's choice for the token after `ids[-1]`, the first
# draft's position; row `len(ids) - 1 + j` its choice after draft `j`. Keep drafts while they equal
# the target's choice; at the first disagreement (or after all `k` agree) the target's own choice
# at that row is the one token it adds. One forward, between 1 and k + 1 tokens.

# %%
def speculative_round(draft, target, ids, k):
    drafts = draft(ids, k)
    logits = target(ids + drafts)  # (len(ids) + k, vocab): one forward checks every draft
    top = logits[len(ids) - 1 :].argmax(-1).tolist()  # the target's own choice at each drafted position, and after
    n = 0
    while n < len(drafts) and drafts[n] == top[n]:
        n += 1
    return drafts[:n] + [top[n]]  # the accepted prefix, then the bonus (or the correction)


checks.check_speculative_round(speculative_round, pair)

# %% [markdown]
# **3.** With `k = 1` a round yields 1 token (draft rejected) or 2 (accepted), so tau stays below 2
# whatever the drafter. With `k = 8` the ceiling is 9 per round, but a round stops at the first
# rejected draft, and the later drafts are guessed from guesses: on the pocket pair tau at `k = 8`
# lands well below 9. The prefill (one token in one forward) pulls both down a little. A guess
# such as 1.8 and 4 is reasonable; the measurement:

# %%
prompt = generation.load_prompts("prose", limit=1)[0]
settings = dict(max_new_tokens=32, stop_at_eos=False)
predicted = {"k = 1": 1.8, "k = 8": 4.0}
measured = {f"k = {kk}": metrics.tau(generation.run(pair, prompt, k=kk, **settings)) for kk in (1, 8)}
checks.check_prediction(predicted, measured)

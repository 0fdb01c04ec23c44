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
# # 11 · Beyond one chain: solutions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/solutions/11_beyond_one_chain_solutions.ipynb)
#
# Solutions to the exercises of `11_beyond_one_chain`. The first checker builds its own rounds;
# the second runs the pair on three held-out prompts.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # the pair labkit.load_pair() loads (LABKIT_PAIR=..., if set, wins)

# %%
import torch

from labkit import checks, generation, glassbox, metrics, strategies
from labkit.trace import Decoding

# %% [markdown]
# **1.** Block verification's accept step. Carry the weight `w` along the block,
# `w_i = min(1, w_{i−1} p(x_i)/q(x_i))`. After draft `i < k` the chance to stop there is the mass
# `w_i p − q` leaves over at the next position, against that mass plus `1 − w_i`; after the last
# draft it is `w_k` itself. The block is kept up to the *last* `i` whose draw `us[i − 1] < h_i`
# (not the first failure: that is the difference from token-wise verification). The next token
# comes from `p` after a fully kept block, else from `norm(max(0, w_τ p − q))` at the position
# after the kept prefix (for `τ = 0`, `w = 1`: the token-wise residual).

# %%
def block_step(drafted, q, p, us):
    k = len(drafted)
    w, h = [1.0], [0.0]
    for i in range(1, k + 1):
        x = int(drafted[i - 1])
        w.append(min(1.0, w[-1] * float(p[i - 1, x]) / float(q[i - 1, x])) if q[i - 1, x] > 0 else w[-1])
        if i == k:
            h.append(w[i])
        else:
            left = float(torch.clamp(w[i] * p[i] - q[i], min=0.0).sum())
            h.append(left / (left + 1.0 - w[i]) if left + 1.0 - w[i] > 0 else 0.0)
    accepted = max([0] + [i for i in range(1, k + 1) if us[i - 1] < h[i]])
    if accepted == k:
        return k, p[k]
    r = torch.clamp(w[accepted] * p[accepted] - q[accepted], min=0.0)
    return accepted, r / r.sum() if r.sum() > 0 else p[accepted]


strategies.check_block_step(block_step)

# %% [markdown]
# **2.** Predict the greedy tree's tau from the chain's rounds. A tree of 2 changes only the rounds
# whose *first* draft the target turns down: there, if the target's token is the drafter's second
# choice, the second branch is kept instead, and its later drafts are kept about as often as the
# chain's drafts after a kept first draft. So: count those rounds in the chain's own run (the
# drafter's second choice is in each round's `q`), add the tokens the second branch would have
# brought, and scale tau by the tokens per round gained. (Rounds after a saved one fall elsewhere
# in the text, so this is an estimate.)

# %%
pair = labkit.load_pair()
prompts = generation.load_prompts("prose", limit=3)
new, k = 32, 4
drafter = glassbox.MTPDrafter(pair.target, pair.drafter)
steps = []  # every round of the chain, the prefill included
for prompt in prompts:
    ids = generation.encode(pair, prompt)
    steps += list(glassbox.speculative_loop(pair.target, drafter, ids, Decoding(k=k, max_new_tokens=new)))
rounds = [s for s in steps if s.drafted]
judged = sum(s.accepted - 1 + (s.accepted < len(s.drafted)) for s in rounds if s.accepted >= 1 and len(s.drafted) > 1)
kept = sum(s.accepted - 1 for s in rounds if s.accepted >= 1 and len(s.drafted) > 1)
alpha_on = kept / max(1, judged)  # a later draft's chance, once the first is kept
saved = [s for s in rounds if s.accepted == 0 and int(s.qs[0].topk(2).indices[1]) == s.token]
gain = sum(alpha_on**j for j in range(1, k))  # the second branch's drafts after its first, in expectation
per_round = sum(len(s.emitted) for s in rounds) / len(rounds)
tau_chain = sum(len(s.emitted) for s in steps) / len(steps)  # tokens per target forward
predicted = tau_chain * (per_round + len(saved) * gain / len(rounds)) / per_round
print(f"chain: tau {tau_chain:.2f}; {sum(s.accepted == 0 for s in rounds)} of {len(rounds)} rounds lose their first "
      f"draft, {len(saved)} of them to the drafter's second choice; later drafts kept at {alpha_on:.2f}")
prediction = {"tau": predicted}

tree_traces = [generation.run(pair, p, Decoding(k=k, tree=2), path="glassbox", max_new_tokens=new,
                              stop_at_eos=False) for p in prompts]
checks.check_prediction(prediction, {"tau": metrics.tau(tree_traces)})

# %% [markdown]
# On prose the pocket drafter's first draft is usually kept, and when it is not, the target's
# token is not always the drafter's second choice: the count above says how many rounds a second
# branch could save at all, which bounds what a tree of 2 can add here.

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
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Inside the MTP drafter: solutions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/solutions/02_inside_the_mtp_drafter_solutions.ipynb)
#
# Solutions to the exercises of `02_inside_the_mtp_drafter`, each followed by the notebook's
# checker. The checkers compare against every shipped Gemma 4 config and the loaded pair.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # choose the pair you chose in the chapter (LABKIT_PAIR=..., if set, wins)
pair = labkit.load_pair()

# %%
import torch

from labkit import architecture, checks, parts

# %% [markdown]
# **1.** Each step: concat the target's embedding of the current token with the current hidden
# state (twice the target's width), `pre_projection` down to the drafter's width, the four layers
# over the target's K/V at the *same* position id for every step (the last context token's), the
# output head's argmax as the draft, and `post_projection` of the layers' output back up to the
# target's width as the next step's hidden state. The draft becomes the next step's token.

# %%
def mtp_round(drafter, embed, ids, hidden, shared_kv, k):
    device = hidden.device
    position = torch.tensor([[len(ids) - 1]], device=device)  # constant for the whole round
    mask = torch.ones(1, len(ids), dtype=torch.long, device=device)
    token, drafts = ids[-1], []
    for _ in range(k):
        x = torch.cat([embed(torch.tensor([[token]], device=device)), hidden], dim=-1)  # (1, 1, 2 × target width)
        h = architecture.assistant_layers(drafter, drafter.pre_projection(x), shared_kv, position, mask)
        token = int(architecture.assistant_logits(drafter, h)[0, -1].argmax())
        hidden = drafter.post_projection(h)  # back to the target's width: the next step's "hidden state"
        drafts.append(token)
    return drafts


checks.check_mtp_round(mtp_round, pair)

# %% [markdown]
# **2.** Each of the `num_centroids` clusters owns `vocab_size / num_centroids` rows, and the head
# keeps `top_k` clusters.

# %%
def rows_scored(vocab_size, num_centroids, top_k):
    return top_k * (vocab_size // num_centroids)


checks.check_rows_scored(rows_scored)

# %% [markdown]
# **3.** Only the first `len(layer_types) - num_kv_shared_layers` layers compute K/V. The assistant
# reads the last of each type among them.

# %%
def kv_source_layers(layer_types, num_kv_shared_layers):
    own = layer_types[: len(layer_types) - num_kv_shared_layers]
    return {kind: max(i for i, t in enumerate(own) if t == kind) for kind in sorted(set(own))}


checks.check_kv_source_layers(kv_source_layers)

# %% [markdown]
# **4.** The first draft of a round cannot change: at step 1 both versions use the same position.
# From step 2 on the queries' rotary embedding turns while the target's keys stay where they are,
# so every attention score shifts; whether a draft flips depends on how far apart the drafter's
# top candidates are. The assistant learned to read "how far ahead" from the hidden state it
# feeds itself, never from the position, so a moving position is an input it never saw in
# training. A reasoned guess is "a few of the 18 later drafts". The measurement on the pocket
# pair (one pair, six short prompts: it says nothing about a real Gemma 4 assistant):

# %%
tokenizer = pair.tokenizer
contexts = [tokenizer(p).input_ids for p in labkit.load_prompts("prose", limit=6)]
pairs_of_drafts = [(parts.mtp_drafts(pair, ids, 4), parts.mtp_drafts(pair, ids, 4, position_step=1)) for ids in contexts]
changed = sum(a != b for still, moving in pairs_of_drafts for a, b in zip(still, moving))
first_changed = sum(still[0] != moving[0] for still, moving in pairs_of_drafts)
print(f"first drafts that changed: {first_changed} of {len(contexts)} (they cannot: same position at step 1)")
print(f"later drafts that changed: {changed - first_changed} of {3 * len(contexts)}")
checks.check_prediction({"drafts that change": 3}, {"drafts that change": changed})

# %% [markdown]
# If few or none changed, shifts of one to three positions were too small against the drafter's
# margins on these prompts: rotary embeddings turn each query by a small angle per position. A
# larger step turns it further; how many drafts change then:

# %%
for step in (10, 50):
    moved = sum(a != b for ids, (still, _) in zip(contexts, pairs_of_drafts)
                for a, b in zip(still, parts.mtp_drafts(pair, ids, 4, position_step=step)))
    print(f"position advancing by {step} per draft: {moved} of {4 * len(contexts)} drafts change")

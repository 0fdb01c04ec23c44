# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Inside the MTP drafter — solutions
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

env = labkit.setup()
pair = labkit.load_pair()

# %%
from labkit import architecture

pairs = {s: {"target_cfg": architecture.load_config(s)} for s in architecture.MODELS}
summaries = {s: architecture.assistant_summary(p["target_cfg"], architecture.load_config(f"{s}-assistant"))
             for s, p in pairs.items()}
target = pair.target
pocket = architecture.assistant_summary(target.config, pair.drafter.config)

# %% [markdown]
# **1.** Each of the `num_centroids` clusters owns `vocab_size / num_centroids` rows, and the head
# keeps `top_k` clusters.

# %%
def rows_scored(vocab_size: int, num_centroids: int, top_k: int) -> int:
    return top_k * (vocab_size // num_centroids)


def check_rows_scored(fn) -> None:
    for name, s in [*summaries.items(), (pair.name, pocket)]:
        if s["centroid_head"]:
            assert fn(s["vocab_size"], s["num_centroids"], s["centroids_kept"]) == s["rows_scored"], name
    print("✓ rows_scored matches the E2B, E4B and pocket drafters")


check_rows_scored(rows_scored)

# %% [markdown]
# **2.** Only the first `len(layer_types) - num_kv_shared_layers` layers compute K/V. The assistant
# reads the last of each type among them.

# %%
def kv_source_layers(layer_types: list[str], num_kv_shared_layers: int) -> dict[str, int]:
    own = layer_types[: len(layer_types) - num_kv_shared_layers]
    return {kind: max(i for i, t in enumerate(own) if t == kind) for kind in sorted(set(own))}


def check_kv_source_layers(fn) -> None:
    for name, p in [*pairs.items(), (pair.name, {"target_cfg": target.config})]:
        cfg = p["target_cfg"].get_text_config()
        types = [t.removesuffix("_attention") for t in cfg.layer_types]
        got = fn(types, cfg.num_kv_shared_layers or 0)
        want = summaries[name] if name in summaries else pocket
        assert got == want["reads_kv_of_target_layers"], (name, got)
    print("✓ kv_source_layers: E2B reads", fn([t.removesuffix("_attention") for t in
          pairs["E2B"]["target_cfg"].get_text_config().layer_types], 20))


check_kv_source_layers(kv_source_layers)

# %% [markdown]
# **3.** Replace `position` inside the loop with `torch.tensor([[len(context) - 1 + step]])`. The
# drafts may change, because the rotary embedding of the queries now moves while the target's
# keys stay where they are. The assistant was trained with a constant position
# (transformers' `SinglePositionMultiTokenCandidateGenerator` drafts that way), so it learned to
# read "how far ahead" from the hidden state it feeds itself. A moving position is an input
# it never saw in training.

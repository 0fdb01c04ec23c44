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
# # 02 · Inside the MTP drafter
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/02_inside_the_mtp_drafter.ipynb)
#
# **Goal.** Take apart Gemma 4's *assistant*, the small model Google calls an MTP head, which
# drafts tokens for its target. First we read its anatomy from the public config files of all
# four Gemma 4 pairs: layers, widths and parameter counts. The models are built on PyTorch's meta
# device, so they have every shape and no weights. Then we run one drafting round on the pocket
# pair and print each tensor's shape as it flows: concat(embedding, hidden) → `pre_projection` →
# layers that attend to the *target's* keys and values at one constant position →
# `post_projection`, which is fed back for the next draft. Last comes the centroid head, which
# scores only a slice of the vocabulary.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

env = labkit.setup()
pair = labkit.load_pair()
print(pair.label, "· the pocket pair, trained in this repo" if pair.is_pocket else "· a real Gemma 4 pair")

# %% [markdown]
# ## Four real pairs, built without their weights
#
# `data/configs/` ships the `config.json` of every Gemma 4 instruction-tuned target and its
# assistant (where each file comes from is in `data/configs/SOURCES.md`). `build_on_meta`
# builds the real transformers classes on the meta device. Every parameter gets its shape, none
# gets memory, so a 31B model "loads" in well under a second.

# %%
from labkit import architecture

pairs = {}
for short in architecture.MODELS:
    target_cfg = architecture.load_config(short)
    assistant_cfg = architecture.load_config(f"{short}-assistant")
    pairs[short] = {
        "target_cfg": target_cfg,
        "assistant_cfg": assistant_cfg,
        "target": architecture.param_counts(architecture.build_on_meta(target_cfg)),
        "assistant": architecture.param_counts(architecture.build_on_meta(assistant_cfg)),
    }


def millions(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


components = sorted({c for p in pairs.values() for c in p["target"] if c != "total"},
                    key=lambda c: -max(p["target"].get(c, 0) for p in pairs.values()))
rows = [{"target component": c, **{s: millions(p["target"].get(c, 0)) for s, p in pairs.items()}}
        for c in components + ["total"]]
print(architecture.text_table(rows))

# %% [markdown]
# The "effective" sizes in the names E2B and E4B leave out the **Per-Layer Embeddings**: one
# extra embedding table per layer, looked up rather than multiplied, so it costs memory but
# almost no compute. In 26B-A4B most of the parameters are **MoE experts**. Each token uses 8 of
# the 128, which is where "A4B" (about 4B active) comes from. 31B is dense. Now the assistants:

# %%
components = sorted({c for p in pairs.values() for c in p["assistant"] if c != "total"},
                    key=lambda c: -max(p["assistant"].get(c, 0) for p in pairs.values()))
rows = [{"assistant component": c, **{s: millions(p["assistant"].get(c, 0)) for s, p in pairs.items()}}
        for c in components + ["total"]]
rows.append({"assistant component": "assistant / target",
             **{s: f"{p['assistant']['total'] / p['target']['total']:.1%}" for s, p in pairs.items()}})
print(architecture.text_table(rows))

# %% [markdown]
# Most of every assistant is its **embedding table** (vocabulary × width), which the output head
# shares. The four decoder layers are small. The assistants carry no K/V projections at all,
# because every layer reads the target's keys and values. The only parts that connect the
# assistant to its target are the two projections between the target's width and the
# assistant's.

# %%
summaries = {s: architecture.assistant_summary(p["target_cfg"], p["assistant_cfg"]) for s, p in pairs.items()}
keys = ["target_hidden", "backbone_hidden_size", "drafter_hidden", "drafter_layers", "pre_projection",
        "post_projection", "reads_kv_of_target_layers", "kv_geometry_matches", "rows_scored"]
print(architecture.text_table([{"": k, **{s: summaries[s][k] for s in summaries}} for k in keys]))

# %% [markdown]
# `backbone_hidden_size` is the target's width: the assistant takes the target's hidden state in
# and hands one back at that width. It reads K/V from exactly two target layers, the last
# sliding-window layer and the last full-attention layer that still compute their own K/V.
# Their head dims and KV-head counts must equal the assistant's (`kv_geometry_matches`). Here
# is where those two layers sit in E2B, whose later layers share K/V too:

# %%
print("E2B target, grouped by kind of layer:")
print(architecture.text_table(architecture.layer_pattern(pairs["E2B"]["target_cfg"])))
print("\nE2B assistant:")
print(architecture.text_table(architecture.layer_table(pairs["E2B"]["assistant_cfg"])))

# %% [markdown]
# ## The pocket pair, same anatomy, smaller
#
# The pocket pair uses the same transformers classes (`Gemma4ForCausalLM` and
# `Gemma4AssistantForCausalLM`), only narrower and shallower, so everything below runs in
# seconds on a CPU.

# %%
target, drafter, tokenizer = pair.target, pair.drafter, pair.tokenizer
pocket = architecture.assistant_summary(target.config, drafter.config)
print(architecture.text_table([
    {"part": "target", **{k: v for k, v in architecture.param_counts(target).items()}},
    {"part": "drafter", **{k: v for k, v in architecture.param_counts(drafter).items()}},
], columns=["part", "embeddings", "attention", "MLP", "drafter pre/post projection", "centroid head", "total"]))
print()
print(architecture.text_table([{"": k, f"{pair.name} pair": pocket[k], "E2B": summaries["E2B"][k]} for k in keys]))

# %% [markdown]
# ## One drafting round, with live shapes
#
# A round starts after the target has read everything so far. The drafter gets three things from
# the target's forward:
#
# 1. the target's **input embedding** of the last token (scaled by √width, as the target scales it),
# 2. the target's **last hidden state** at the position before that token,
# 3. the target's **K/V** from its last sliding and last full layer (`shared_kv_states`).
#
# The drafter has no KV cache and no prefill of its own.

# %%
import torch

prompt = labkit.load_prompts("prose", limit=1)[0]
ids = tokenizer(prompt, return_tensors="pt").input_ids.to(pair.device)
with torch.inference_mode():
    out = target(input_ids=ids, output_hidden_states=True, return_shared_kv_states=True, use_cache=True)
next_token = int(out.logits[0, -1].argmax())  # the target's own next token: the round starts after it
context = ids[0].tolist() + [next_token]
hidden = out.hidden_states[-1][:, -1:]  # (1, 1, target width): last hidden state before next_token
shared_kv = out.shared_kv_states
print(f"context: {len(context)} tokens ({ids.shape[1]} prompt + the target's next token {tokenizer.decode([next_token])!r})")
print("target hidden state:", tuple(hidden.shape))
for kind, (k, v) in shared_kv.items():
    print(f"shared K/V from the target's last {kind:<17}: K {tuple(k.shape)}, V {tuple(v.shape)}"
          "   (batch, KV heads, tokens, head dim)")

# %% [markdown]
# Now the round itself: k draft steps, each one the same forward through the drafter. We hook
# the drafter's submodules to record every output shape as it happens.

# %%
k = 3
embed = target.get_input_embeddings()
position = torch.tensor([[len(context) - 1]], device=pair.device)  # constant for the whole round
mask = torch.ones(1, len(context), dtype=torch.long, device=pair.device)
layer_names = [f"model.layers.{i}" for i in range(drafter.config.get_text_config().num_hidden_layers)]
watch = ["pre_projection", "model.layers.0.self_attn.q_proj", *layer_names, "model.norm", "post_projection"]
watch += ["masked_embedding"] if drafter.masked_embedding is not None else ["lm_head"]

token, drafts = context[-1], []
with torch.inference_mode():
    for step in range(k):
        emb = embed(torch.tensor([[token]], device=pair.device))
        inputs = torch.cat([emb, hidden], dim=-1)
        print(f"step {step}: position {int(position)}, embedding of {tokenizer.decode([token])!r} {tuple(emb.shape)} "
              f"⊕ hidden {tuple(hidden.shape)} → input {tuple(inputs.shape)}")
        with architecture.record_shapes(drafter, watch) as log:
            d = drafter(inputs_embeds=inputs, position_ids=position, shared_kv_states=shared_kv, attention_mask=mask)
        token = int(d.logits[0, -1].argmax())
        hidden = d.last_hidden_state  # post_projection output: the next step's "hidden state"
        drafts.append(token)
        for name, shape in log:
            print(f"    {name:<34} → {shape}")
        print(f"    logits {tuple(d.logits.shape)} → draft {tokenizer.decode([token])!r}")
print("drafts:", [tokenizer.decode([t]) for t in drafts], f"({pair.label})")

# %% [markdown]
# Things to notice in the printout:
#
# - The input is twice the *target's* width (embedding ⊕ hidden state). `pre_projection` brings it
#   down to the drafter's width, and `post_projection` brings the result back up to the target's
#   width. That output is the "hidden state" for the next step. After the first step the
#   drafter is feeding itself.
# - Each drafter layer attends to the target's cached K/V of all context tokens. Its queries
#   have the drafter's heads, and its keys and values have the target's KV heads and head dims.
#   The drafter writes no K/V of its own, so its drafts are never attended to.
# - The position id stays the same for all k steps. The drafter learned to predict "the token after
#   the next one" from a moved hidden state, not from a moved position.
#
# After the round, the target verifies the k drafts in one forward (notebook 01 showed why that
# is cheap, and notebook 03 covers the acceptance rule).
#
# ## The centroid head: scoring a slice of the vocabulary
#
# A 262,144-row output head is the biggest matmul in a 4-layer, 256-wide drafter. The E2B and E4B
# assistants avoid most of it. Their vocabulary is sorted into clusters, a small `centroids`
# layer scores the clusters, and only the rows of the top clusters get a logit. Every other
# token gets a logit below all of them, so it can never win the argmax.

# %%
for name, s in [("E2B (real config)", summaries["E2B"]), (f"{pair.name} (loaded)", pocket)]:
    if s["centroid_head"]:
        print(f"{name}: {s['num_centroids']:,} clusters of {s['rows_per_centroid']:,} tokens; keeps the top "
              f"{s['centroids_kept']} → scores {s['rows_scored']:,} of {s['vocab_size']:,} rows "
              f"({s['fraction_scored']:.1%}) per draft step")
for short in ("26B-A4B", "31B"):
    s = summaries[short]
    print(f"{short} (real config): no centroid head, scores all {s['rows_scored']:,} rows")

# %% [markdown]
# Let's check it live on the pocket drafter. We replay the round, count how many logits at each
# step are real scores rather than the fill value, and compare the centroid head's pick with
# the full output head's pick (every row scored).

# %%
if drafter.masked_embedding is not None:
    captured = {}  # the drafter's final hidden state, as the centroid head receives it
    hook = drafter.masked_embedding.register_forward_hook(lambda _m, args, _out: captured.update(h=args[0]))
    token, hidden, agree, scored = context[-1], out.hidden_states[-1][:, -1:], 0, []
    try:
        with torch.inference_mode():
            for step in range(k):
                inputs = torch.cat([embed(torch.tensor([[token]], device=pair.device)), hidden], dim=-1)
                d = drafter(inputs_embeds=inputs, position_ids=position, shared_kv_states=shared_kv, attention_mask=mask)
                logits = d.logits[0, -1]
                full = captured["h"][0, -1] @ drafter.lm_head.weight.T  # every row scored
                scored.append(int((logits > logits.min()).sum()))
                agree += int(full.argmax()) == int(logits.argmax())
                token, hidden = int(logits.argmax()), d.last_hidden_state
    finally:
        hook.remove()
    print(f"rows with a real logit at each step: {scored} of {logits.numel():,} "
          f"(expected {pocket['rows_scored']:,}; {pair.name} pair, measured)")
    ordering = drafter.masked_embedding.token_ordering
    if sorted(ordering.tolist()) != list(range(ordering.numel())):
        print("note: this drafter's token_ordering is not a permutation of the vocabulary, so clusters "
              "overlap and fewer rows get a logit (an untrained placeholder drafter?)")
    print(f"the centroid head's pick equals the full head's pick on {agree} of {k} steps")

# %% [markdown]
# ## Summary
#
# - Every Gemma 4 assistant is a 4-layer Gemma 4 decoder ([sliding × 3, full]) with **no K/V of its
#   own**: each layer's queries attend to the target's K/V from its last sliding and last full layer.
# - Its input is concat(target embedding of the last token, target hidden state), projected
#   from 2 × target width to the drafter's width. Its output is projected back to the target's
#   width and fed in as the next step's hidden state. The position id stays constant for the round.
# - Parameter counts from the real configs: the assistants are a fraction of a percent to a few
#   percent of their targets, and most of an assistant is its embedding table.
# - The E2B and E4B assistants score only the rows of the top clusters (the centroid head). The
#   26B-A4B and 31B assistants score the whole vocabulary.

# %% [markdown]
# ## Exercises
#
# **1.** Write `rows_scored(vocab_size, num_centroids, top_k)`: how many vocabulary rows the centroid
# head scores per draft step. Then uncomment the checker, which compares your function with every
# shipped config and with the pocket drafter.

# %%
def rows_scored(vocab_size: int, num_centroids: int, top_k: int) -> int:
    raise NotImplementedError("each centroid owns vocab_size / num_centroids rows")


def check_rows_scored(fn) -> None:
    for name, s in [*summaries.items(), (pair.name, pocket)]:
        if s["centroid_head"]:
            assert fn(s["vocab_size"], s["num_centroids"], s["centroids_kept"]) == s["rows_scored"], name
    print("✓ rows_scored matches the E2B, E4B and pocket drafters")


# check_rows_scored(rows_scored)

# %% [markdown]
# **2.** Write `kv_source_layers(layer_types, num_kv_shared_layers)`, returning the indices of the two
# target layers whose K/V the assistant reads, as a dict `{"sliding": i, "full": j}`. These are the
# last layer of each type among the layers that compute their own K/V (the first
# `len(layer_types) - num_kv_shared_layers`).

# %%
def kv_source_layers(layer_types: list[str], num_kv_shared_layers: int) -> dict[str, int]:
    raise NotImplementedError("look only at the layers before the KV-shared ones")


def check_kv_source_layers(fn) -> None:
    for name, p in [*pairs.items(), (pair.name, {"target_cfg": target.config})]:
        cfg = p["target_cfg"].get_text_config()
        types = [t.removesuffix("_attention") for t in cfg.layer_types]
        got = fn(types, cfg.num_kv_shared_layers or 0)
        want = summaries[name] if name in summaries else pocket
        assert got == want["reads_kv_of_target_layers"], (name, got)
    print("✓ kv_source_layers: E2B reads", fn([t.removesuffix("_attention") for t in
          pairs["E2B"]["target_cfg"].get_text_config().layer_types], 20))


# check_kv_source_layers(kv_source_layers)

# %% [markdown]
# **3.** (Open) Change the round above to advance the position id by one each step, instead
# of keeping it constant. Do the pocket drafter's drafts change? Why might a drafter trained
# with a constant position draft worse with a moving one?

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
# # 02 · Inside the MTP drafter
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/02_inside_the_mtp_drafter.ipynb)
#
# **Goal.** Take apart Gemma 4's *assistant*, the small drafter Google calls an MTP head
# (Multi-Token Prediction: it predicts several tokens ahead of its target). The big picture
# first: one drafting round on the pocket pair, drawn with the shapes measured live, as data flows
# through it: concat(embedding, hidden) → `pre_projection` → layers that attend to the *target's*
# keys and values at one constant position → `post_projection`, which is fed back for the next
# draft. Then where this design sits among the speculative decoders before it (Leviathan et al.
# and Chen et al., Medusa, EAGLE, DeepSeek-V3's MTP modules). Then the anatomy of all four real
# Gemma 4 pairs from their public config files (layers, widths and parameter counts, set against
# what Google's model cards publish), and the centroid head, which scores only a slice of the
# vocabulary.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # the pair labkit.load_pair() loads (LABKIT_PAIR=..., if set, wins)
pair = labkit.load_pair()
print(pair.label, "· the pocket pair, trained in this repo" if pair.is_pocket else "· a real Gemma 4 pair")

# %% [markdown]
# ## The big picture: one drafting round, with live shapes
#
# Everything in this section runs on the **pocket pair**, a small Gemma 4 target and assistant
# built from the same transformers classes as the real ones (a later section sets the two side
# by side). A round starts after the target has read everything so far. The drafter gets three
# things from the target's forward:
#
# 1. the target's **input embedding** of the last token (scaled by √width, as the target scales it),
# 2. the target's **last hidden state** at the position before that token,
# 3. the target's **K/V** from its last sliding and last full layer (`shared_kv_states`).
#
# The drafter has no KV cache and no prefill of its own. `diagram.measure_round` runs one
# round of k = 3 drafts exactly as labkit's glass-box loop does, with hooks on the drafter's
# submodules that record every shape as it happens; `diagram.round_figure` draws the path.

# %%
from labkit import architecture, diagram

prompt = labkit.load_prompts("prose", limit=1)[0]
k = 3
measured = diagram.measure_round(pair, prompt, k=k)
diagram.round_figure(measured, label=f"{pair.label}, greedy drafts")

# %% [markdown]
# Step by step, the same round: the token each step reads, the position id, and the draft.

# %%
architecture.Table([{"step": i + 1, "reads token": repr(s["token_in_text"]), "position id": s["position"],
                     "hidden state in": "the target's" if i == 0 else "post_projection of step " + str(i),
                     "draft": repr(s["draft_text"])} for i, s in enumerate(measured["steps"])],
                   caption=f"One round on the {pair.label}, k = {k}, greedy")

# %% [markdown]
# Things to notice:
#
# - The input is twice the *target's* width (embedding ⊕ hidden state). `pre_projection` brings it
#   down to the drafter's width, and `post_projection` brings the result back up to the target's
#   width. That output is the "hidden state" for the next step. After the first step the
#   drafter is feeding itself.
# - Each drafter layer attends to the target's cached K/V of the context. Its queries have the
#   drafter's heads, and its keys and values have the target's KV heads and head dims. The
#   drafter writes no K/V of its own, so its drafts are never attended to.
# - The position id stays the same for all k steps. The drafter learned to predict "the token after
#   the next one" from a moved hidden state, not from a moved position.
#
# After the round, the target verifies the k drafts in one forward (chapter 01 showed why that
# is cheap, and chapter 03 covers the acceptance rule).

# %% [markdown]
# ## Where Gemma 4's assistant sits among speculative decoders
#
# Every method below verifies drafts the same way, with the target's one forward over the drafted
# tokens and the acceptance rule of chapter 03. They differ in where the drafts come from.
#
# - **A separate draft model** ([Leviathan et al. 2023](https://arxiv.org/abs/2211.17192),
#   [Chen et al. 2023](https://arxiv.org/abs/2302.01318)): a smaller language model of the same
#   vocabulary drafts autoregressively with its own weights and its own KV cache, reading only
#   tokens. These papers also gave the lossless acceptance rule and the expected-speedup formula
#   chapters 04 and 05 use.
# - **Medusa** ([Cai et al. 2024](https://arxiv.org/abs/2401.10774)): extra decoding heads on the
#   target's last hidden state; head i guesses the token i + 1 steps ahead, all heads at once and
#   independently of each other. Their top candidates form a tree that the target verifies in one
#   forward with **tree attention** (each candidate attends only to its own branch).
# - **EAGLE** ([Li et al. 2024](https://arxiv.org/abs/2401.15077); EAGLE-2's dynamic trees,
#   [2406.16858](https://arxiv.org/abs/2406.16858)): draft from the target's **features**. A small
#   head takes the target's last hidden state together with the embedding of the token that
#   follows it and predicts the next feature, autoregressively, feeding its own output back in.
# - **DeepSeek-V3's MTP modules** ([DeepSeek-AI 2024](https://arxiv.org/abs/2412.19437), §2.2): one
#   module per extra depth, each a transformer block that combines the previous depth's hidden
#   state with the next token's embedding through a projection, sharing the main model's embedding
#   and output head. They are trained *with* the main model as an extra objective, and can serve as
#   drafters at inference.
#
# **Gemma 4's assistant** takes from both of the last two: like EAGLE and DeepSeek's modules it
# drafts from the target's hidden state concatenated with a token embedding, projected down, and
# feeds its own projected output back as the next step's hidden state (the figure above). Unlike
# them it keeps **no KV cache of its own**: its four layers attend to the target's keys and values,
# at one constant position for the whole round. One assistant serves every depth (DeepSeek-V3 has a
# module per depth), it ships as a separate checkpoint next to its target, and it drafts a single
# chain, no tree (transformers drafts one chain; SGLang runs it with `--speculative-eagle-topk 1`).
#
# **Two numbers to keep apart.** This lab's `tau` is new tokens per target forward **including the
# prefill** (the forward that reads the prompt and yields one token). EAGLE's "average acceptance
# length τ" and Spec-Bench's "mean accepted tokens" count tokens per drafting round **after** the
# prefill: accepted drafts plus the target's own token (`metrics.accepted_length`; vLLM's "mean
# acceptance length" is the same ratio over the rounds that drafted). On the same recorded rounds:

# %%
from labkit import metrics

recorded, _ = labkit.load_traces("acceptance")
for name in ("code, k = 4", "prose, k = 4"):
    traces = recorded[name]
    print(f"{pair.label}, {name} ({len(traces)} prompts × 64 tokens): the lab's tau "
          f"{metrics.interval(metrics.tau, traces)}, a paper's accepted length per round "
          f"{metrics.interval(metrics.accepted_length, traces)}")
print("(90 % bootstrap intervals over prompts; the gap is the prefill's single token, and shrinks with longer outputs)")


# %% [markdown]
# ## The anatomy of four real pairs, built without their weights
#
# `data/configs/` ships the `config.json` of every Gemma 4 instruction-tuned target and its
# assistant (where each file comes from is in `data/configs/SOURCES.md`). `build_on_meta`
# builds the real transformers classes on PyTorch's meta device. Every parameter gets its shape,
# none gets memory, so a 31B model "loads" in well under a second.

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


def billions(n: int) -> str:
    return "–" if n == 0 else f"{n / 1e9:.3f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


components = sorted({c for p in pairs.values() for c in p["target"] if c != "total"},
                    key=lambda c: -max(p["target"].get(c, 0) for p in pairs.values()))
sizes = {s: architecture.sizes(p["target"]) for s, p in pairs.items()}
rows = [{"target component": c, **{s: billions(p["target"].get(c, 0)) for s, p in pairs.items()}} for c in components]
rows += [{"target component": "total: every parameter", **{s: billions(z["total"]) for s, z in sizes.items()}},
         {"target component": "text model: total − vision and audio towers",
          **{s: billions(z["text"]) for s, z in sizes.items()}},
         {"target component": "effective: text − per-layer embedding table",
          **{s: billions(z["effective"]) for s, z in sizes.items()}}]
architecture.Table(rows, caption="Gemma 4 targets, counted by labkit from the shipped configs (meta device)")

# %% [markdown]
# A model card's size is one of these three counts, and which one matters. Google's model cards
# ([E2B](https://huggingface.co/google/gemma-4-E2B-it), [E4B](https://huggingface.co/google/gemma-4-E4B-it),
# [26B-A4B](https://huggingface.co/google/gemma-4-26B-A4B-it), [31B](https://huggingface.co/google/gemma-4-31B-it))
# give E2B and E4B an **effective** size, which leaves out the **per-layer embedding table** (one
# extra embedding per layer, looked up rather than multiplied, so it costs memory but almost no
# compute) *and* the vision and audio encoders; next to it they give the total with everything.
# The 26B-A4B and 31B sizes count the **text model** only. In 26B-A4B most parameters are
# **MoE experts**: each token uses 8 of the 128, which is where "A4B" (about 4B active) comes
# from. 31B is dense. Each published figure next to the count of the same kind:

# %%
published = [
    {"model": s, "model card says": f"{v / 1e9:.1f}B {kind}", "labkit counts": billions(sizes[s][kind]),
     "difference": f"{sizes[s][kind] / v - 1:+.1%}"}
    for s, kinds in architecture.PUBLISHED_SIZES.items() for kind, v in kinds.items()
]
architecture.Table(published, caption="Published sizes against labkit's count of the same kind",
                   note="Cards round to two digits. Counting the whole vision tower into 26B-A4B would give "
                        f"{billions(sizes['26B-A4B']['total'])}, not the card's 25.2B: compare like with like.")

# %% [markdown]
# Now the assistants:

# %%
components = sorted({c for p in pairs.values() for c in p["assistant"] if c != "total"},
                    key=lambda c: -max(p["assistant"].get(c, 0) for p in pairs.values()))
rows = [{"assistant component": c, **{s: billions(p["assistant"].get(c, 0)) for s, p in pairs.items()}}
        for c in components + ["total"]]
rows.append({"assistant component": "assistant / target text model",
             **{s: f"{p['assistant']['total'] / sizes[s]['text']:.1%}" for s, p in pairs.items()}})
architecture.Table(rows, caption="Gemma 4 assistants (drafters), counted from the shipped configs")

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
architecture.Table([{"": k, **{s: summaries[s][k] for s in summaries}} for k in keys],
                   caption="What each assistant reads from its target (projections as in → out)")

# %% [markdown]
# `backbone_hidden_size` is the target's width: the assistant takes the target's hidden state in
# and hands one back at that width. It reads K/V from exactly two target layers, the last
# sliding-window layer and the last full-attention layer that still compute their own K/V.
# Their head dims and KV-head counts must equal the assistant's (`kv_geometry_matches`). Here
# is where those two layers sit in E2B, whose later layers share K/V too:

# %%
from IPython.display import display

display(architecture.Table(architecture.layer_pattern(pairs["E2B"]["target_cfg"]),
                           caption="E2B target, grouped by kind of layer"))
architecture.Table(architecture.layer_table(pairs["E2B"]["assistant_cfg"]), caption="E2B assistant")

# %% [markdown]
# ## The pocket pair, same anatomy, smaller
#
# The pocket pair uses the same transformers classes (`Gemma4ForCausalLM` and
# `Gemma4AssistantForCausalLM`), only narrower and shallower, so everything below runs in
# seconds on a CPU.

# %%
target, drafter, tokenizer = pair.target, pair.drafter, pair.tokenizer
pocket = architecture.assistant_summary(target.config, drafter.config)
display(architecture.Table([
    {"part": "target", **architecture.param_counts(target)},
    {"part": "drafter", **architecture.param_counts(drafter)},
], columns=["part", "embeddings", "attention", "MLP", "drafter pre/post projection", "centroid head", "total"],
    caption=f"{pair.label}: parameters"))
architecture.Table([{"": k, pair.label: pocket[k], "E2B": summaries["E2B"][k]} for k in keys],
                   caption=f"{pair.label} next to E2B")

# %% [markdown]
# ## The centroid head: scoring a slice of the vocabulary
#
# A 262,144-row output head is the biggest matmul in a 4-layer, 256-wide drafter. The E2B and E4B
# assistants avoid most of it. Their vocabulary is sorted into clusters, a small `centroids`
# layer scores the clusters, and only the rows of the top clusters get a logit. Every other
# token gets a logit below all of them, so it can never win the argmax.

# %%
architecture.Table(
    [{"assistant": name, "centroid head": s["centroid_head"], "clusters": s["num_centroids"],
      "rows per cluster": s["rows_per_centroid"], "clusters kept": s["centroids_kept"],
      "rows scored per step": s["rows_scored"], "of vocabulary": s["vocab_size"],
      "share": f"{s['fraction_scored']:.1%}"}
     for name, s in [*((f"{n} (real config)", s) for n, s in summaries.items()), (f"{pair.label} (loaded)", pocket)]],
    caption="What the output head scores per draft step")

# %% [markdown]
# Let's check it live on the pocket drafter. We replay the round, count how many logits at each
# step are real scores rather than the fill value, and compare the centroid head's pick with
# the full output head's pick (every row scored).

# %%
import torch

if drafter.masked_embedding is not None:
    ids = tokenizer(prompt, return_tensors="pt").input_ids.to(pair.device)
    with torch.inference_mode():
        out = target(input_ids=ids, output_hidden_states=True, return_shared_kv_states=True, use_cache=True)
    context = ids[0].tolist() + [int(out.logits[0, -1].argmax())]
    embed = target.get_input_embeddings()
    position = torch.tensor([[len(context) - 1]], device=pair.device)
    mask = torch.ones(1, len(context), dtype=torch.long, device=pair.device)
    captured = {}  # the drafter's final hidden state, as the centroid head receives it
    hook = drafter.masked_embedding.register_forward_hook(lambda _m, args, _out: captured.update(h=args[0]))
    token, hidden, agree, scored = context[-1], out.hidden_states[-1][:, -1:], 0, []
    try:
        with torch.inference_mode():
            for step in range(k):
                inputs = torch.cat([embed(torch.tensor([[token]], device=pair.device)), hidden], dim=-1)
                d = drafter(inputs_embeds=inputs, position_ids=position, shared_kv_states=out.shared_kv_states,
                            attention_mask=mask)
                logits = d.logits[0, -1]
                full = captured["h"][0, -1] @ drafter.lm_head.weight.T  # every row scored
                scored.append(int((logits > logits.min()).sum()))
                agree += int(full.argmax()) == int(logits.argmax())
                token, hidden = int(logits.argmax()), d.last_hidden_state
    finally:
        hook.remove()
    print(f"rows with a real logit at each step: {scored} of {logits.numel():,} "
          f"(expected {pocket['rows_scored']:,}; {pair.label}, measured)")
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
# - Among speculative decoders it is closest to EAGLE and DeepSeek-V3's MTP modules (drafting from
#   the target's hidden state), but it reads the target's KV cache instead of keeping its own, one
#   assistant serves every depth, and it drafts one chain, not a Medusa/EAGLE-2 tree.
# - Papers quote accepted length per round (prefill left out); the lab's `tau` counts the prefill.
# - Parameter counts from the real configs, compared like with like: "effective" (E2B, E4B) leaves
#   out the per-layer embedding table and the vision and audio towers; 26B-A4B's and 31B's
#   published sizes are text-model counts. Each assistant is a few percent of its target's text
#   model or less, and most of an assistant is its embedding table.
# - The E2B and E4B assistants score only the rows of the top clusters (the centroid head). The
#   26B-A4B and 31B assistants score the whole vocabulary.

# %% [markdown]
# ## Exercises
#
# **1. A drafting round from the parts.** Write `mtp_round(drafter, embed, ids, hidden, shared_kv, k)`
# without calling `drafter(...)` itself: use its parts. `drafter.pre_projection` and
# `drafter.post_projection` are linear layers; `architecture.assistant_layers(drafter, x, shared_kv,
# position_ids, attention_mask)` runs the four layers (queries from `x`, keys and values from the
# target); `architecture.assistant_logits(drafter, h)` is the output head. `embed` is the target's
# input embedding, `ids` the context (its last token not yet through the target), `hidden` the
# target's last hidden state `(1, 1, target width)`. Return the `k` greedy drafts. The checker
# compares you with labkit's `glassbox.MTPDrafter` on three prompts.
#
# **2.** Write `rows_scored(vocab_size, num_centroids, top_k)`: how many vocabulary rows the centroid
# head scores per draft step.
#
# **3.** Write `kv_source_layers(layer_types, num_kv_shared_layers)`, returning the indices of the two
# target layers whose K/V the assistant reads, as a dict `{"sliding": i, "full": j}`.
#
# **4. Predict, then measure.** The assistant was trained with one constant position id per round.
# Suppose it instead got a position that advances by one per draft, as an ordinary decoder's
# would. Of the 4 × 6 = 24 drafts it makes on six prompts (k = 4), how many will change? Write
# your guess, then uncomment the measurement (`parts.mtp_drafts` drafts either way).

# %%
from labkit import checks, parts

check_1 = checks.check_mtp_round  # uncomment the calls at the bottom once your code is ready
check_2 = checks.check_rows_scored
check_3 = checks.check_kv_source_layers
check_4 = checks.check_prediction


def mtp_round(drafter, embed, ids, hidden, shared_kv, k):
    raise NotImplementedError("follow the figure: what goes into pre_projection, which position id does "
                              "every step use, and which output becomes the next step's hidden state?")


def rows_scored(vocab_size, num_centroids, top_k):
    raise NotImplementedError("how many rows does one cluster own, and how many clusters are kept?")


def kv_source_layers(layer_types, num_kv_shared_layers):
    raise NotImplementedError("which layers compute their own K/V? of those, which is the last of each type?")


predicted = {"drafts that change": None}  # your guess, out of 24

# check_1(mtp_round, pair)
# check_2(rows_scored)
# check_3(kv_source_layers)
# contexts = [tokenizer(p).input_ids for p in labkit.load_prompts("prose", limit=6)]
# changed = sum(a != b for ids in contexts for a, b in zip(parts.mtp_drafts(pair, ids, 4),
#                                                         parts.mtp_drafts(pair, ids, 4, position_step=1)))
# check_4(predicted, {"drafts that change": changed})

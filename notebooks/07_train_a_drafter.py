# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Train a drafter: distillation from the target, live
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/07_train_a_drafter.ipynb)
#
# **Goal.** A drafter is worth exactly as much as its guesses of what the *target* will say next.
# Here we train one from random weights, live, on a laptop CPU (each step's time is printed as it
# runs). The target writes the training text itself (greedy and sampled). The drafter runs exactly as it does at
# inference, from every position at once, and each of its `k` draft steps learns the target's
# next-token distribution (a KL divergence). Then we race the fresh drafter against an untrained
# one and against the pair's own, trained by `scripts/train_drafter.py` on more text for longer.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

env = labkit.setup()

# %%
import copy
import time
from dataclasses import replace

import torch
from tqdm.auto import tqdm

from labkit import distill, generation, metrics, plots

# The pocket pair runs offline; a real pair: pair = labkit.load_pair("google/gemma-4-E2B-it")
pair = labkit.load_pair()
target, tok = pair.target, pair.tokenizer
k = 4  # draft steps trained and used per round, the lab's default
tag = pair.label
print(pair)

# %% [markdown]
# ## The target writes the lesson
#
# A drafter needs no corpus of its own. What it must imitate is the target, so the best training
# text is the target's own writing. Greedy continuations teach what greedy decoding will ask.
# Continuations sampled at temperature 0.8 teach the rest of the distribution, which is what
# sampled decoding will ask. The seeds are the first 12 tokens of the lab's held-out prompts: the
# first 16 prompts of each kind for training, the last 8 for checking afterwards. Each row is a
# seed and 48 tokens the target wrote after it.

# %%
def seeds(kind: str, rows: slice) -> torch.Tensor:
    """(n, 12): the first 12 tokens (the shortest prompt has 14) of some held-out prompts of one kind."""
    return torch.cat([generation.encode(pair, p)[:, :12] for p in generation.load_prompts(kind)[rows]])


train_seeds = torch.cat([seeds(kind, slice(0, 16)) for kind in ("prose", "code")])  # (32, 12)
check_seeds = torch.cat([seeds(kind, slice(16, 24)) for kind in ("prose", "code")])  # (16, 12)
new_tokens = 48
first = train_seeds.shape[1] - 1  # rounds start at a seed's last token, as at inference

t0 = time.perf_counter()
greedy_rows = distill.continuations(target, train_seeds, new_tokens)  # (32, 60)
sampled_rows = torch.cat([distill.continuations(target, train_seeds, new_tokens, temperature=0.8, seed=s)
                          for s in range(3)])  # (96, 60): three samples per seed
train_data = torch.cat([greedy_rows, sampled_rows])
check_data = torch.cat([distill.continuations(target, check_seeds, new_tokens),
                        distill.continuations(target, check_seeds, new_tokens, temperature=0.8, seed=99)])
print(f"the target wrote {len(train_data)} training rows and {len(check_data)} check rows of "
      f"{train_data.shape[1]} tokens in {time.perf_counter() - t0:.1f} s")
print("\na greedy row:\n" + tok.decode(greedy_rows[0]))
print("\na sampled row from the same seed:\n" + tok.decode(sampled_rows[0]))

# %% [markdown]
# ## A fresh drafter
#
# The same configuration as the pair's own drafter: 4 layers [sliding × 3, full], reading the
# target's K/V. One change: it scores the whole vocabulary with its `lm_head`. The centroid head
# (`02_inside_the_mtp_drafter`) is trained in a second stage, after the body
# (`scripts/train_drafter.py` does both), and this notebook stops before that.
#
# `distill.agreement` measures what acceptance will be: from every position of the check rows,
# how often draft step j equals the target's greedy choice, given that steps 1 … j − 1 were right.

# %%
config = copy.deepcopy(pair.drafter.config)
config.use_ordered_embeddings = False  # the full output head
torch.manual_seed(0)
untrained = type(pair.drafter)(config).eval()
fresh = copy.deepcopy(untrained)
print(f"drafter: {sum(p.numel() for p in fresh.parameters()) / 1e6:.2f}M parameters; agreement per draft "
      f"step before training: {distill.agreement(target, untrained, check_data, k, first=first)}")

# %% [markdown]
# ## Train it, live
#
# One step of `distill.fit`:
#
# 1. pick 8 rows and take the frozen target's view of them (`distill.target_view`: its input
#    embeddings, last hidden states, K/V and next-token log-probabilities). The target never
#    changes and the rows are fixed, so `distill.CachedViews` runs the target over every row once,
#    before training, and each step looks its rows up instead of running the target again;
# 2. run the drafter's `k` steps from every position at once, as a round starting there would
#    (`distill.draft_steps`): concat(embedding, hidden) → `pre_projection` → layers reading the
#    target's K/V at a constant position → `post_projection`, fed back as the next hidden state
#    (from positions after the seed only: `first`, where rounds start at inference);
# 3. move each step's distribution towards the target's: KL(target ‖ drafter), averaged over the
#    steps (`distill.distill_loss`), one AdamW step.
#
# A step is a dozen lines (`distill.step_loss??`); the loop around it (AdamW, warm-up then cosine,
# clipping, checkpoints a killed run resumes from) is `labkit.fit.fit??`, the same loop that trained
# the pocket pairs.

# %%
steps = 150
t0 = time.perf_counter()
views = distill.CachedViews(target, train_data)  # the target's forward over every row, once
cache_seconds = time.perf_counter() - t0
bar = tqdm(total=steps, desc="distil")


def show(step: int, kl: float, agree: list[float]) -> None:
    bar.update(1)
    bar.set_postfix(kl=f"{kl:.2f}", agree_step1=f"{agree[0]:.2f}")


t0 = time.perf_counter()
history = distill.fit(fresh, target, views, steps=steps, k=k, first=first, every=show)
bar.close()
train_seconds = time.perf_counter() - t0
fresh.eval()
print(f"target views of {len(train_data)} rows: {cache_seconds:.1f} s; {steps} steps: {train_seconds:.0f} s "
      f"on {env.device} ({train_seconds / steps:.2f} s per step)")
plots.distill_figure(history, label=f"{tag}, {len(train_data)} rows of {train_data.shape[1]} tokens, "
                                    f"8 rows a step, {steps} steps in {train_seconds:.0f} s")

# %% [markdown]
# ## Did it learn the target, or the training rows?
#
# Agreement on the check rows, which continue prompts the fresh drafter never saw: untrained,
# fresh, and the pair's own drafter (with its centroid head, as it drafts at inference).

# %%
agreement = {
    "untrained": distill.agreement(target, untrained, check_data, k, first=first),
    f"fresh ({steps} steps, {train_seconds:.0f} s)": distill.agreement(target, fresh, check_data, k, first=first),
    "the pair's own": distill.agreement(target, pair.drafter, check_data, k, first=first,
                                        ordered=bool(pair.drafter.config.use_ordered_embeddings)),
}
for name, agree in agreement.items():
    print(f"{name:>24s}: " + "  ".join(f"step {j}: {a:.2f}" for j, a in enumerate(agree, start=1)))

# %% [markdown]
# ## The race
#
# Now the real thing: transformers' assisted `generate` with each drafter, on the full check prompts
# (3 prose, 3 code), greedy. Whatever the drafter, the tokens must be the target's own: a bad
# drafter costs speed, never correctness. What changes is how many drafts survive.

# %%
race_prompts = generation.load_prompts("prose")[16:19] + generation.load_prompts("code")[16:19]
plain = [generation.run(pair, p, path="plain", max_new_tokens=48, stop_at_eos=False) for p in race_prompts]
drafters = {"untrained": untrained, "fresh": fresh, "the pair's own": pair.drafter}
race = {}
for name, drafter in drafters.items():
    with_drafter = replace(pair, drafter=drafter)
    race[name] = [generation.run(with_drafter, p, k=k, max_new_tokens=48, stop_at_eos=False)
                  for p in race_prompts]
    same = all(a.new_ids == b.new_ids for a, b in zip(plain, race[name]))
    tau, speedup = metrics.interval(metrics.tau, race[name]), metrics.interval(metrics.speedup, plain, race[name])
    print(f"{name:>15s}: tau {tau}, α {metrics.alpha(race[name]):.2f}, speedup {speedup}x, "
          f"same tokens as the target alone: {same}")
    assert same, "speculative decoding changed the target's greedy output"
sample = f"{len(race_prompts)} prompts × 48 tokens, {race['fresh'][0].decoding}, k = {k}"
print(f"({tag}; {sample}; {tau.sample.split(', ', 2)[-1]} over the prompts)")
fig = plots.acceptance_figure(race, theory=False)
plots.styled(fig, f"Acceptance by draft position, per drafter<br><sup>{tag}; {sample}</sup>").update_layout(margin_t=110)

# %% [markdown]
# The untrained drafter's drafts are noise: its `tau` sits near one token per target forward, so
# it pays for drafting and gets almost nothing back; its speedup above says whether that made
# decoding slower than the target alone here (`05_speed_and_cost` explains the cost). The fresh
# drafter, after the training time printed above, keeps real drafts: compare its `tau` interval
# with the untrained one's. How far the pair's own drafter is ahead depends on how long it was
# trained: a drafter of width 256, four
# `scripts/train_drafter.py` runs each going on from the one before, 9,250 steps in all, the first
# two of 16 rows, the last two of 64, on the target's continuations of up to 20,480 prompts; its
# later stages train on the continuations alone, then add greedy continuations of short prompts,
# like the lab's, with a cross-entropy on the target's argmax added to the KL; last, one scale on
# its logits for sampled drafting (`data/pocket/MODEL_CARD.md` tells the whole story). The quick
# recipe (`--quick`) runs 130 steps at width 128.

# %% [markdown]
# ## Greedy needs the argmax, sampling the whole distribution
#
# Greedy verification keeps a draft when it *is* the target's argmax: only the drafter's argmax
# counts. Sampling keeps a draft x drawn from q with probability min(1, p(x) / q(x))
# (`03_verify_and_accept`), so a step keeps Σ min(p, q) on average: now the drafter's confidence
# counts too, and a q that is too flat or too sharp loses drafts that a rescaled q would keep.
# `distill.logit_scale` multiplies the drafter's logits by a few factors s and measures, on the
# check rows the target sampled, how many of a round's k drafts sampling at 0.8 would keep. A
# positive s moves no argmax, so greedy drafting stays exactly as it was. The KL alone pulls q
# towards p, so `fresh` should need little rescaling. The full recipe also adds a cross-entropy on
# the target's argmax (`distill.fit(..., hard=...)`), which sharpens q for greedy drafting, and then
# fits s as its last stage to give sampling back what that costs.

# %%
sampled_check = check_data[len(check_seeds):]  # the check rows the target sampled at 0.8
best, kept = distill.logit_scale(target, fresh, sampled_check, k, temperature=0.8,
                                 first=11,  # rounds start at a seed's last token, as at inference
                                 scales=torch.tensor([0.5, 0.75, 1.0, 1.5, 2.0, 3.0]))
print(f"drafts kept per round of {k} at T = 0.8, by scale on the fresh drafter's logits:")
print("  " + "  ".join(f"x{s:g}: {v:.2f}" for s, v in kept.items()) + f"   (best: x{best:g})")

# %% [markdown]
# ## Summary
#
# - A drafter is trained by **distillation**: the target, frozen, is the teacher, and it also
#   writes the training text, greedy and sampled, so the drafter serves both decoding modes.
# - Training runs the drafter **exactly as at inference**, from every position at once: the same
#   inputs (embedding + target hidden state), the target's K/V, a constant position,
#   `post_projection` fed back. Step j learns the target's distribution j tokens ahead.
# - `distill.agreement` on held-out rows predicts acceptance; the race measures it. The output
#   is the target's own with any drafter, trained or not: only the speed depends on it.
# - Greedy acceptance depends on the drafter's argmax alone, sampled acceptance on its whole
#   distribution: one factor on its logits (`distill.logit_scale`) tunes the second without
#   touching the first.
#
# ## Exercises
#
# **1.** Write `kl(log_p, log_q)`: KL(p ‖ q) = Σ p · (log p − log q) over the last (vocabulary)
# axis, from log-probabilities. It is the loss every draft step minimises. Uncomment the checker.

# %%
def kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError("you are given logs: how do you get p back? Which axis do you sum over, "
                              "and what shape should the result have?")


from labkit import checks  # noqa: E402

# checks.check_kl(kl)

# %% [markdown]
# **2.** Predict, then measure. Train a second fresh drafter on the greedy rows only
# (`greedy_rows`), for the same number of steps. Before you measure, write down the `tau` you
# expect for it and for `fresh` at temperature 0.8 in `predicted_tau`; then measure both with
# `generation.run(..., temperature=0.8)` (sampled, lossless by default) and pass both dicts to
# the checker. Which drafter wins when the target samples, and why? The solution runs it.
#
# **3.** Predict, then measure. Train a fresh drafter with `k=1`: only the first draft step
# learns. Then draft with `k = 4` (greedy). Given that its first draft was kept, will its second
# draft be kept more often, as often, or less often than the first? Write your prediction, then
# pass it and the traces to the checker, which measures it. (Hint: what does step 2 read that
# step 1 did not, and which of its inputs did training with `k=1` never reach?)

# %%
predicted_tau = {"greedy rows only": None, "greedy + sampled rows": None}  # your guesses, before measuring
# measured_tau = {"greedy rows only": ..., "greedy + sampled rows": ...}  # metrics.tau of each drafter's traces
# checks.check_prediction(predicted_tau, measured_tau)

prediction = {"step_2": None}  # "more", "as often" or "less"
# one_step = type(pair.drafter)(config); distill.fit(one_step, target, views, steps=steps, k=1, first=first)
# traces = [generation.run(replace(pair, drafter=one_step.eval()), p, k=4, max_new_tokens=48,
#                          stop_at_eos=False) for p in race_prompts]
# checks.check_one_step_prediction(prediction, traces)

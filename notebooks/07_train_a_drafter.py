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
# # 07 · Train a drafter: distillation from the target, live
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/07_train_a_drafter.ipynb)
#
# **Goal.** A drafter is worth exactly as much as its guesses of what the *target* will say next.
# Here we train one from random weights, live, on a laptop CPU or on the GPU the pair runs on (each
# step's time is printed as it runs). The target writes the training text itself (greedy and sampled). The drafter runs exactly as it does at
# inference, from every position at once, and each of its `k` draft steps learns the target's
# next-token distribution (a KL divergence). Then we race the fresh drafter against an untrained
# one and against the pair's own, trained by `scripts/train_drafter.py` on more text for longer.
# The whole chapter is sized to run top to bottom in about two minutes on two CPU cores.

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
import copy
import time
from dataclasses import replace

import torch
from tqdm.auto import tqdm

from labkit import distill, generation, metrics, plots

# The pair chosen in the setup cell: the pocket pair (offline) unless PAIR or LABKIT_PAIR names another
pair = labkit.load_pair()
target, tok = pair.target, pair.tokenizer
recipe = distill.LiveRecipe()  # the data and training of this chapter, one field per choice
k = recipe.k  # draft steps trained and used per round, the lab's default
tag = pair.label
print(pair)
print(recipe)
if not pair.is_pocket:
    print(f"The recipe and the sizes this chapter quotes were chosen on the pocket pair; here the same recipe "
          f"trains a fresh drafter for {tag}, and 'the pair's own' drafter below is {tag}'s.")

# %% [markdown]
# ## The target writes the lesson
#
# A drafter needs no corpus of its own. What it must imitate is the target, so the best training
# text is the target's own writing. Greedy continuations teach what greedy decoding will ask.
# Continuations sampled at temperature 0.8 teach the rest of the distribution, which is what
# sampled decoding will ask. The seeds are the first 12 tokens of the lab's held-out prompts: the
# first 16 prompts of each kind for training, the last 8 for checking afterwards. Each row is a
# seed and 48 tokens the target wrote after it: one greedy and three sampled rows per training seed.

# %%
def seeds(kind: str, rows: slice) -> torch.Tensor:
    """(n, 12): the first 12 tokens (the shortest prompt has 14) of some held-out prompts of one kind, as
    raw text even for an instruction-tuned pair (its chat template would make every seed the same turn marker)."""
    return torch.cat([generation.encode(pair, p, chat=False)[:, :recipe.seed_tokens]
                      for p in generation.load_prompts(kind)[rows]])


train_seeds = torch.cat([seeds(kind, slice(0, recipe.prompts)) for kind in ("prose", "code")])  # (32, 12)
check_seeds = torch.cat([seeds(kind, slice(16, 24)) for kind in ("prose", "code")])  # (16, 12)
new_tokens, temperature = recipe.new_tokens, recipe.temperature
first = recipe.first  # 11: rounds start at a seed's last token, as at inference

t0 = time.perf_counter()
greedy_rows = distill.continuations(target, train_seeds, new_tokens)  # (32, 60)
sampled_rows = torch.cat([distill.continuations(target, train_seeds, new_tokens, temperature=temperature, seed=s)
                          for s in range(recipe.samples)])  # (96, 60): three samples per seed
train_data = torch.cat([greedy_rows, sampled_rows])
check_data = torch.cat([distill.continuations(target, check_seeds, new_tokens),
                        distill.continuations(target, check_seeds, new_tokens, temperature=temperature, seed=99)])
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
torch.manual_seed(recipe.seed)
# built in float32 on the pair's device: AdamW's small updates would round away in 16-bit weights
# (the target may run in bfloat16 or float16 there; distill casts its view to the drafter's float32)
untrained = type(pair.drafter)(config).to(pair.device).eval()
fresh = copy.deepcopy(untrained)
untrained_agreement = distill.agreement(target, untrained, check_data, k, first=first)
print(f"drafter: {sum(p.numel() for p in fresh.parameters()) / 1e6:.2f}M parameters; agreement per draft "
      f"step before training: {untrained_agreement}")

# %% [markdown]
# ## Train it, live
#
# One step of `distill.fit`:
#
# 1. pick `recipe.batch` rows and take the frozen target's view of them (`distill.target_view`:
#    its input embeddings, last hidden states, K/V and next-token log-probabilities). The target never
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
# the pocket pairs. `recipe.fit` is `distill.fit` with the recipe's steps, batch, learning rate and
# seed.
#
# **Why this many steps.** The recipe is sized for a laptop: 100 steps of 4 rows (the cell prints
# how often that reads each training row), where the pair's own drafter trained for 9,250 steps of
# 16 to 64 rows. It is long enough for what this chapter sets out to show, that a fresh drafter's
# drafts start to survive (the race below measures it, with intervals), and short enough that the
# chapter runs in about two minutes; it is nowhere near where training stops paying (the pair's
# own drafter, trained far longer, shows how far that is). To train longer, run `recipe = replace(recipe, steps=600)`
# before this cell; pass `checkpoint="my_drafter.pt"` to `recipe.fit` and a run you interrupt
# goes on where it stopped when you run the cell again. The trained drafter is saved to
# `runs/07_train_a_drafter/` with its recipe (another pair's run to a folder named after that pair,
# `distill.run_folder`): the solutions notebook loads it from there instead of training it again.

# %%
steps = recipe.steps
t0 = time.perf_counter()
views = distill.CachedViews(target, train_data)  # the target's forward over every row, once
cache_seconds = time.perf_counter() - t0
bar = tqdm(total=steps, desc="distil")


def show(step: int, kl: float, agree: list[float]) -> None:
    bar.update(1)
    bar.set_postfix(kl=f"{kl:.2f}", agree_step1=f"{agree[0]:.2f}")


t0 = time.perf_counter()
history = recipe.fit(fresh, target, views, every=show)
bar.close()
train_seconds = time.perf_counter() - t0
fresh.eval()
print(f"target views of {len(train_data)} rows: {cache_seconds:.1f} s; {steps} steps of {recipe.batch} rows "
      f"(each training row read {steps * recipe.batch / len(train_data):.1f} times on average): "
      f"{train_seconds:.0f} s on {env.device} ({train_seconds / steps:.2f} s per step)")
saved = distill.save_run(distill.run_folder(pair), fresh, target, recipe,  # a folder per pair
                         greedy_rows=greedy_rows, sampled_rows=sampled_rows)
print(f"{tag}: saved with its recipe and training rows to {saved.relative_to(distill.RUNS_DIR.parent)} "
      "(the solutions read it)")
plots.distill_figure(history, label=f"{tag}, {len(train_data)} rows of {train_data.shape[1]} tokens, "
                                    f"{recipe.batch} rows a step, {steps} steps in {train_seconds:.0f} s")

# %% [markdown]
# ## Did it learn the target, or the training rows?
#
# Agreement on the check rows, which continue prompts the fresh drafter never saw: untrained,
# fresh, and the pair's own drafter (with its centroid head, as it drafts at inference).

# %%
agreement = {
    "untrained": untrained_agreement,
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
# drafter costs speed, never correctness. What changes is how many drafts survive. Every path runs
# once untimed first (so no path pays torch's first-call costs in the race), then each prompt runs
# on every path in turn, so a slow spell of the shared machine falls on all of them alike.

# %%
race_prompts = generation.load_prompts("prose")[16:19] + generation.load_prompts("code")[16:19]


def as_pair(drafter):
    """The drafter in the pair's precision, as decoding runs it (the pocket pair's float32: itself)."""
    return drafter if drafter.dtype == pair.dtype else copy.deepcopy(drafter).to(pair.dtype)


drafters = {"untrained": as_pair(untrained), "fresh": as_pair(fresh), "the pair's own": pair.drafter}
exact = pair.dtype == torch.float32  # in 16-bit arithmetic a verify pass can round a near-tie differently
paths = {"plain": lambda p, n=48: generation.run(pair, p, path="plain", max_new_tokens=n, stop_at_eos=False)}
for name, drafter in drafters.items():
    paths[name] = (lambda p, n=48, with_drafter=replace(pair, drafter=drafter):
                   generation.run(with_drafter, p, k=k, max_new_tokens=n, stop_at_eos=False))
for run_path in paths.values():  # the untimed warm-up: a few tokens are enough
    run_path(race_prompts[0], n=8)
runs = {name: [] for name in paths}
for p in race_prompts:
    for name, run_path in paths.items():
        runs[name].append(run_path(p))
plain, race = runs.pop("plain"), runs
for name in drafters:
    same = all(a.new_ids == b.new_ids for a, b in zip(plain, race[name]))
    tau, speedup = metrics.interval(metrics.tau, race[name]), metrics.interval(metrics.speedup, plain, race[name])
    print(f"{name:>15s}: tau {tau}, α {metrics.alpha(race[name]):.2f}, speedup {speedup}x, "
          f"same tokens as the target alone: {same}")
    assert same or not exact, "speculative decoding changed the target's greedy output"
if not exact:
    print(f"({str(pair.dtype).removeprefix('torch.')}: a verify pass over k + 1 tokens can round a near-tie "
          "differently from a one-token forward, so the texts may part late; 03_verify_and_accept shows it)")
sample = f"{len(race_prompts)} prompts × 48 tokens, {race['fresh'][0].decoding}, k = {k}"
print(f"({tag}; {sample}; {tau.sample.split(', ', 2)[-1]} over the prompts)")
taus = {name: metrics.interval(metrics.tau, traces) for name, traces in race.items()}
for better, worse in (("fresh", "untrained"), ("the pair's own", "fresh")):
    verdict = taus[better].versus(taus[worse])
    print(f"tau, {better} against {worse}: " + (f"{verdict} (the intervals do not overlap)"
                                               if verdict != "no clear difference" else
                                               "no clear difference on these prompts (the intervals overlap)"))
fig = plots.acceptance_figure(race, theory=False)
plots.styled(fig, f"Acceptance by draft position, per drafter<br><sup>{tag}; {sample}</sup>").update_layout(margin_t=110)

# %% [markdown]
# The untrained drafter's drafts are noise: its `tau` sits near one token per target forward, so
# it pays for drafting and gets almost nothing back; its speedup above says whether that made
# decoding slower than the target alone here (`05_speed_and_cost` explains the cost). The last two
# lines compare the intervals: after the training time printed above, does the fresh drafter keep
# real drafts? How far the pair's own drafter is ahead depends on how long it was
# trained: a drafter of width 256, four
# `scripts/train_drafter.py` runs each going on from the one before, 9,250 steps in all, the first
# two of 16 rows, the last two of 64, on the target's continuations of up to 20,480 prompts; its
# later stages train on the continuations alone, then add greedy continuations of short prompts,
# like the lab's, with a cross-entropy on the target's argmax added to the KL; last, one scale on
# its logits for sampled drafting (`data/pocket/MODEL_CARD.md` tells the whole story). The quick
# recipe (`--quick`) runs 130 steps at width 128.

# %% [markdown]
# ## Greedy needs the argmax; sampling depends on how the drafts are made
#
# Greedy verification keeps a draft when it *is* the target's argmax: only the drafter's argmax
# counts. Sampling at temperature T has two lossless rules (`03_verify_and_accept`, `04_acceptance`):
#
# - **argmax drafts, verified as a point mass.** The drafter drafts its argmax x and the target
#   keeps it with probability p(x). This is transformers' lossless path, the one
#   `generation.run(..., temperature=0.8)` measures (exercise 2 below), and vLLM's default
#   (`draft_sample_method="greedy"`). Only the drafter's argmax counts here too: a draft is kept
#   as often as the target would have sampled that token.
# - **drafts sampled from q.** The drafter samples x from q and the target keeps it with
#   probability min(1, p(x) / q(x)) (the glass box, SGLang's sampled MTP drafts, vLLM's
#   `"probabilistic"`), so a step keeps Σ min(p, q) on average: now the drafter's confidence counts
#   too, and a q that is too flat or too sharp loses drafts that a rescaled q would keep.
#
# `distill.logit_scale` tunes the second rule: it multiplies the drafter's logits by a few factors
# s and measures, on the check rows the target sampled, how many of a round's k drafts sampled
# from q at 0.8 would be kept. A positive s moves no argmax, so greedy drafting and the point-mass
# rule stay exactly as they were. The KL alone pulls q towards p: does `fresh` still gain from a
# factor? The full recipe also adds a cross-entropy on the target's argmax
# (`distill.fit(..., hard=...)`), which sharpens q for greedy drafting, and then fits s as its last
# stage to give sampling from q back what that costs.

# %%
sampled_check = check_data[len(check_seeds):]  # the check rows the target sampled at 0.8
best, kept = distill.logit_scale(target, fresh, sampled_check, k, temperature=temperature,
                                 first=first,  # rounds start at a seed's last token, as at inference
                                 scales=torch.tensor([0.5, 0.75, 1.0, 1.5, 2.0, 3.0]))
print(f"drafts sampled from q and kept, per round of {k} at T = {temperature}, by scale on the fresh "
      f"drafter's logits ({len(sampled_check)} sampled check rows, every round from token {first + 1} on):")
print("  " + "  ".join(f"x{s:g}: {v:.2f}" for s, v in kept.items()) + f"   (best: x{best:g})")
if best == 1.0:
    print("no factor beats x1: the KL alone left q as confident as sampling from it wants")
else:
    print(f"x{best:g} keeps {kept[best] - kept[1.0]:.2f} more drafts per round than x1: the fresh drafter "
          f"is {'under' if best > 1 else 'over'}confident for sampling from it")

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
# - Greedy acceptance depends on the drafter's argmax alone, and so does sampled acceptance when
#   argmax drafts are verified as a point mass (kept with probability p(x): transformers' lossless
#   path, vLLM's default). Drafts sampled from q are kept with probability min(1, p/q), which
#   depends on the drafter's whole distribution: one factor on its logits (`distill.logit_scale`)
#   tunes that without touching the argmax.
# - The recipe here (`distill.LiveRecipe`) is a laptop's budget; the trained drafter is kept in
#   `runs/07_train_a_drafter/` (`distill.save_run`; another pair's in a folder of its own,
#   `distill.run_folder`), where the solutions find it (`distill.load_run`).
#
# ## Exercises
#
# **1.** Every draft step minimises KL(target ‖ drafter), the Kullback–Leibler divergence of the
# drafter's distribution q from the target's p. Write `kl(log_p, log_q)`: it receives both as
# log-probabilities of shape (..., vocab) and returns the divergence at every position, shape (...).
# Work it out from the definition (an expectation under one of the two distributions: which?), then
# uncomment the checker, which compares your function with torch's on random distributions.

# %%
def kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError("you are given logs: how do you get p back? Which axis do you sum over, "
                              "and what shape should the result have?")


from labkit import checks  # noqa: E402

# checks.check_kl(kl)

# %% [markdown]
# **2.** Predict, then measure. Train a second fresh drafter on the greedy rows only
# (`greedy_rows`), with the same recipe (`views.subset(...)` picks rows of `views`; `recipe.fit`
# trains as above). Before you measure, write down the `tau` you expect for it and for `fresh` at
# temperature 0.8 in `predicted_tau`; then measure both with `generation.run(..., temperature=0.8)`
# on the race prompts (sampled and lossless by default: argmax drafts verified as a point mass) and
# pass both dicts to the checker. Which drafter wins when the target samples, and why? The solution
# runs it.
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
# torch.manual_seed(recipe.seed); one_step = type(pair.drafter)(config).to(pair.device)
# recipe.fit(one_step, target, views, k=1)
# traces = [generation.run(replace(pair, drafter=as_pair(one_step.eval())), p, k=4, max_new_tokens=48,
#                          stop_at_eos=False) for p in race_prompts]
# checks.check_one_step_prediction(prediction, traces)

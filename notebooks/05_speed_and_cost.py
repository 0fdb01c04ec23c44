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
# # 05 · Speed and cost: when speculation pays, and when it comes out slower
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/05_speed_and_cost.ipynb)
#
# **Goal.** Measure wall-clock speedup against `k` (drafts per round), explain it with a cost
# model whose every input is measured (acceptance, the drafter's cost, the cost of verifying
# `k + 1` tokens, and the decoding loop's own work), check the model's prediction against the
# measurement, and answer the question users of other tutorials keep asking: *why did it come out
# slower?* We end with a clearly labelled **prediction** for a real Gemma 4 E2B pair on this
# machine, built from timings of E2B-shaped layers.

# %% tags=["live"]
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %% tags=["live"]
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # the pair labkit.load_pair() loads (LABKIT_PAIR=..., if set, wins)

# %% tags=["live"]
from labkit import experiments, generation, metrics, plots, widgets

# The pair chosen in the setup cell: the pocket pair (offline) unless PAIR or LABKIT_PAIR names another
pair = labkit.load_pair()
tag = pair.label
print(pair)  # which pair, in what precision, on which device

# %% [markdown]
# ## Measured: speedup against k
#
# Plain decoding and speculative decoding on the same prompts, to the same length, timed in the
# same process: ratios measured side by side transfer between machines, absolute seconds do not.
# A speedup needs many timed tokens to be trusted, more than this notebook's minute can pay for,
# so the lab ships timed traces (24 code prompts × 64 tokens, plain and every `k` from 1 to 6,
# greedy, recorded by `scripts/record_traces.py speed` on an idle machine). The interval is a
# 90 % bootstrap over prompts, each prompt's plain and speculative runs resampled together.

# %% tags=["live"]
speed, meta = labkit.load_traces("speed")
shipped = meta["pair"]  # the recording's pair, which names its figures
print(f"{shipped}: recorded {meta['date']} on {meta['machine']} by `{meta['command']}` "
      f"(load average {meta['load_average_at_start']} at the start)")
if not pair.is_pocket:
    print(f"The shipped traces, and the cost model fitted on them, are the pocket pair's; the live slice and the "
          f"E2B prediction below are measured on {tag}'s device.")
plain = speed["plain"]
ks = sorted(int(name.split("= ")[1]) for name in speed if name.startswith("k = "))
spec = {k: speed[f"k = {k}"] for k in ks}
measured = {k: metrics.interval(metrics.speedup, plain, spec[k]) for k in ks}
for k in ks:
    print(f"k = {k}: speedup {measured[k]}x   tokens per full round {metrics.tokens_per_round(spec[k]):.2f}")
print(f"({measured[ks[0]].sample} at each k; {spec[ks[0]][0].decoding})")

# %% [markdown]
# ## A law no measurement can break: speedup ≤ tau ≤ k + 1
#
# Before any model of cost, two bounds that hold for every pair, machine and prompt:
#
# - **tau ≤ k + 1.** A round emits at most `k + 1` tokens (every draft kept, plus the target's
#   own), and the prefill emits one, so tokens per target forward cannot exceed `k + 1`.
# - **speedup ≤ tau.** Plain decoding pays one one-token target forward per token. A speculative
#   round pays *at least* that much too: one target forward over `k + 1` positions, which reads the
#   same weights and does more arithmetic, so it costs at least a one-token forward (and a round's
#   bookkeeping at least a plain step's), plus `k` drafter steps on top. Speculation therefore
#   costs at least (target forwards) × (a plain step), while plain decoding costs (tokens) × (a plain
#   step); their ratio, the speedup, is at most tokens / target forwards = `tau`.
#
# `tau` is the ceiling a free drafter and free verification would reach; every real cost pulls the
# speedup below it. A speedup printed above its `tau` means the two runs were not timed alike (the
# first run paid torch's warm-up, or the machine was busy during one of them). The check on the
# shipped traces:

# %%
for k in ks:
    tau_k = metrics.interval(metrics.tau, spec[k])
    holds = measured[k].value <= tau_k.value <= k + 1
    print(f"k = {k}: speedup {measured[k]}x ≤ tau {tau_k} ≤ k + 1 = {k + 1}: {'holds' if holds else 'BROKEN'}")
over = sum(p.wall / s.wall > metrics.tau(s) for k in ks for p, s in zip(plain, spec[k]))
print(f"prompt by prompt: the speedup exceeds that prompt's tau in {over} of {len(plain) * len(ks)} prompt × k pairs"
      + (" (each prompt was timed once, so a busy moment of the machine during one plain run can lift that "
         "one ratio over the bound; pooled over 24 prompts the noise averages out)" if over else ""))

# %% [markdown]
# ## The cost model
#
# The textbook model (Leviathan et al. 2023, Theorem 3.8) counts forwards only: a round costs `k`
# drafter steps of `c` target forwards each, plus one target forward over `k + 1` tokens, which it
# takes to cost what a one-token forward costs (`v = 1`: decoding is memory-bound, notebook 01).
#
# Two things are missing for a small model on a CPU. Verification is not quite free, so we
# measure `v(n)`, the cost of a target forward over `n` tokens relative to one. And the **decoding
# loop's own work** (choosing the token, checking for the end, growing the cache, Python between
# forwards) is not free either: plain decoding pays it once per *token*, speculation once per
# *round*. With `o` that work in target forwards, and the tokens per round `E`:
#
# `speedup = E · (1 + o) / (k·c + v(k + 1) + o_round)`
#
# Every input is read off the traces: `fit_costs` takes the median one-token forward and the loop's
# work from the plain traces, the drafter step from the speculative ones, and fits the verify
# forward and a round's loop work as lines in `k`, so the model can also be asked about a `k` it
# was not fitted on. Acceptance (`E`) is taken as measured; only time is modelled.

# %% tags=["live"]
costs = experiments.fit_costs(plain, [t for k in ks for t in spec[k]])
print(f"one target forward over 1 token: {1000 * costs.t_target:.2f} ms; the loop's work per plain token: "
      f"{1000 * costs.loop_plain:.2f} ms (o = {costs.loop_plain / costs.t_target:.2f})")
print(f"one drafter step: {1000 * costs.t_draft:.2f} ms (c = {costs.c:.3f}); verify over n tokens: "
      + ", ".join(f"v({n}) = {costs.v(n):.2f}" for n in (2, 3, 5, 7)))
print(f"the loop's work per round: {1000 * costs.loop_round[0]:.2f} + {1000 * costs.loop_round[1]:.2f}·k ms; "
      f"prefill {1000 * costs.prefill:.1f} ms   ({shipped}, fitted on {len(plain)} + {len(plain) * len(ks)} traces)")

# %% [markdown]
# Now three predictions against the measurement, each adding what the one before left out:
#
# - **textbook**: the coin model's tokens per round from the measured `α`, free verification
#   (`v = 1`), no loop;
# - **forwards only**: the measured tokens per round, the measured drafter step and verify cost;
# - **cost model**: the same plus the loop's work.
#
# The cost model's interval resamples the prompts too (their acceptance varies); its fitted
# seconds stay fixed.

# %%
rows = []
for k in ks:
    model = metrics.interval(lambda s: experiments.predict(costs, s), spec[k])
    no_loop = experiments.predict(costs, spec[k], loop=False)
    textbook = metrics.expected_speedup(metrics.alpha(spec[k]), k, costs.c)
    rows.append({"k": k, "measured": measured[k], "model": model, "no_loop": no_loop, "textbook": textbook})
    print(f"k = {k}: measured {measured[k]}x | cost model {model}x | forwards only {no_loop:.2f}x | "
          f"textbook {textbook:.2f}x")
for key, name in (("textbook", "textbook"), ("no_loop", "forwards only"), ("model", "cost model")):
    gaps = [float(getattr(r[key], "value", r[key])) / r["measured"].value - 1 for r in rows]
    worst = max(gaps, key=abs)
    print(f"{name:14s}: largest gap to the measurement {worst:+.1%}"
          + (f" ({'within' if abs(worst) <= 0.10 else 'outside'} 10 % at every k)" if key == "model" else ""))
plots.speedup_figure(rows, title="Speedup against k: measured and predicted<br>"
                                 f"<sup>{shipped}, 24 code prompts × 64 tokens, {spec[4][0].decoding}</sup>")

# %% [markdown]
# The printed gaps say what each cost is worth on this pair. The step from the textbook to
# "forwards only" is verification that is not free (`v(n)` above) together with real drafts that
# are not coins; the step from there to the cost model is the decoding loop's work, which plain
# decoding pays once per token and speculation once per round (its size is `o` above). A small
# target on a CPU is where such per-step costs matter most; a measured speedup that beats every
# forwards-only prediction is the sign to look for one, and a speedup measured on a few prompts
# is the first suspect (the live slice below shows how far two prompts can wander).
#
# Where the seconds went, per path (all shipped traces):

# %%
plots.time_split_figure({"plain": plain, **{f"k = {k}": spec[k] for k in ks}},
                        title=f"Where the time went<br><sup>{shipped}, 24 code prompts × 64 tokens, greedy</sup>")

# %% [markdown]
# ## A live slice
#
# The shipped timings are someone else's machine on another day. Measure a slice now (two code
# prompts × 32 tokens, plain and `k = 4`), fit the cost model to it alone, and see where both
# land. Both paths are warmed up first, then run in turns, three times each (`experiments.time_paths`);
# the speedup is the median of the paired ratios, with their range. Two prompts are still a small
# sample (and a browser drawing figures on the same cores slows whichever path it interrupts), so
# expect the live figure to wander more than the shipped interval.

# %%
live_prompts = generation.load_prompts("code", limit=2)
kw = {"max_new_tokens": 32, "stop_at_eos": False}
timed = [experiments.time_paths({"plain": lambda p=p, i=i: generation.run(pair, p, path="plain", seed=i, **kw),
                                 "k = 4": lambda p=p, i=i: generation.run(pair, p, k=4, seed=i, **kw)},
                                repeats=3, offset=i)
         for i, p in enumerate(live_prompts)]
live_plain = [t["plain"].trace for t in timed]
live_spec = [t["k = 4"].trace for t in timed]
live_costs = experiments.fit_costs(live_plain, live_spec)
live = experiments.speedup_of([t["plain"] for t in timed], [t["k = 4"] for t in timed])
live_tau = metrics.tau(live_spec)
law = "holds" if live.value <= live_tau <= 5 else "BROKEN: the two paths were not timed alike"
print(f"live on {experiments.device_name(pair.device)}, {tag}, 2 code prompts × 32 tokens, k = 4: speedup {live}, "
      f"tau {live_tau:.2f} (speedup ≤ tau ≤ k + 1: {law})\n"
      f"   cost model fitted on it {experiments.predict(live_costs, live_spec):.2f}x; "
      f"the shipped k = 4 interval {measured[4]}x; this machine's c = {live_costs.c:.3f}, "
      f"o = {live_costs.loop_plain / live_costs.t_target:.2f}")

# %% [markdown]
# **On a GPU** the shipped traces above are still the 2-core CPU's; only this live slice is
# measured where the notebook runs. Expect it to tell another story. A 15M-parameter pocket pair
# is *launch-bound* on a GPU: each layer's kernels finish faster than Python can launch them, so
# a forward costs about the same for 1 token or 5 (`v(5)` near 1, as on the CPU) and the drafter's
# step costs in proportion to its launches, not its size, so `c` stays far above what its 3.5M
# parameters suggest. Meanwhile the loop's own work `o` becomes a large share of every step. Put
# the live `c` and `o` into the calculator below: if speculation stops paying on your GPU, those
# two numbers say why. (The lab's authors have not had a GPU to run it on yet: `make gpu-check`
# is the script that will, and README's "Tested with" will carry its figures.)
#
# ## Why can it come out slower?
#
# The cost model says speculation loses whenever `E · (1 + o) < k·c + v(k + 1) + o_round`. Each
# term has a cause you can measure:
#
# 1. **Low acceptance** (small `E`): a weak drafter, sampling at a high temperature, text unlike
#    the drafter's training data, or a prompt format the pair was not trained on (notebook 04: on
#    the pocket pair, whose target is a base model trained on plain text, the chat template made no
#    clear difference). `E` stays near 1 while every round still pays for `k` drafts.
# 2. **An expensive drafter** (large `c`): on a GPU a 4-layer drafter is nearly free next to a
#    35-layer target; with a small target, or on a CPU, it is not.
# 3. **Verification is not free** (`v(k + 1) > 1`): once a device is compute-bound (a CPU, large
#    batches), a `k + 1`-token forward costs more than a one-token forward. A Mixture-of-Experts
#    target pays more for a different reason: each token picks its own experts, so verifying `k + 1`
#    tokens reads the weights of more experts from memory than one token does (26B-A4B routes each
#    token to 8 of 128). The step stays memory-bound; it just has more bytes to read.
# 4. **The loop's work** cuts both ways: it is the part speculation saves (once per round instead
#    of once per token), but a round's own bookkeeping grows with `k`.
#
# Try it: the calculator starts at this machine's fitted `c`, `v(5)` and `o`, and the shipped `α`
# at `k = 4`. Find the `α` where speculation stops paying; then set `o = 0` and see how much of
# the speedup was the loop's.

# %% tags=["live"]
calculator = widgets.CostCalculator.from_costs(costs, metrics.alpha(spec[4]), k=4,
                                               label=f"{shipped}, fitted on the shipped speed traces")
calculator

# %% [markdown]
# Sampling costs the same per round and keeps fewer drafts. The shipped acceptance traces hold
# the same 24 code prompts at `k = 4` sampled at `T = 1.0` (lossless); with this machine's fitted
# seconds the cost model turns their rounds into a predicted speedup. It is a prediction from
# measured acceptance, not a timing. (Those sampled traces draft the argmax and verify it as a
# point mass; drafts sampled from `q` are kept at another rate, and chapter 04 measures both.)

# %%
accept, _ = labkit.load_traces("acceptance")
for name in ("code, k = 4", "code, k = 4, T = 1.0"):
    traces = accept[name]
    predicted = metrics.interval(lambda s: experiments.predict(costs, s), traces)
    print(f"{traces[0].decoding}:\n   tokens per full round "
          f"{metrics.interval(metrics.tokens_per_round, traces)}, predicted speedup {predicted}x")

# %% [markdown]
# ## A prediction for a real E2B pair on this machine
#
# We cannot download the 10 GB checkpoint here, but timing does not need trained weights. We
# build a few target layers with the exact shapes of Gemma 4 E2B's text decoder and the E2B
# assistant at its real shape, with random weights, and time them on this machine
# (`experiments.real_pair_costs`). **This is a prediction, not a measurement.** Its assumptions:
# a full target forward = 35 / (layers measured) × those layers + the 262,144-row output
# projection; KV-shared layers cost like the others; the drafter's vocabulary is truncated (its
# centroid head scores only 4,096 rows anyway); the loop's work is left out (it is small next to
# a real target's forward); and `α` is unknown, so we show a range.

# %%
from labkit.env import choose  # noqa: E402  (the lab's rule: where models run, in what precision)

# where the pair runs, in the precision a real pair runs in there (float32 on a CPU, 16-bit on a GPU)
e2b = experiments.real_pair_costs("E2B", ns=(1, 3, 5), layers=2, device=pair.device,
                                  dtype=choose(str(pair.device))[1])
print(f"PREDICTED for E2B on {e2b['where']} in {e2b['dtype']}: one target forward ≈ {e2b['t_target'][1]:.3f} s, "
      f"one drafter step ≈ {1000 * e2b['t_draft']:.1f} ms, so c ≈ {e2b['c']:.3f}; "
      + ", ".join(f"v({n}) ≈ {v:.2f}" for n, v in e2b["verify"].items()))
print("\nPREDICTED speedup of E2B + assistant (cost model, assumptions above):")
print("α \\ k " + "".join(f"{k:>8d}" for k in (2, 4)))
for a in (0.5, 0.6, 0.7, 0.8):
    cells = [experiments.predicted_speedup(a, k, e2b["c"], e2b["verify"][k + 1]) for k in (2, 4)]
    print(f"{a:5.1f} " + "".join(f"{x:7.2f}x" for x in cells))

# %% [markdown]
# Published figures for the real pairs come from GPUs and phones, not a laptop CPU; on a CPU the
# target becomes compute-bound sooner, so `v(k + 1)` grows faster than on a GPU, and the prediction
# above is honest about this machine only. Engines tune `k` to their hardware: vLLM's Gemma 4
# recipe recommends `num_speculative_tokens` 2 for E2B, 4 for E4B and 26B-A4B, and 4–8 for 31B,
# measured on A100/H100 GPUs: faster targets prefer fewer drafts
# ([vLLM recipes: Gemma 4](https://github.com/vllm-project/recipes/blob/main/Google/Gemma4.md);
# chapter 09 and `docs/serving-runbook.md` have the commands).
#
# ## Summary
#
# - A law first: speedup ≤ tau ≤ k + 1. A round emits at most `k + 1` tokens and costs at least a
#   plain step, so no speedup can exceed the tokens per target forward.
# - Speedup ≈ `E · (1 + o) / (k·c + v(k + 1) + o_round)`: acceptance buys tokens; drafting,
#   verification and the loop's per-round work cost time. Every input can be measured, and the
#   printed gaps say how close the model comes to the measured speedup, k by k.
# - Speculative decoding comes out slower when acceptance is low, the drafter is not cheap next to
#   the target, verification over `k + 1` tokens is not free, or per-round overhead dominates.
# - A real pair's speedup on your hardware can be *predicted* from shapes alone, up to `α`.
#
# ## Exercises
#
# 1. **The best k from measured costs.** Write `best_k(costs, alpha, ks)`: the `k` in `ks` with the
#    highest predicted speedup for a fitted `experiments.CostModel` and a per-token acceptance
#    `alpha`, using the coin model for the tokens per round. Which pieces of `costs` change with `k`?
# 2. **Predict, then measure.** Before running anything, use the fitted `costs` and the shipped
#    `α` at `k = 3` to predict the speedup of `k = 3` on the live prompts; write it in `prediction`.
#    Then uncomment the measurement (plain and `k = 3` on `live_prompts`, timed in turns) and the
#    checker, and say whether the prediction held, given the noise you saw above.
# 3. **The α a speedup needs.** Write `alpha_needed(costs, speedup, k)`: the per-token acceptance at
#    which the cost model (coin-model tokens per round) predicts exactly `speedup` at `k`, or `nan`
#    if even `α = 1` falls short. Then ask it for 2× at `k = 4` on this machine's `costs` and compare
#    with the `α` measured above.

# %%
from labkit import checks

check_1 = checks.check_best_k_for_costs  # uncomment the call(s) at the bottom once your code is ready
check_2 = checks.check_prediction
check_3 = checks.check_alpha_needed


def best_k(costs, alpha, ks):
    raise NotImplementedError("for each k: tokens a round yields, times a plain token's cost, over a round's cost")


def alpha_needed(costs, speedup, k):
    raise NotImplementedError("the predicted speedup grows with α: which α in [0, 1] gives exactly `speedup`?")


prediction = {"speedup at k = 3": None}  # your number, before you measure

# check_1(best_k)
# timed3 = [experiments.time_paths({"plain": lambda p=p: generation.run(pair, p, path="plain", **kw),
#                                   "k = 3": lambda p=p: generation.run(pair, p, k=3, **kw)}, repeats=3, offset=i)
#           for i, p in enumerate(live_prompts)]
# check_2(prediction, {"speedup at k = 3": experiments.speedup_of([t["plain"] for t in timed3],
#                                                                  [t["k = 3"] for t in timed3]).value}, unit="x")
# check_3(alpha_needed)

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
# # 05 · Speed and cost: solutions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/solutions/05_speed_and_cost_solutions.ipynb)
#
# Worked solutions to the exercises of `05_speed_and_cost`, each run against its checker or measured.

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
from labkit import checks, experiments, generation, metrics

speed, _ = labkit.load_traces("speed")
ks = sorted(int(name.split("= ")[1]) for name in speed if name.startswith("k = "))
costs = experiments.fit_costs(speed["plain"], [t for k in ks for t in speed[f"k = {k}"]])

# %% [markdown]
# ## 1. The best k from measured costs
#
# A round yields `(1 − α^(k+1)) / (1 − α)` tokens (coin model) and costs
# `k·t_draft + verify(k + 1) + loop_round(k)` seconds; a plain token costs `t_target + loop_plain`.
# The drafts, the verify forward and the round's loop work all grow with `k`; the plain side does not.


# %%
def best_k(costs, alpha, ks):
    def speedup(k):
        tokens = metrics.expected_tau(alpha, k)
        return tokens * costs.plain_seconds() / costs.round_seconds(k)

    return max(ks, key=speedup)


checks.check_best_k_for_costs(best_k)
alpha4 = metrics.alpha(speed["k = 4"])
print(f"on the shipped costs and α = {alpha4:.2f}: best k = {best_k(costs, alpha4, range(1, 11))}")

# %% [markdown]
# ## 2. Predict, then measure: k = 3 on the live prompts
#
# The prediction comes first, from the shipped costs and the shipped `α` at `k = 3`; then the
# measurement, on two prompts, both paths warmed up and run in turns three times
# (`experiments.time_paths`), checked against the prediction.

# %%
alpha3 = metrics.alpha(speed["k = 3"])
predicted = costs.speedup(metrics.expected_tau(alpha3, 3), 3)
print(f"predicted (shipped costs, coin model with α = {alpha3:.2f}): {predicted:.2f}x")

pair = labkit.load_pair()
prompts = generation.load_prompts("code", limit=2)
kw = {"max_new_tokens": 32, "stop_at_eos": False}
timed3 = [experiments.time_paths({"plain": lambda p=p: generation.run(pair, p, path="plain", **kw),
                                  "k = 3": lambda p=p: generation.run(pair, p, k=3, **kw)}, repeats=3, offset=i)
          for i, p in enumerate(prompts)]
live = experiments.speedup_of([t["plain"] for t in timed3], [t["k = 3"] for t in timed3])
spec3 = [t["k = 3"].trace for t in timed3]
print(f"measured now ({pair.label}, 2 code prompts × 32 tokens, {spec3[0].decoding}): speedup {live}, "
      f"tau {metrics.tau(spec3):.2f}")
checks.check_prediction({"speedup at k = 3": predicted}, {"speedup at k = 3": live.value}, unit="x")

# %% [markdown]
# Two prompts of 32 tokens on a machine that is also drawing a notebook: a gap of 10–20 % is
# within what the live slice of the chapter already showed. The prediction holds if the gap is
# of that size; a larger gap says this machine's costs differ from the shipped ones (fit
# `experiments.fit_costs` on your own traces to see which term moved).
#
# ## 3. The α a speedup needs
#
# Solve `tokens(α, k) · (1 + o) / (k·c + v(k + 1) + o_round) = speedup` for `α` by bisection: the
# left side grows with `α`. If even `α = 1` (every draft kept, `k + 1` tokens a round) falls short,
# no acceptance reaches it.


# %%
def alpha_needed(costs, speedup, k):
    if costs.speedup(metrics.expected_tau(1.0, k), k) < speedup:
        return float("nan")
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if costs.speedup(metrics.expected_tau(mid, k), k) < speedup else (lo, mid)
    return (lo + hi) / 2


checks.check_alpha_needed(alpha_needed)
need = alpha_needed(costs, 2.0, 4)
if need != need:
    print(f"2x is out of reach at k = 4 on these costs: even with every draft kept it gives "
          f"{costs.speedup(5.0, 4):.2f}x")
else:
    print(f"α needed for 2x at k = 4: {need:.3f} (measured α at k = 4: {alpha4:.2f}); "
          f"every draft kept would give {costs.speedup(5.0, 4):.2f}x")

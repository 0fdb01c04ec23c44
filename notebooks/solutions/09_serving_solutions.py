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
# # 09 · From the lab to a server: solutions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/solutions/09_serving_solutions.ipynb)
#
# Worked solutions to the exercises of `09_serving`, each run against its checker or computed
# from the recorded measurements.

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
from labkit import batching, checks, experiments, metrics

served, smeta = labkit.load_traces("serving")

# %% [markdown]
# ## 1. vLLM's words
#
# Every drafting round counts once, every drafted token counts, kept drafts are the accepted ones
# (the bonus token is not a draft).


# %%
def vllm_rates(traces):
    rounds = [r for t in traces for r in t.rounds if r.k > 0]
    kept = sum(r.accepted for r in rounds)
    return kept / sum(r.k for r in rounds), 1 + kept / len(rounds)


checks.check_vllm_rates(vllm_rates)

# %% [markdown]
# ## 2. Conditional acceptance from a scrape
#
# Draft j is judged only in rounds that kept every draft before it. With the same k in every
# round, those are all rounds for j = 1 (`drafts`) and, for j > 1, the rounds that kept draft
# j − 1: `per_pos[j − 2]`. So the conditional rate at j is `per_pos[j − 1]` over the count one
# position earlier (`nan` where no round got that far).


# %%
def conditional_from_counters(drafts, per_pos):
    reached = [drafts, *per_pos[:-1]]
    return [kept / n if n else float("nan") for kept, n in zip(per_pos, reached)]


checks.check_conditional_from_counters(conditional_from_counters)

# %% [markdown]
# ## 3. Where does it stop paying?
#
# The recorded costs were measured at k = 4: a verification over 5 tokens per row. For other k
# the verification line through n = 1 and n = 5 is extended (an extrapolation at k = 8, so a
# rough one), and the tokens a round yields come from the measured α by the closed form of
# chapter 04, with α's interval carried through. First the function the checker asks for.


# %%
def serve_k(row, k0, loop, alpha, ks):
    model = batching.costs_at(row, k0, loop)
    best = max(ks, key=lambda k: model.speedup(metrics.expected_tau(alpha, k), k))
    return best if model.speedup(metrics.expected_tau(alpha, best), best) > 1 else 0


checks.check_serving_k(serve_k)

# %%
k0, costs = smeta["k"], smeta["batch_costs"]
plain_runs, spec_runs = served["float32 · plain"], served["float32 · spec"]
loop = experiments.fit_costs(plain_runs, spec_runs)
alpha = metrics.interval(metrics.alpha, spec_runs)
print(f"α = {alpha} over {alpha.prompts} prompts")
table = {}
for k in (1, 4, 8):
    for row in costs:
        model = batching.costs_at(row, k0, loop)
        table[k, row["batch"]] = [model.speedup(metrics.expected_tau(a, k), k) for a in (alpha.lo, alpha.value, alpha.hi)]
print("B    " + "".join(f"{'k = ' + str(k):>22}" for k in (1, 4, 8)))
for row in costs:
    b = row["batch"]
    print(f"{b:<5}" + "".join(f"{table[k, b][1]:>8.2f} [{table[k, b][0]:.2f}, {table[k, b][2]:.2f}]" for k in (1, 4, 8)))
for b in (costs[0]["batch"], costs[-1]["batch"]):
    row = next(r for r in costs if r["batch"] == b)
    picks = sorted({serve_k(row, k0, loop, a, range(1, 9)) for a in (alpha.lo, alpha.value, alpha.hi)})
    print(f"B = {b}: serve_k over k = 1..8 at α's low end, value and high end picks k in {picks} (0: no drafting)")
    ranked = sorted((1, 4, 8), key=lambda k: -table[k, b][1])
    first, second = ranked[0], ranked[1]
    clear = table[first, b][0] > table[second, b][2]
    if table[first, b][2] < 1:
        print(f"B = {b}: every k predicts a slowdown (the best, k = {first}, {table[first, b][1]:.2f}×, "
              "its whole interval below 1): serve this load without drafting")
        continue
    print(f"B = {b}: k = {first} predicts the most ({table[first, b][1]:.2f}×); "
          + ("its interval lies above the runner-up's: a clear choice" if clear
             else f"its interval overlaps k = {second}'s ({table[second, b][1]:.2f}×): the prediction cannot decide"))

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
# # 08 · Choosing a drafter: solutions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/solutions/08_choosing_a_drafter_solutions.ipynb)
#
# Worked solutions to the exercises of `08_choosing_a_drafter`, each run against its checker or measured.

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
from labkit import bench, checks, experiments, methods, metrics

pair = labkit.load_pair()
recorded, meta = labkit.load_traces("methods")

# %% [markdown]
# ## 1. A hybrid drafter
#
# The glass box asks a drafter for drafts with `propose(ctx, k, pick)`, which returns the drafts and
# their distributions; prompt lookup returns no drafts when the context holds no match. So ask
# prompt lookup first: it costs almost nothing, and when it finds a match the text is likely
# repeating itself. When it finds nothing, the MTP drafter drafts.


# %%
def hybrid_propose(ctx, k, pick, lookup, mtp):
    drafts, qs = lookup.propose(ctx, k, pick)
    return (drafts, qs) if drafts else mtp.propose(ctx, k, pick)


checks.check_hybrid_drafter(hybrid_propose, pair)

# %% [markdown]
# ## 2. Predict, then measure: prompt lookup on code at k = 8
#
# The prediction comes first, from the recorded costs of prompt lookup and its measured α on the
# code task (coin model for the tokens a round yields); then the measurement, on three code
# prompts, each method warmed up and the two taking turns (`bench.timed_race`).

# %%
alone = [t for task in methods.TASKS for t in recorded[f"{task} · none"]]
costs = experiments.fit_costs(alone, [t for task in methods.TASKS for t in recorded[f"{task} · prompt-lookup"]])
alpha = metrics.alpha(recorded["code · prompt-lookup"])
predicted = costs.speedup(metrics.expected_tau(alpha, 8), 8, new_tokens=meta["new_tokens"])
print(f"predicted: {predicted:.2f}x (α = {alpha:.2f} on code, c = {costs.c:.3f}, v(9) = {costs.v(9):.2f})")

code = [r["text"] for r in methods.load_tasks(3) if r["task"] == "code"]
timed = bench.timed_race(pair, code, ("none", "prompt-lookup"), 8, max_new_tokens=meta["new_tokens"])
measured = experiments.speedup_of(timed["none"], timed["prompt-lookup"])
print(f"measured on {len(code)} code prompts: speedup {measured}, tau {metrics.tau([t.trace for t in timed['prompt-lookup']]):.2f}")
checks.check_prediction({"prompt lookup on code, k = 8": predicted}, {"prompt lookup on code, k = 8": measured.value})

# %% [markdown]
# The coin model assumes every round drafts k tokens with the same α. Prompt lookup breaks both:
# on code it often finds no match and drafts nothing (a plain step), and when it does match, the
# copied tokens are right in long runs or not at all. Compare the two numbers above: where they
# disagree, that is why.
#
# ## 3. Your own texts
#
# Prompt lookup can only help on text that repeats what came before (a passage quoted again, code
# that edits code above it): there its drafts are free and can be right. On fresh text it finds no
# n-gram to copy and drafts nothing, so it can do no better than the target alone. Two texts, a
# quotation begun again (the quote task's first prompt) and fresh prose, with guesses made before
# the race:

# %%
texts = {"a quotation begun again": next(r["text"] for r in methods.load_tasks(1) if r["task"] == "quote"),
         "fresh prose": "She opened the window and looked out over the hills, wondering"}
predicted = {"a quotation begun again": 1.1, "fresh prose": 1.0}
timed = bench.timed_race(pair, list(texts.values()), ("none", "prompt-lookup"), meta["k"],
                           max_new_tokens=meta["new_tokens"], repeats=5)
speedups = {name: experiments.speedup_of(timed["none"][i], timed["prompt-lookup"][i]) for i, name in enumerate(texts)}
checks.check_prediction(predicted, {name: s.value for name, s in speedups.items()})
for i, name in enumerate(texts):
    print(f"{name}: tau {metrics.tau(timed['prompt-lookup'][i].trace):.2f}, speedup {speedups[name]}")
better = max(speedups, key=lambda name: speedups[name].value)
print(f"prompt lookup did better on {better}"
      + ("" if max(s.lo for s in speedups.values()) > min(s.hi for s in speedups.values())
         else ", though the two ranges overlap: on this machine the difference is within the noise"))

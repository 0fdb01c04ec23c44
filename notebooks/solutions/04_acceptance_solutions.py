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
# # 04 · Acceptance: solutions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/solutions/04_acceptance_solutions.ipynb)
#
# Worked solutions to the exercises of `04_acceptance`, each run against its checker.

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
from labkit import checks, generation, metrics

# %% [markdown]
# ## 1. Per-token acceptance from rounds
#
# A round judges its kept drafts and, if it turned one down, that one too; drafts after a
# rejection are never judged. A round that kept every draft judged exactly `k`; a round cut short
# by the token budget judged only the drafts it kept (`Round.rejected` is False for both).


# %%
def alpha_from_rounds(rounds):
    accepted = sum(r.accepted for r in rounds)
    judged = accepted + sum(1 for r in rounds if r.rejected)
    return accepted / judged


checks.check_alpha_from_rounds(alpha_from_rounds)

# %% [markdown]
# ## 2. Beyond the coin model
#
# A round yields 1 token (the target's own) plus one for each leading draft kept. Drafts 1..j are
# all kept with probability `α_1 · α_2 · … · α_j` (each factor given the ones before it), so the
# expected count is `1 + α_1 + α_1 α_2 + … + α_1 ⋯ α_k`. With every `α_j = α` this is the coin
# model's `1 + α + … + α^k = (1 − α^(k+1)) / (1 − α)`.


# %%
def expected_tokens(alphas):
    tokens, all_kept = 1.0, 1.0
    for a in alphas:
        all_kept *= a  # drafts 1..j all kept
        tokens += all_kept
    return tokens


checks.check_expected_tokens(expected_tokens)

# %% [markdown]
# On the shipped traces: the conditional rates by position, put through `expected_tokens`, against
# the measured tokens per full round and the coin model with the pooled `α`.

# %%
shipped, _ = labkit.load_traces("acceptance")
for kind in ("code", "prose"):
    traces = shipped[f"{kind}, k = 4"]
    cond = metrics.acceptance_by_position(traces, conditional=True)
    print(f"{kind}: by position {expected_tokens(cond):.2f}, coin model {metrics.expected_tau(metrics.alpha(traces), 4):.2f}, "
          f"measured tokens per full round {metrics.interval(metrics.tokens_per_round, traces)}")

# %% [markdown]
# ## 3. Predict, then measure: the chat template on prose
#
# A prediction first (write yours before running the cell). The pocket target is a base model
# trained on plain text (Shakespeare and Python), never on chat turns: wrapped in the template, it
# starts from markers it never saw, and its continuation may be less predictable, so α may fall.
# But four prompts are a small sample: the honest prediction of the *verdict* is "no clear
# difference" unless the effect is large.

# %%
pair = labkit.load_pair()
prose = generation.load_prompts("prose", limit=4)
kw = {"k": 4, "max_new_tokens": 32, "stop_at_eos": False}
without = [generation.run(pair, p, seed=i, **kw) for i, p in enumerate(prose)]
with_chat = [generation.run(pair, p, seed=i, chat=True, **kw) for i, p in enumerate(prose)]
prediction = {"direction": "no clear difference", "alpha change": -0.05}
checks.check_direction_prediction(prediction, without, with_chat)

# %% [markdown]
# Four prompts give wide intervals: if they overlap, the honest answer is "no clear difference on
# this sample", whatever the point estimates say. The shipped traces hold the same comparison on
# 24 code prompts (`labkit.load_traces("acceptance")`, group "code, k = 4, chat template").
#
# ## 4. Where real drafts part from the coin model

# %%
rows = [{"k": k, "alpha": metrics.alpha(shipped[f"code, k = {k}"]),
         "per_round": metrics.interval(metrics.tokens_per_round, shipped[f"code, k = {k}"])}
        for k in (1, 2, 3, 4, 5, 6, 8)]  # as the chapter builds them


def furthest_from_coin(rows):
    gap = {r["k"]: r["per_round"].value - metrics.expected_tau(r["alpha"], r["k"]) for r in rows}
    return max(gap, key=lambda k: abs(gap[k]))


checks.check_furthest_from_coin(furthest_from_coin, rows)
cond = metrics.acceptance_by_position(shipped["code, k = 4"], conditional=True)
print("conditional acceptance by position at k = 4:", " / ".join(f"{a:.2f}" for a in cond))

# %% [markdown]
# The coin model gives every draft the same chance. Real drafts do not have it: the conditional
# acceptance printed last says how each position fares once the drafts before it were kept. A
# position that is harder than the pooled `α` (here, compare the first with the rest) costs the
# most, because every later token of the round depends on it; positions that are easier once a
# run has started (a copy, a cliché, a closing bracket) give some of it back. The sign of the gap
# is the sum of the two; whether it is real is what the interval says, and the printed lines
# say, `k` by `k`, whether the coin model sits inside it.

# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Verify and accept: the rules that make speculation lossless
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/03_verify_and_accept.ipynb)
#
# **Goal.** Understand exactly which drafted tokens the target keeps, and why the output is the
# target's own: token for token with greedy decoding, and in distribution with sampling. We step
# through real rounds, then *prove* both claims by measurement, and find the place where
# transformers' MTP sampling path is not lossless, and the one-line fix.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

env = labkit.setup()

# %%
import torch

from labkit import generation, metrics, plots, rules, widgets
from labkit.style import COLORS

# The pocket pair runs offline; a real pair: pair = labkit.load_pair("google/gemma-4-E2B-it")
pair = labkit.load_pair()
tag = pair.label
prompts = generation.load_prompts("code", limit=2)
settings = dict(k=4, max_new_tokens=24, stop_at_eos=False)

# %% [markdown]
# ## The greedy rule
#
# With greedy decoding the target's next token is its argmax. A round drafts `k` tokens
# `x1 … xk`; the target runs *one* forward over `[last token, x1, …, xk]` and so knows its own
# argmax after each prefix. Keep `x1` if it equals the target's argmax at that position, then
# `x2`, and so on; stop at the first disagreement. Then add the target's argmax at the first
# position not kept: a *correction* if a draft was rejected, a *bonus* if all `k` were accepted.
# Every kept token is one the target would have produced itself, so the text cannot change.
# In labkit that is `rules.greedy_accept`, four lines.
#
# Step through the rounds of a real generation (the glass-box loop, `labkit.glassbox.speculate`,
# which does what transformers does in plain sight). Each round shows the drafter's probability
# `q(x)` and the target's `p(x)` for every drafted token, the verdict, and the target's own token.

# %%
greedy = generation.run(pair, prompts[0], path="glassbox", **settings)
stepper = widgets.RoundStepper(greedy, pair.tokenizer)
stepper

# %% [markdown]
# The same for the first round that rejected a draft, as a figure: hatched bars are the drafter's
# `q(x)`, solid bars the target's `p(x)`, coloured by the verdict (green accepted, vermillion
# rejected, grey never judged because an earlier draft was rejected).

# %%
decode = lambda t: pair.tokenizer.decode([t])  # noqa: E731
shown = next((r for r in greedy.rounds if r.rejected), greedy.rounds[-1])
plots.round_figure(shown, decode)

# %% [markdown]
# ## Proof 1: greedy output is identical
#
# Three ways to decode the same prompts: the target alone, transformers' assisted generation,
# and the glass-box loop. If the rule is right, all three emit the same tokens.

# %%
for i, prompt in enumerate(prompts):
    outs = {path: generation.run(pair, prompt, path=path, **settings).new_ids
            for path in ("plain", "transformers", "glassbox")}
    same = outs["plain"] == outs["transformers"] == outs["glassbox"]
    print(f"prompt {i}: plain == transformers == glass box: {same}  ({len(outs['plain'])} tokens each)")

# %% [markdown]
# (In float32 on a CPU this holds exactly. In bf16 on a GPU, a verify pass over `k + 1` tokens
# can round a near-tie differently from a one-token pass, so greedy outputs may diverge late:
# the rule is exact, the arithmetic is not.)
#
# ## The sampling rule
#
# With sampling, "the target's token" is a random draw from `p`. The drafter draws `x` from its
# own `q`. Keep `x` with probability `min(1, p(x) / q(x))`; on rejection, draw from the residual
# `norm(max(0, p − q))`. Tokens the drafter over-proposes are thinned out, and the residual
# refills exactly the mass it under-proposed, so the emitted token is distributed *exactly* like
# `p` (Leviathan et al. 2023). `rules.emitted_distribution` computes that emitted distribution
# exactly; here it is on a toy vocabulary of six tokens.

# %%
import plotly.graph_objects as go

p = torch.tensor([0.40, 0.25, 0.15, 0.10, 0.06, 0.04])  # the target
q = torch.tensor([0.10, 0.50, 0.05, 0.20, 0.10, 0.05])  # the drafter
argmax_draft = rules.point_mass(int(q.argmax()), 6)
cases = {
    "draft ~ q, verify with q (the rule)": rules.emitted_distribution(p, q, q),
    "draft = argmax q, verify with q": rules.emitted_distribution(p, q, argmax_draft),
    "draft = argmax q, verify as a point mass": rules.emitted_distribution(p, argmax_draft, argmax_draft),
}
fig = go.Figure([go.Bar(x=list(range(6)), y=p.tolist(), name="target p", marker_color=COLORS["bonus"])])
for (name, dist), color in zip(cases.items(), plots.SERIES):
    fig.add_bar(x=list(range(6)), y=dist.tolist(), name=name, marker_color=color)
    print(f"{name:45s} TV distance to p = {rules.tv_distance(dist, p):.4f}")
plots.styled(fig.update_layout(barmode="group"), "What a sampling round emits (toy vocabulary)")

# %% [markdown]
# The middle case is transformers' MTP path: its candidate generator drafts by **argmax** but
# hands the verifier `softmax(drafter logits)` as `q`. The rule's guarantee needs the draft to be
# drawn from the `q` it is verified with, so the output is biased toward the drafter's favourite.
# The fix is to tell the verifier the truth: an argmax draft is a point mass (third case), and
# verifying against a point mass keeps `x` with probability `p(x)` and otherwise resamples from
# `p` without `x`: exactly `p` again. labkit applies it with `labkit.tracing.lossless`, a forward
# hook on the drafter, opt-in via `run(..., lossless=True)`.
#
# ## Proof 2: sampled output is distributed like the target's
#
# For every real round, the traces record the exact TV distance between what the round's first
# position emits and the target's `p` (full vocabulary, computed from the actual `p` and `q`).
# Zero means lossless.

# %%
sampled = dict(k=4, max_new_tokens=24, temperature=1.0, stop_at_eos=False)
runs = {
    "transformers (as shipped)": [generation.run(pair, pr, path="transformers", seed=i, **sampled)
                                  for i, pr in enumerate(prompts)],
    "transformers + lossless fix": [generation.run(pair, pr, path="transformers", lossless=True, seed=i, **sampled)
                                    for i, pr in enumerate(prompts)],
    "glass box": [generation.run(pair, pr, path="glassbox", seed=i, **sampled) for i, pr in enumerate(prompts)],
}
for name, traces in runs.items():
    s = metrics.summarize(traces)
    print(f"{name:30s} mean TV to the target = {s.tv:.4f}   tau = {s.tau:.2f}   ({tag}, T = 1.0)")

# %%
fig = go.Figure()
for (name, traces), color in zip(runs.items(), plots.SERIES):
    tvs = [r.tv for t in traces for r in t.rounds if r.tv is not None]
    fig.add_trace(go.Box(y=tvs, name=name, marker_color=color, boxpoints="all", jitter=0.4))
fig.update_yaxes(title="TV distance, emitted vs target, per round")
plots.styled(fig, f"Is each round lossless? ({tag}, T = 1.0)")

# %% [markdown]
# How big the bias is depends on how far the drafter's softmax is from a point mass: a confident
# drafter (q of its argmax near 1) is almost a point mass already, an unsure one is not. Greedy
# decoding is unaffected (the verifier compares argmaxes, never `q`).
#
# Both exact paths are lossless, yet their `tau` above differs. A draft sampled from `q` survives
# with probability Σ min(p, q) = 1 − TV(p, q); an argmax draft verified as a point mass survives
# with probability p(argmax q). A drafter whose whole distribution tracks the target's gains from
# sampling its drafts; one that only gets the top token right does not. On the toy vocabulary:

# %%
print(f"draft ~ q, verified with q:          kept with probability {torch.minimum(p, q).sum():.2f}  (1 − TV)")
print(f"argmax draft, verified as a point mass: kept with probability {p[q.argmax()]:.2f}  (p of q's argmax)")

# %% [markdown]
#
# ## Summary
#
# - Greedy: keep drafts while they equal the target's argmax, then add the target's argmax. The
#   output is the target's own, token for token (shown above on three paths).
# - Sampling: keep `x ~ q` with probability `min(1, p/q)`, else resample from `norm(max(0, p − q))`.
#   The output is distributed exactly like the target's, *if the draft was drawn from q*.
# - transformers' MTP path drafts by argmax but verifies against softmax q: measurably not
#   lossless under sampling. Verifying argmax drafts as point masses makes it exact.
# - Exact paths can still differ in speed: a sampled draft is kept with probability 1 − TV(p, q),
#   an argmax draft verified as a point mass with probability p(argmax q).
#
# ## Exercises
#
# 1. Write the greedy rule: given `drafted` `(k,)` and `target_logits` `(k + 1, vocab)`, return
#    `(accepted, bonus)`. Uncomment the checker.
# 2. Write the residual: given `p` and `q` `(vocab,)`, return `norm(max(0, p − q))`. The checker
#    verifies that drafting from `q` and resampling from your residual emits exactly `p`.
# 3. In the toy example, make `q` equal to `p`. What is the acceptance probability of every
#    draft? What happens to the argmax-drafting case?

# %%
from labkit import checks

check_1 = checks.check_greedy_verify
check_2 = checks.check_residual  # uncomment the call(s) at the bottom once your code is ready


def greedy_verify(drafted, target_logits):
    raise NotImplementedError("accept while drafted[j] == target argmax at j; then the target's token")


def residual(p, q):
    raise NotImplementedError("norm(max(0, p - q))")


# check_1(greedy_verify)
# check_2(residual)

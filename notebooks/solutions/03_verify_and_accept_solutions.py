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
# # 03 · Verify and accept: solutions

# %%
import torch

from labkit import checks


def greedy_verify(drafted, target_logits):
    top = target_logits.argmax(-1)  # (k + 1,) the target's choice after each prefix
    accepted = 0
    while accepted < len(drafted) and int(drafted[accepted]) == int(top[accepted]):
        accepted += 1
    return accepted, int(top[accepted])


def residual(p, q):
    r = torch.clamp(p - q, min=0.0)
    return r / r.sum() if r.sum() > 0 else p  # p == q: nothing is ever rejected, any p-draw is exact


checks.check_greedy_verify(greedy_verify)
checks.check_residual(residual)

# %% [markdown]
# Exercise 3: with `q = p`, `min(1, p/q) = 1` for every token, so every draft is kept and the
# output is a draw from `p`. Drafting the argmax of `q` but verifying with `q` still emits the
# argmax with probability 1: maximally biased, even though the drafter is perfect.

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
# # 00 · A tour: solutions
#
# Solutions to the exercises of `00_tour`; the checkers build their own cases, so no model loads.

# %%
from labkit import checks


def tokens_per_forward(trace):
    return len(trace.new_ids) / len(trace.rounds)  # one round per target forward, prefill included


checks.check_tokens_per_forward(tokens_per_forward)

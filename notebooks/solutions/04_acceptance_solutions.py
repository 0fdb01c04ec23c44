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
# # 04 · Acceptance: solutions

# %%
from labkit import checks


def expected_tau(alpha, k):
    if alpha == 1:
        return k + 1.0  # every draft kept, plus the target's token
    return (1 - alpha ** (k + 1)) / (1 - alpha)  # 1 + alpha + ... + alpha^k


checks.check_expected_tau(expected_tau)

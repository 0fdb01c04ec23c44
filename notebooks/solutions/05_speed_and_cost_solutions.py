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
# # 05 · Speed and cost: solutions

# %%
from labkit import checks, experiments


def best_k(alpha, c, ks):
    return max(ks, key=lambda k: experiments.predicted_speedup(alpha, k, c))


checks.check_best_k(best_k)

# %% [markdown]
# Exercise 2: solve `expected_tau(α, 4) / (4c + v(5)) = 1.5` for `α`, e.g. by bisection:

# %%
def alpha_for(target_speedup, k, c, verify=1.0):
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if experiments.predicted_speedup(mid, k, c, verify) < target_speedup else (lo, mid)
    return hi


print(f"with c = 0.1, k = 4, verification free: α ≈ {alpha_for(1.5, 4, 0.1):.3f} for a 1.5x speedup")

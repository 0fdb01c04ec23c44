# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · One token at a time — solutions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/solutions/01_one_token_at_a_time_solutions.ipynb)
#
# Solutions to the exercises of `01_one_token_at_a_time`, each followed by the notebook's checker.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

env = labkit.setup()

# %% [markdown]
# **1.** One forward over k + 1 tokens against k + 1 forwards over one token.

# %%
def verification_cost(rows: list[tuple[int, float]], k: int) -> float:
    t = dict(rows)
    return t[k + 1] / ((k + 1) * t[1])


def check_verification_cost(fn) -> None:
    rows = [(1, 0.010), (2, 0.011), (4, 0.013), (8, 0.020), (16, 0.035)]
    assert abs(fn(rows, 3) - 0.013 / (4 * 0.010)) < 1e-9
    assert abs(fn(rows, 7) - 0.020 / (8 * 0.010)) < 1e-9
    print("✓ verification_cost: on these rows, checking 7 drafts costs", f"{fn(rows, 7):.2f}", "of 8 forwards")


check_verification_cost(verification_cost)

# %% [markdown]
# **2.** Arithmetic per forward: 2n FLOPs per weight. Memory traffic: `bytes_per_weight` per weight.
# They take the same time when 2n / bytes_per_weight = balance, so n = balance × bytes_per_weight / 2.
# Halving the bytes per weight halves the knee: quantized weights turn compute-bound sooner.

# %%
def knee(balance: float, bytes_per_weight: float) -> float:
    return balance * bytes_per_weight / 2


def check_knee(fn, balance: float | None = None) -> None:
    assert abs(fn(10.0, 4) - 20.0) < 1e-9 and abs(fn(10.0, 2) - 10.0) < 1e-9
    print("✓ knee: at a balance of 10 FLOP/byte, float32 weights turn compute-bound at n = 20")
    for name, size in [("float32", 4), ("bf16", 2), ("4-bit", 0.5)] if balance else []:
        print(f"  on this machine with {name} weights: n ≈ {fn(balance, size):.1f}")


check_knee(knee)

# %% [markdown]
# **3.** More threads add arithmetic (FLOP/s) but not memory bandwidth, so the balance, and with
# it the knee, moves to larger n. The flat stretch gets longer, if the threads get the CPU at
# all. A longer context makes attention read more K/V per token, and that traffic grows with n
# as well as with the context, so the curve rises earlier and more steeply.

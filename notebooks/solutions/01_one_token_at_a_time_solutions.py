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
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · One token at a time: solutions
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

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # choose the pair you chose in the chapter (LABKIT_PAIR=..., if set, wins)

# %%
from labkit import architecture, checks

# %% [markdown]
# **1.** Least squares by hand: the slope `b` is the covariance of n and t over the variance of n,
# the intercept `a` the mean time minus `b` times the mean n. `a` is the fixed part every forward
# pays, `b` each token's own cost; the knee a / b is where the two are equal. A curve that does
# not rise (b ≤ 0) has no knee.

# %%
def knee_of(rows):
    ns, ts = [float(n) for n, _ in rows], [float(t) for _, t in rows]
    mean_n, mean_t = sum(ns) / len(ns), sum(ts) / len(ts)
    b = sum((n - mean_n) * (t - mean_t) for n, t in zip(ns, ts)) / sum((n - mean_n) ** 2 for n in ns)
    a = mean_t - b * mean_n
    return float("inf") if b <= 0 else max(a, 0.0) / b


checks.check_knee(knee_of)

# %% [markdown]
# **2.** Verifying k drafts is one forward over k + 1 tokens (the last seen token and the k
# drafts); plain decoding needs k + 1 one-token forwards for as many target tokens.

# %%
def verification_cost(rows, k):
    t = dict(rows)
    return t[k + 1] / ((k + 1) * t[1])


checks.check_verification_cost(verification_cost)

# %% [markdown]
# **3.** More threads add arithmetic (FLOP/s) but not memory bandwidth. The one-token forward is
# mostly streaming weights, so it speeds up little; the 8- and 16-token forwards have more
# arithmetic to share out, so they speed up more. The relative cost of n tokens therefore *falls*
# with more threads (the knee moves out), as long as the threads get the CPU: on a machine other
# programs are using, a second thread waits at every matmul and the curve gets noisier instead.
# A guess a little below the one-thread numbers is the reasoned one; the measurement:

# %%
import torch

torch.set_num_threads(1)
scaled = architecture.scaled_text_decoder("E2B", layers=2, vocab_size=8192)
one = dict(architecture.forward_cost_curve(scaled, (1, 8, 16), context=128, repeats=3))
predicted = {"n = 8": 0.9 * one[8] / one[1], "n = 16": 0.9 * one[16] / one[1]}
rows = dict(architecture.forward_cost_curve(scaled, (1, 8, 16), context=128, repeats=3, threads=env.threads))
print(f"one thread: n = 8 costs {one[8] / one[1]:.2f}×, n = 16 {one[16] / one[1]:.2f}× a one-token forward")
checks.check_prediction(predicted, {"n = 8": rows[8] / rows[1], "n = 16": rows[16] / rows[1]})
if env.threads <= 1:
    print("labkit.setup gave this session one thread (a busy machine, or LABKIT_THREADS=1), so both curves ran on "
          "one: their difference is the machine's noise, not the threads")
else:
    fell = [n for n in (8, 16) if rows[n] / rows[1] < one[n] / one[1]]
    print(f"with {env.threads} threads the relative cost fell at n = {', '.join(map(str, fell))}" if fell
          else f"with {env.threads} threads the relative cost did not fall here (one possible cause: a thread "
                 "waiting for a core that another program holds)")

# %% [markdown]
# **Further:** a longer `context` makes attention read more K/V per token, and that traffic grows
# with n as well as with the context, so the curve rises earlier and more steeply: try
# `context=2048`.

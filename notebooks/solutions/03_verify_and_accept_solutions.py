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
# # 03 · Verify and accept: solutions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/solutions/03_verify_and_accept_solutions.ipynb)
#
# Solutions to the exercises of `03_verify_and_accept`. The checkers build their own cases, so no
# model loads.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # choose the pair you chose in the chapter (LABKIT_PAIR=..., if set, wins)

# %% [markdown]
# **1.** The greedy rule: walk the drafts while each equals the target's argmax after the same
# prefix; the target's argmax at the first position not kept closes the round (a correction after
# a rejection, the bonus after `k` kept drafts).

# %%
import torch

from labkit import checks


def greedy_verify(drafted, target_logits):
    top = target_logits.argmax(-1)  # (k + 1,) the target's choice after each prefix
    accepted = 0
    while accepted < len(drafted) and int(drafted[accepted]) == int(top[accepted]):
        accepted += 1
    return accepted, int(top[accepted])


checks.check_greedy_verify(greedy_verify)

# %% [markdown]
# **2.** One step of the sampling rule. `u` is uniform on [0, 1), so `u < min(1, p(x)/q(x))` happens
# with exactly that probability. On a rejection the token comes from the residual: the part of `p`
# that `q` did not cover, renormalised. (If `p == q` nothing is ever rejected; the `else p` only
# guards the division.)

# %%
def sample_step(p, q, x, u, generator=None):
    keep = min(1.0, float(p[x] / q[x])) if q[x] > 0 else 1.0
    if u < keep:
        return True, x
    r = torch.clamp(p - q, min=0.0)
    r = r / r.sum() if r.sum() > 0 else p
    return False, int(torch.multinomial(r, 1, generator=generator))


checks.check_sample_step(sample_step)

# %% [markdown]
# **3.** With `q = p`, `min(1, p/q) = 1` for every token: every draft is kept (a), and drafting
# from `q` emits `q = p` exactly. The as-shipped rule drafts the argmax of `q` and verifies it
# against `q`: the ratio is again 1, so the argmax is always kept and the round always emits the
# same token. Its TV distance to `p` is 1 − p(argmax) = 1 − 0.40 = 0.60 (b): the better the
# drafter, the *more* biased that rule is, because a perfect `q` never rejects.

# %%
prediction = {"keep": 1.0, "tv_argmax": 0.60}
checks.check_q_equals_p(prediction)

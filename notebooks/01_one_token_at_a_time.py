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
# # 01 · One token at a time
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/01_one_token_at_a_time.ipynb)
#
# **Goal.** A language model writes one token per forward pass, and each pass has to read every
# weight of the model. In this notebook you measure, on the machine in front of you, how long one
# forward takes over 1, 2, 4, 8 and 16 new tokens. For a large model on a GPU the roofline model
# (below) predicts that this time barely grows for small n: decoding there is limited by reading
# the weights from memory, not by arithmetic, and that flat stretch is what speculative decoding
# uses (the target checks several drafted tokens in one pass for about the price of one). Whether
# it holds here, on a CPU and a small model, is what you will measure, and the same model says
# why the answer can differ.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # the pair labkit.load_pair() loads (LABKIT_PAIR=..., if set, wins)
pair = labkit.load_pair()
print(pair.label, "· the pocket pair, trained in this repo" if pair.is_pocket else "· a real Gemma 4 pair")

# %% [markdown]
# Every timing in this notebook runs where the pair runs: on a CPU, on **one thread** (on a
# machine that other programs share, two threads must both get the CPU at every matrix multiply,
# so timings jump around; one thread keeps them steady, and exercise 3 puts the threads back); on
# a GPU, on the GPU, waiting for its queued work before each clock read.

# %%
import torch

from labkit import experiments

torch.set_num_threads(1)
device, dtype = pair.device, pair.dtype
where = experiments.device_name(device)  # "1 CPU thread" or the GPU's name


def sync() -> None:
    experiments.synchronize(device)  # a GPU queues its kernels: stop the clock when they are done


print(f"timing {pair.label} on {where}, in {str(dtype).removeprefix('torch.')}")

# %% [markdown]
# ## Decoding, one forward per token
#
# Greedy decoding is a loop. The target reads the prompt once (the *prefill*), keeps each token's
# keys and values in a KV cache, and from then on every forward reads one new token and produces
# one. Here is that loop with a timer on each step, run three times after a warm-up (the first
# calls of anything in torch pay one-off costs); we report medians and their range.

# %%
import statistics
import time

from transformers import DynamicCache

from labkit import architecture, plots
from labkit.glassbox import cache_kwargs  # the cache argument as this transformers release names it

tokenizer, target = pair.tokenizer, pair.target
prompt = labkit.load_prompts("prose", limit=1)[0]
ids = tokenizer(prompt, return_tensors="pt").input_ids.to(pair.device)


@torch.inference_mode()
def decode(steps: int) -> tuple[float, list[float], list[int]]:
    """Prefill, then `steps` greedy decode steps: (prefill seconds, each step's seconds, the new tokens)."""
    cache = DynamicCache(config=target.config.get_text_config())
    sync()
    t0 = time.perf_counter()
    out = target(input_ids=ids, **cache_kwargs(target, cache), use_cache=True)  # prefill
    sync()
    prefill = time.perf_counter() - t0
    times, new = [], []
    for _ in range(steps):
        token = out.logits[0, -1].argmax()
        new.append(int(token))
        t0 = time.perf_counter()
        out = target(input_ids=token.view(1, 1), **cache_kwargs(target, cache), use_cache=True)
        sync()
        times.append(time.perf_counter() - t0)
    return prefill, times, new


decode(4)  # warm-up: the first calls pay one-off costs (allocation, kernel selection)
runs = [decode(16) for _ in range(3)]  # three prefills, 48 decode steps
prefill_times = [p for p, _, _ in runs]
step_times = [t for _, times, _ in runs for t in times]
new_ids = runs[0][2]
prefill_ms, step_ms = statistics.median(prefill_times) * 1e3, statistics.median(step_times) * 1e3
n_prompt = ids.shape[1]

print(repr(prompt), "→", repr(tokenizer.decode(new_ids)))
print(f"prefill of {n_prompt} tokens: median {prefill_ms:.1f} ms "
      f"(range {min(prefill_times) * 1e3:.1f}–{max(prefill_times) * 1e3:.1f} over {len(prefill_times)} runs)")
print(f"one decode step, one token: median {step_ms:.1f} ms "
      f"(range {min(step_times) * 1e3:.1f}–{max(step_times) * 1e3:.1f} over {len(step_times)} steps) · {pair.label}, "
      f"{where}")
ratio = prefill_ms / step_ms
as_long = "about as long as" if ratio < 1.25 else f"{ratio:.1f}× as long as"
if ratio < n_prompt / 2:
    versus = f"far less than the {n_prompt} steps of reading them one at a time ({ratio / n_prompt:.0%} of that)"
elif ratio < n_prompt:
    versus = f"less than the {n_prompt} steps of reading them one at a time, but not by much"
else:
    versus = "no cheaper than reading them one at a time"
print(f"→ the prefill read {n_prompt} tokens in one pass and took {as_long} one decode step: {versus}")

# %% [markdown]
# The last line compares one forward over the whole prompt with the one-token forwards that
# plain decoding pays for every token. The rest of this notebook explains what sets that ratio.
#
# ## Memory or arithmetic?
#
# A forward over n tokens does about 2 · n floating-point operations per weight (one multiply and
# one add), but it reads each weight only once, whatever n is. So the work grows with n while the
# memory traffic stays the same. The two balance at a machine-specific number of FLOPs per byte.
# Let's measure both rates where the pair runs, in the precision its weights are in.

# %%
def measure_machine(repeats: int = 5) -> tuple[list[float], list[float]]:
    """(bytes/s read + written by a large copy, FLOP/s of a large matmul in the pair's dtype), one
    per repeat, on the pair's device, after a warm-up of each, the two interleaved."""
    size = 1024 if device.type == "cpu" else 8192  # a GPU needs a larger matmul to reach its peak
    src = torch.rand(128 * 2**20 // dtype.itemsize, device=device, dtype=dtype)  # 128 MiB: past any CPU cache
    dst = torch.empty_like(src)
    a, b = (torch.rand(size, size, device=device, dtype=dtype) for _ in range(2))
    dst.copy_(src), a @ b  # warm-up
    copy_rates, mm_rates = [], []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        dst.copy_(src)
        sync()
        copy_rates.append(2 * src.numel() * dtype.itemsize / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        a @ b
        sync()
        mm_rates.append(2 * size**3 / (time.perf_counter() - t0))
    return copy_rates, mm_rates


copy_rates, mm_rates = measure_machine()
bandwidth, flops = statistics.median(copy_rates), statistics.median(mm_rates)
balance = flops / bandwidth  # FLOPs the device can do in the time it moves one byte
precision = str(dtype).removeprefix("torch.")
# a forward over n tokens does 2n FLOPs per weight, and reads the weight's bytes once
roofline_knee = balance * dtype.itemsize / 2
print(f"{where}, medians of {len(copy_rates)}: {bandwidth / 1e9:.1f} GB/s memory "
      f"(range {min(copy_rates) / 1e9:.1f}–{max(copy_rates) / 1e9:.1f}), {flops / 1e9:.1f} GFLOP/s in {precision} "
      f"(range {min(mm_rates) / 1e9:.1f}–{max(mm_rates) / 1e9:.1f})")
print(f"balance: {balance:.1f} FLOP per byte → with {precision} weights, compute should start to "
      f"dominate around n ≈ {roofline_knee:.0f} tokens per forward")

# %% [markdown]
# That is the roofline model in a single number. Below the knee, the weights' trip from memory
# sets the time, and extra tokens in the same forward come almost free. Above it, arithmetic
# sets the time and each token adds its share. A data-centre GPU is built for arithmetic: an
# H100 SXM's data sheet gives about 990 TFLOP/s of dense bf16 arithmetic against 3.35 TB/s of
# memory, a balance near 300 FLOPs per byte, which with bf16 weights (2 bytes, 2 FLOPs per token)
# puts its knee near n ≈ 300 tokens per forward (a data-sheet estimate, not measured in this lab).
# Weights in fewer bytes (4 bits) move the knee to smaller n.
#
# ## The cost curve
#
# `architecture.forward_cost_samples` times a forward over n new tokens on top of a KV cache that
# already holds `context` tokens. This is exactly what a verification pass does. It warms up each
# n once, then takes the n's in turns, so that a slow spell of the machine hits all of them; we
# report each n's median and range. We time two models:
#
# - the loaded target (the pocket target: 7M parameters in the quick build, 15M in the full
#   one; or the pair chosen in the setup cell);
# - a **random-weight decoder with the real E2B text decoder's layer geometry** (width 1536, 8
#   query heads, 1 KV head, head dims 256/512, MLP 6144, Per-Layer Embeddings) but only two
#   layers and a 8,192-token vocabulary, so that it fits in memory and times in seconds. Timing
#   does not need trained weights: a matmul costs the same whatever numbers are in it. It runs
#   where the pair runs, in the pair's precision.

# %%
scaled = architecture.scaled_text_decoder("E2B", layers=2, vocab_size=8192).to(device, dtype)
n_params = architecture.param_counts(scaled)["total"]
architecture.Table(architecture.layer_table(scaled.config),
                   caption=f"E2B-shaped decoder, random weights: {n_params / 1e6:.0f}M parameters "
                           f"({n_params * dtype.itemsize / 2**20:.0f} MiB in {precision})")

# %%
ns = (1, 2, 4, 8, 16)
repeats = {"target": 7, "scaled": 5}  # after one warm-up per n; the pocket target is cheap
samples = {
    f"{pair.label} target": architecture.forward_cost_samples(target, ns, context=64, repeats=repeats["target"]),
    "E2B-shaped, 2 layers, random": architecture.forward_cost_samples(scaled, ns, context=128,
                                                                      repeats=repeats["scaled"]),
}
curves = {label: [(n, statistics.median(times[n])) for n in ns] for label, times in samples.items()}
architecture.Table(
    [{"n": n, **{f"{label}: {what}": value for label, times in samples.items() for what, value in (
        ("ms", round(statistics.median(times[n]) * 1e3, 1)),
        ("range", f"{min(times[n]) * 1e3:.1f}–{max(times[n]) * 1e3:.1f}"),
        ("× n = 1", round(statistics.median(times[n]) / statistics.median(times[1]), 2)))}} for n in ns],
    caption=f"One forward over n new tokens: median and range of {repeats['target']} ({pair.label}) / "
            f"{repeats['scaled']} (E2B-shaped) timings, {where}")

# %%
for label, rows in curves.items():
    t = dict(rows)
    growth = ", ".join(f"n = {n}: {t[n] / t[1]:.2f}×" for n in ns[1:])
    if t[4] / t[1] < 1.25:
        verdict = "nearly flat up to n = 4: extra tokens in a forward come almost free here"
    elif t[16] / t[1] < 8:
        verdict = (f"it grows with n, yet one forward over 16 tokens costs {t[16] / (16 * t[1]):.0%} of 16 "
                   "one-token forwards")
    else:
        verdict = "it grows almost in proportion to n: here extra tokens cost nearly their full price"
    print(f"{label}, time relative to one token: {growth}; {verdict}")

# %% [markdown]
# Where does each curve stop being flat? `architecture.knee` fits a straight line
# t(n) = a + b·n through the measured points: `a` is what every forward pays whatever n is
# (streaming the weights, per-layer overhead), `b` what each extra token adds. The **knee** is
# n = a / b, where the tokens' own cost has grown as large as the fixed part. Below it, the
# tokens' own cost is the smaller share of a forward.

# %%
knees = {label: architecture.knee(rows) for label, rows in curves.items()}
for label, n_knee in knees.items():
    if n_knee <= max(ns):
        print(f"{label}: knee at n ≈ {n_knee:.1f} tokens")
    else:
        print(f"{label}: no knee up to n = {max(ns)}; the fit puts it at n ≈ {n_knee:.0f}" if n_knee < float("inf")
              else f"{label}: the curve does not rise at all up to n = {max(ns)}")
print(f"the roofline estimate from this machine's balance ({precision}): n ≈ {roofline_knee:.0f}")

# %%
plots.cost_curve_figure(
    curves, title=f"One forward over n tokens, measured on {where} ({pair.label} and a random E2B-shaped model)",
    sample=f"median of {repeats['target']} ({pair.label}) and {repeats['scaled']} (E2B-shaped) timings per n after a "
           f"warm-up, {where}, {precision}, after a 64- / 128-token context; dashed lines mark the fitted knees")

# %% [markdown]
# Read the plot against the dotted diagonal, which is what n separate one-token forwards would
# cost; a dashed vertical line marks a knee where the fit puts one inside the measured range, and
# the legend names each curve's knee. The further a curve stays below the diagonal, the cheaper
# it is to check many tokens at once. For the E2B-shaped model, compare its knee with the
# roofline estimate printed above. They need not agree closely: the estimate uses a copy's
# bandwidth and one large matmul's FLOP rate, while a real forward also pays attention,
# activations and Python. (On some CPUs, n = 1 uses a matrix-vector kernel that is faster than
# the matrix-matrix kernel used from n = 2 on. If the curve jumps between 1 and 2 and then
# flattens, that is why: compare n = 2 with n = 16 in the table.)
#
# Why can a curve rise early here? On a CPU the balance is small, so the roofline itself puts the
# knee at small n for float32 weights (the estimate printed above). And each token brings work of
# its own that this one-number model leaves out (attention over the context, the output layer's
# scores at every position, small matrix products that run far below the CPU's peak), which
# weighs more in a small model. A large model on a GPU is the other extreme: every forward streams
# gigabytes of weights, and the GPU's arithmetic could serve hundreds of tokens in the time that
# takes (the data-sheet knee above; on a GPU runtime the measurements above are the GPU's own). That is
# where speculative decoding's "verification is nearly free" comes from. On this machine, the
# measurement below says what verification costs.
#
# ## What verification costs
#
# Speculative decoding drafts k tokens cheaply, then the target checks all of them in **one**
# forward over k + 1 tokens (the last seen token plus the k drafts). Compare that with the k + 1
# forwards plain decoding would need to produce as many tokens:

# %%
for label, rows in curves.items():
    t = dict(rows)
    for k in (3, 7, 15):
        if k + 1 in t:
            print(f"{label}: verifying k={k:>2} drafts costs {t[k + 1] / t[1]:4.2f} forwards of one token "
                  f"instead of {k + 1} (×{t[k + 1] / ((k + 1) * t[1]):.2f} of the sequential cost)")

# %% [markdown]
# If all k drafts are accepted, one forward yields k + 1 tokens. If none are, it still yields one
# token, the target's own correction, so the cost was a single forward plus the drafting. That
# is why a well-matched drafter pays off, and why the k that pays best depends on where this
# machine's knee is: notebook 05 uses this curve to predict the speedup.

# %% [markdown]
# ## Summary
#
# - Autoregressive decoding runs one forward per token, and every forward reads all the weights.
# - When a forward is **memory-bound** (a large model on a GPU, at small n), the time is spent
#   moving weights, so a forward over n tokens costs about the same as over one. The roofline
#   model puts the end of that stretch at n ≈ balance × bytes per weight / 2; a measured curve
#   puts its knee where a straight-line fit's per-token cost catches up with its fixed cost
#   (`architecture.knee`). A CPU's balance is small, so there the knee comes early.
# - You measured this machine's balance and the cost curve of the loaded target and of a
#   random-weight model with the real E2B layer geometry (timing needs shapes, not trained weights),
#   and read each curve's knee off the measurement.
# - Verification of k drafts is one forward over k + 1 tokens, so it costs less than k + 1
#   sequential forwards (how much less, you measured): the room speculative decoding works in.

# %% [markdown]
# ## Exercises
#
# **1. Find the knee yourself.** Write `knee_of(rows)`: from cost-curve rows `[(n, seconds), ...]`
# return the knee as defined above, without calling `architecture.knee`. Return `float("inf")`
# when the curve does not rise.
#
# **2. What verification costs.** Write `verification_cost(rows, k)`: the time of the forward that
# verifies `k` drafts, as a share of what plain decoding pays for the same number of target
# tokens, one forward each.
#
# **3. Predict, then measure.** On a CPU the curves above used one thread. With all of this
# machine's threads (`threads=env.threads`), what will a forward over 8 tokens of the E2B-shaped
# model cost on the CPU, as a multiple of its one-token forward? And over 16? Write your guesses,
# then uncomment the measurement (it runs on the CPU wherever the pair runs).

# %%
from labkit import checks

check_1 = checks.check_knee  # uncomment the calls at the bottom once your code is ready
check_2 = checks.check_verification_cost
check_3 = checks.check_prediction


def knee_of(rows):
    raise NotImplementedError("fit a straight line through the points (least squares, by hand); "
                              "which of its two numbers is the fixed part?")


def verification_cost(rows, k):
    raise NotImplementedError("how many tokens does the verifying forward read? how many plain forwards "
                              "would produce as many tokens?")


predicted = {"n = 8": None, "n = 16": None}  # your guesses: time relative to n = 1, all threads

# check_1(knee_of)
# check_2(verification_cost)
# rows = dict(architecture.forward_cost_curve(scaled.to("cpu", torch.float32), (1, 8, 16), context=128, repeats=3,
#                                            threads=env.threads))
# check_3(predicted, {"n = 8": rows[8] / rows[1], "n = 16": rows[16] / rows[1]})

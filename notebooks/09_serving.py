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
# # 09 · From the lab to a server: engines, their metrics, batches, int8
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/09_serving.ipynb)
#
# **Goal.** Take what the glass box taught you to the engines people deploy. Find the command
# that serves a real Gemma 4 pair with its MTP drafter in each engine; read a server's
# speculative-decoding metrics and translate them into the lab's (the same rounds give two very
# different "acceptance" numbers); see why speculation pays at batch 1 and fades as a server
# batches requests; and quantize the pocket pair to int8, as a phone would run it, to see what
# survives: memory, speed, acceptance, and the output itself.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # the pair labkit.load_pair() loads (LABKIT_PAIR=..., if set, wins)

# %%
from labkit import batching, experiments, metrics, ondevice, plots, serving

# The pair chosen in the setup cell: the pocket pair (offline) unless PAIR or LABKIT_PAIR names another
pair = labkit.load_pair()
tag = pair.label

# %% [markdown]
# ## The engines: a runbook (not run here)
#
# This lab runs on a CPU with no network, so none of these commands ran here. Each is copied from
# the engine's docs, source or a maintainer's pull request; [`docs/serving-runbook.md`](../docs/serving-runbook.md)
# has every flag, limitation and source in full, and says what could not be verified.
#
# | engine | since | lossless for | sources |
# |---|---|---|---|
# | **vLLM** | v0.21.0 (inferred from issue threads) | greedy and sampling (its rejection sampler), up to numerics | [MTP docs](https://docs.vllm.ai/en/stable/features/speculative_decoding/mtp/), [Gemma 4 recipe](https://github.com/vllm-project/recipes/blob/main/Google/Gemma4.md), [PR #41745](https://github.com/vllm-project/vllm/pull/41745) |
# | **SGLang** | not found (the cookbook installs from `main`) | greedy; sampling at the default accept thresholds (inferred from source) | [cookbook](https://github.com/sgl-project/sglang/blob/main/docs_new/cookbook/autoregressive/Google/Gemma4.mdx), [PR #24436](https://github.com/sgl-project/sglang/pull/24436) |
# | **llama.cpp** | a build between b9543 and b9549 | greedy and sampling (a target sample at every drafted position, then match; exactness inferred from source) | [PR #23398](https://github.com/ggml-org/llama.cpp/pull/23398), [PR #24282](https://github.com/ggml-org/llama.cpp/pull/24282) |
# | **LiteRT-LM** (on-device) | v0.11.0 | greedy only (its verifier is greedy; sampling settings are reported ignored with MTP on, [issue #3017](https://github.com/google-ai-edge/LiteRT-LM/issues/3017)) | [CLI guide](https://developers.google.com/edge/litert-lm/cli#mtp), [Gemma 4 page](https://developers.google.com/edge/litert-lm/models/gemma-4), [drafter source](https://github.com/google-ai-edge/LiteRT-LM/blob/main/runtime/executor/llm_litert_mtp_drafter.cc) |
# | **transformers** | v5.8.0 (this lab: `>=5.22,!=5.23.*,<5.25`) | greedy; its sampled MTP path is biased (chapter 03) | [Gemma MTP guide](https://ai.google.dev/gemma/docs/mtp/mtp), [v5.8.0 notes](https://github.com/huggingface/transformers/releases/tag/v5.8.0), [`candidate_generator.py`](https://github.com/huggingface/transformers/blob/main/src/transformers/generation/candidate_generator.py) |
#
# The commands, with the sources above (E4B shown; the other pairs swap the ids):
#
# ```bash
# # vLLM
# vllm serve google/gemma-4-E4B-it --speculative-config \
#   '{"method": "mtp", "model": "google/gemma-4-E4B-it-assistant", "num_speculative_tokens": 4}'
#
# # SGLang
# sglang serve --model-path google/gemma-4-E4B-it --speculative-algorithm NEXTN \
#   --speculative-draft-model-path google/gemma-4-E4B-it-assistant \
#   --speculative-num-steps 5 --speculative-num-draft-tokens 6 --speculative-eagle-topk 1
#
# # llama.cpp: convert the assistant to GGUF once, then serve it as the draft model
# python convert_hf_to_gguf.py gemma-4-E4B-it-assistant --outfile mtp-gemma-4-E4B-it-F16.gguf --outtype f16
# llama-server -m gemma-4-E4B-it-Q4_0.gguf --model-draft mtp-gemma-4-E4B-it-F16.gguf \
#   --spec-type draft-mtp --spec-draft-n-max 3 -np 1   # one slot: older builds lost acceptance with more
#
# # LiteRT-LM: the drafter ships inside the .litertlm bundle, not the Hugging Face checkpoint
# litert-lm run --from-huggingface-repo=litert-community/gemma-4-E4B-it-litert-lm gemma-4-E4B-it.litertlm \
#   --backend=gpu --enable-speculative-decoding=true --prompt="What is the capital of France?"
# ```
#
# ```python
# # transformers (what this lab runs, on the pocket pair)
# out = target.generate(**inputs, assistant_model=assistant, max_new_tokens=256, do_sample=False)
# ```
#
# How many drafts per round? vLLM's Gemma 4 recipe recommends `num_speculative_tokens` **2 for
# E2B, 4 for E4B and 26B-A4B, 4–8 for 31B** (A100/H100, temperature 0: "faster targets prefer
# fewer"); its generic MTP page calls 1 "a good default to start with". The batch section below shows why the answer
# moves with the batch size, and chapter 05 why it moves with the target's speed. vLLM no longer
# has to keep `k` constant: `num_speculative_tokens_per_batch_size` picks it by batch size, and
# adaptive verification ([PR #52228](https://github.com/vllm-project/vllm/pull/52228)) changes it
# at run time.

# %% [markdown]
# ## The same rounds, two vocabularies
#
# A server reports acceptance in its own words, from four counters it keeps
# ([`vllm/v1/spec_decode/metrics.py`](https://github.com/vllm-project/vllm/blob/v0.33.0/vllm/v1/spec_decode/metrics.py#L228-L264)):
# rounds that drafted (`num_drafts`), drafted tokens, kept drafts, and kept drafts per position.
#
# | vLLM says | formula | the lab says | formula |
# |---|---|---|---|
# | acceptance rate | kept / **drafted** | α | kept / **judged** |
# | mean acceptance length | 1 + kept / rounds | `tau` | new tokens / target forwards, **prefill included** |
# | per-position acceptance rate | kept at j / **all rounds** | acceptance by position (04) | kept at j / rounds that **drafted** j: at a fixed k, all rounds, so the same number as vLLM's |
# | (no counter) | | conditional acceptance (04) | kept at j / rounds that **kept every draft before** j |
#
# The difference is what happens after a rejection: the drafts behind it were drafted, so vLLM
# counts them, but never judged, so α does not. Here are both, on the same recorded rounds of the
# pocket pair (chapter 04's trace set, recorded on transformers' assisted `generate`; the sampled
# row runs transformers' lossless hook, chapter 03: argmax drafts verified as point masses, which is
# also how vLLM verifies sampled requests by default, `draft_sample_method="greedy"`; chapter 04
# compares it with drafts sampled from `q`).

# %%
recorded, meta = labkit.load_traces("acceptance")
print(f"{meta['pair']}: recorded {meta['date']} by `{meta['command']}`, {meta['new_tokens']} new tokens per prompt")
if not pair.is_pocket:
    print(f"This chapter's recorded rounds and costs are the pocket pair's; its live slices run on {tag}.")
print(f"{'rounds':<22}{'α (lab)':>18}{'acc. rate (vLLM)':>18}{'tau (lab)':>18}{'mean acc. len. (vLLM)':>23}")
for name in ("code, k = 4", "prose, k = 4", "code, k = 4, T = 1.0"):
    traces = recorded[name]
    counts = metrics.vllm_counts(traces, k=4)  # rounds that drafted a full k, as vLLM does at a fixed k
    rate = metrics.interval(lambda ts: metrics.vllm_counts(ts, k=4).acceptance_rate, traces)
    length = metrics.interval(lambda ts: metrics.vllm_counts(ts, k=4).mean_acceptance_length, traces)
    print(f"{name:<22}{str(metrics.interval(metrics.alpha, traces)):>18}{str(rate):>18}"
          f"{str(metrics.interval(metrics.tau, traces)):>18}{str(length):>23}")
print(f"({len(traces)} prompts a row, 90 % bootstrap intervals over prompts; vLLM's figures count only "
      "rounds that drafted all k = 4)")

# %% [markdown]
# On every row α is well above vLLM's acceptance rate, and their intervals do not overlap: quote
# "acceptance" without saying whose, and you can be off by more than a quarter (greedy) or by
# half and more (sampled). `tau` and the mean acceptance
# length differ less: the one counts the prefill as a forward that yields one token, the other
# counts rounds only. The lab's α can be read back from a server's counters when every round drafts
# the same k (a fixed `num_speculative_tokens`, vLLM's plain configuration; not with
# `num_speculative_tokens_per_batch_size` or adaptive verification, which vary k): the rounds with a
# rejection are all rounds but the fully accepted ones, and those are the count at the last
# position. (`SpecDecodeCounts.alpha` refuses counts whose k varied.)

# %%
counts = metrics.vllm_counts(recorded["code, k = 4"], k=4)
print(counts)
full = [r for t in recorded["code, k = 4"] for r in t.rounds if r.k == 4]
print(f"α from the four counters: {counts.alpha():.4f}; from the same rounds, kept / judged: "
      f"{sum(r.accepted for r in full) / sum(r.accepted + r.rejected for r in full):.4f}")

# %% [markdown]
# ## Reading a server's `/metrics`
#
# A vLLM server publishes those counters on `/metrics` in Prometheus's text format.
# `serving.scrape("http://localhost:8000/metrics")` fetches and reads the page; two scrapes a few
# minutes apart, subtracted (`metrics.between(before, after)`), give what happened in between, as
# PromQL's `increase()` would. No server runs here, so `serving.exposition` writes the page vLLM
# would show for the recorded rounds above, with the `prometheus_client` library and vLLM's own
# names, types and labels; the reader then turns it into the lab's acceptance plot.

# %%
page = serving.exposition(counts, model_name="google/gemma-4-E4B-it")
print("\n".join(line for line in page.splitlines() if "_created" not in line))  # (each counter's `_created` lines left out)
scraped = serving.read_metrics(page)
print("read back:", scraped)
print("the same as written:", scraped == counts)

# %%
plots.serving_position_figure(scraped, label=f"{meta['pair']}, 24 code prompts × 64 tokens, greedy, k = 4, "
                                             "transformers' path, as a /metrics page")

# %% [markdown]
# vLLM's per-position rate is the lab's default (unconditional) acceptance by position when every
# round drafts the same k. It falls faster than the conditional rate because its denominator never
# shrinks: a round rejected at position 1 still counts against positions 2, 3 and 4. The
# conditional rate is the one the coin model of chapter 04 assumes flat.
#
# ## Batch economics: why speculation fades as the batch grows
#
# A server rarely decodes one request. At batch size B, a plain step is one target forward over
# B tokens (one per request), and a speculative round is k drafter steps for B rows plus one
# verification over B × (k + 1) tokens. At B = 1 that verification costs about what one token
# costs (decoding is memory-bound, chapter 01); as B grows the forward fills up with arithmetic,
# and verifying k drafts per row is no longer free. Here are the forward costs of the pocket
# target at each batch size, recorded on an idle machine by `scripts/record_serving.py`.

# %%
served, smeta = labkit.load_traces("serving")
k = smeta["k"]
costs = smeta["batch_costs"]
reps = len(costs[0]["samples"]["plain"])
print(f"{smeta['pair']}: recorded {smeta['date']} by `{smeta['command']}`\n"
      f"on {smeta['machine']} (torch {smeta['versions']['torch']}, load average "
      f"{smeta['load_average_at_start']} at the start)")
plots.batch_cost_figure(costs, k, label=f"{smeta['pair']}, one forward after a 64-token cache, median of {reps} "
                                        f"samples per batch size, k = {k}")

# %%
for row in costs:
    print(f"B = {row['batch']:>2}: verifying {k + 1} tokens a row costs {row['verify'] / row['plain']:.2f}× "
          f"a plain step (v), {k} drafter steps {k * row['draft'] / row['plain']:.2f}× (k c)")

# %% [markdown]
# Put those costs into chapter 05's cost model: at each B, a plain step costs what was measured
# at B, a round costs k drafter steps plus the verification measured at B, plus the loop's own
# work, fitted at batch 1 on the float32 runs below (a batch pays it once per step, not per
# row). The tokens a round yields come from the same runs: acceptance does not depend on B, the
# cost of a round does. Then check the prediction: decode B copies of one prompt, plain and
# speculative, three times at each of four batch sizes (`batching.batched_run`).

# %%
plain_runs, spec_runs = served["float32 · plain"], served["float32 · spec"]
loop = experiments.fit_costs(plain_runs, spec_runs)
per_round = metrics.interval(metrics.tokens_per_round, spec_runs)
curve = batching.speedup_curve(costs, k, per_round, loop)
points = batching.measured_points(smeta["batched_runs"], costs, k, loop)
plots.batch_speedup_figure(curve, points, label=(
    f"{smeta['pair']}, greedy, k = {k}, glass-box loop. Prediction: tokens per round of {len(spec_runs)} prompts, "
    f"{per_round} (90 % interval)<br>Measured: one code prompt × {smeta['run_tokens']} tokens in B identical rows, "
    "median and range of 3 runs"))

# %%
for p in points:
    print(f"B = {p['batch']:>2}: measured {p['value']:.2f}× ({p['lo']:.2f} to {p['hi']:.2f}), predicted "
          f"{p['predicted']:.2f}× ({abs(p['predicted'] / p['value'] - 1):.0%} apart); output identical: {p['identical']}")
apart = max(abs(p["predicted"] / p["value"] - 1) for p in points)
print(f"the prediction is within {apart:.0%} of the measured median at every batch size measured")
best = max(curve, key=lambda r: r["value"])
losing = [r["batch"] for r in curve if r["hi"] < 1]
print(f"predicted: best at B = {best['batch']} ({best['value']:.2f}×); "
      + (f"slower than plain from B = {losing[0]} on (the whole interval below 1)" if losing
         else "no measured batch size where the whole interval falls below 1"))

# %% [markdown]
# Read the two figures together: where the verification line pulls away from the plain one, and
# where the drafter's own forwards (k of them per round, for every row) catch up with it, the
# speedup bends down. These are a 15M-parameter target on a CPU, where the bend comes early; a
# GPU serving Gemma 4 has far more arithmetic to spare per byte of weights, so its bend comes at
# a much larger batch, but it comes. That is why engines expose the draft length as a setting, and
# why the best value depends on the load (a real server's rows also accept different numbers of
# drafts, which wastes more: the batched runs here are rectangular by construction, a best case).
#
# A live slice: the same costs at three batch sizes on this machine, now.

# %%
live = batching.batch_costs(pair, (1, 16, 64), k=k, repeats=3)
shipped = {r["batch"]: r for r in costs}
for row in live:
    was = shipped[row["batch"]]
    print(f"B = {row['batch']:>2}: verification / plain step {row['verify'] / row['plain']:.2f} here, "
          f"{was['verify'] / was['plain']:.2f} recorded; plain step {row['plain'] * 1e3:.1f} ms here, "
          f"{was['plain'] * 1e3:.1f} ms recorded")
print(f"(here: {tag} on {experiments.device_name(pair.device)}; recorded: {smeta['pair']} on {smeta['machine']})")

# %% [markdown]
# ## On-device: the pocket pair in int8
#
# A phone runs quantized weights. `ondevice.quantized` gives every linear layer int8 weights with
# torchao (PyTorch's maintained quantization library), one scale per output row; the tied
# embedding table stays float32. Three variants, on 8 prose and 8 code prompts, greedy, k = 4:

# %%
table = smeta["ondevice"]
print(f"{'variant':<22}{'MB':>11}{'tok/s':>12}{'tau':>18}{'speedup':>18}{'= float32':>11}")
print(f"{'':<22}{'tgt + drf':>11}{'plain/spec':>12}")
for row in table:
    name = row["variant"]
    p, s = served[f"{name} · plain"], served[f"{name} · spec"]
    print(f"{name:<22}{row['target_mb']:>6.1f} +{row['drafter_mb']:>4.1f}{row['plain_tokens_per_s']:>7.1f}/"
          f"{row['spec_tokens_per_s']:<4.1f}{str(metrics.interval(metrics.tau, s)):>18}"
          f"{str(metrics.interval(metrics.speedup, p, s)):>18}{row['same_as_float32']:>7} / {row['prompts']}")
print(f"speculative output equal to the same variant's plain output: "
      f"{all(r['spec_same_as_plain'] == r['prompts'] for r in table)} (every variant, every prompt)")

# %% [markdown]
# Three questions, each answered by the recorded runs with a 90 % interval over the 16 prompts:
# did int8 make plain decoding faster here, does speculation still pay on the int8 pair, and does
# the int8 target still write the float32 target's text?

# %%
base = served["float32 · plain"]
for row in table[1:]:
    name = row["variant"]
    faster = metrics.interval(metrics.speedup, base, served[f"{name} · plain"])
    verdict = "faster" if faster.lo > 1 else "slower" if faster.hi < 1 else "no clear difference"
    print(f"{name}: plain decoding {faster}× the float32 pair's speed ({verdict})\n    weights "
          f"{table[0]['target_mb'] + table[0]['drafter_mb']:.1f} MB → {row['target_mb'] + row['drafter_mb']:.1f} MB; "
          f"text equal to the float32 target's on {row['same_as_float32']} of {row['prompts']} prompts")
for row in table:
    name = row["variant"]
    gain = metrics.interval(metrics.speedup, served[f"{name} · plain"], served[f"{name} · spec"])
    print(f"{name}: speculation {gain}× over the same variant decoding alone")

# %% [markdown]
# int8 weights quarter the bytes of float32 ones, which is what lets a model fit on a phone at
# all. Whether a step gets faster depends on the kernels: torchao's int8 weight-only path on this
# CPU turns the weights back into floats inside each matrix multiply, so read the first lines for
# what it bought here. Speculation keeps each variant's own output token for token (the
# verification rule does not care about precision), so the speedup it gives an int8 pair is real;
# but "identical output" means identical to *that* pair's plain decoding: where the int8 target's
# text differs from the float32 one's, quantization changed it, not speculation. Google publishes up to
# 1.5× from MTP on a mobile CPU and 2.2× on a mobile GPU with LiteRT-LM
# ([Gemma 4 on LiteRT-LM](https://developers.google.com/edge/litert-lm/models/gemma-4); published
# figures, not measured here). A live slice on this machine:

# %%
# three copies of the target (float32, int8, int8 + drafter): fine for a pocket-sized pair, not for a real one
small = sum(p.numel() for p in pair.target.parameters()) < 1e8
on_device = pair if small else labkit.load_pair("pocket")
if not small:
    print(f"{tag} is too large to keep three copies of here: the slice runs on the pocket pair, as the recording did")
rows = ondevice.compare(on_device, labkit.load_prompts("code", 2), k=k, max_new_tokens=24, path="glassbox")
for row in rows:
    print(f"{row['variant']:<24} plain {row['plain_tokens_per_s']:.1f} tok/s, speculative "
          f"{row['spec_tokens_per_s']:.1f} tok/s, tau {row['tau']:.2f}, same as float32 "
          f"{row['same_as_float32']}/{row['prompts']}")
print(f"({on_device.label}, 2 code prompts × 24 tokens, one run each: a slice, not a measurement to quote)")

# %% [markdown]
# ## Summary
#
# - Every major engine serves Gemma 4 with its MTP drafter; what is lossless differs, and so do the
#   knobs. Greedy is lossless everywhere. Sampling is lossless wherever every emitted token is a
#   target sample: rejection sampling (vLLM; SGLang at its default thresholds) and llama.cpp's
#   sample-then-match both qualify. LiteRT-LM's MTP path verifies greedily only.
# - A server's "acceptance rate" (kept / drafted) is not the lab's α (kept / judged); with a fixed
#   k (not a given in vLLM any more), α can be read back from the counters. Say whose number you quote.
# - Speculation trades spare arithmetic for fewer forwards. Batching spends the same spare
#   arithmetic, so the speedup shrinks as the batch grows; the cost model with the forwards
#   measured at each batch size predicts where.
# - int8 weights quarter the memory; whether a step gets faster depends on the kernels (here, the
#   table says). Speculation stays lossless for the int8 pair; whether int8 keeps the float32
#   model's text is a separate check, and here it did not on every prompt.
#
# ## Exercises
#
# 1. **vLLM's words.** Write `vllm_rates(traces)` returning (acceptance rate, mean acceptance
#    length) as vLLM defines them, from the traces' rounds. Uncomment the checker.
# 2. **Conditional acceptance from a scrape.** Write `conditional_from_counters(drafts, per_pos)`:
#    the lab's conditional acceptance by position, P(draft j kept | drafts before it kept), from
#    vLLM's counters (`per_pos[j - 1]` rounds kept draft j; every round drafted the same k). Which
#    counter says how many rounds reached position j? Uncomment the checker.
# 3. **Where does it stop paying?** Write `serve_k(row, k0, loop, alpha, ks)`: for one recorded
#    batch-cost row (verification measured at `k0`), the `k` in `ks` with the highest predicted
#    speedup (chapter 05's cost model at that batch size, `batching.costs_at(row, k0, loop)`, with
#    coin-model tokens per round), or 0 if no `k` beats plain decoding. Uncomment the checker, then
#    apply it to `costs` with the measured α: which k would you serve at B = 1, and at B = 64? Carry
#    α's interval through and say whether it lets you decide.

# %%
from labkit import checks


def vllm_rates(traces):
    raise NotImplementedError("count drafting rounds, drafted tokens and kept drafts")


def conditional_from_counters(drafts, per_pos):
    raise NotImplementedError("kept at j over the rounds that got as far as judging draft j")


def serve_k(row, k0, loop, alpha, ks):
    raise NotImplementedError("predicted speedup for each k at this batch size; the best, unless none beats 1")


# checks.check_vllm_rates(vllm_rates)
# checks.check_conditional_from_counters(conditional_from_counters)
# checks.check_serving_k(serve_k)

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
# # 00 · A tour: one prompt, decoded two ways
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/00_tour.ipynb)
#
# **Goal.** See speculative decoding do its one trick before we take it apart: decode the same
# prompt with a large model alone, then with a small helper guessing ahead, and compare the text,
# the number of forward passes and the time.
#
# **Words we use in every chapter.**
#
# - **target**: the large language model whose text we want. Decoding on its own, it produces one
#   token per *forward pass* (one run of the whole network).
# - **prefill**: the first forward pass, in which the target reads the whole prompt at once and
#   produces the first new token.
# - **drafter**: a small model that cheaply guesses the target's next tokens. Gemma 4 ships one
#   per target and calls it an **MTP head**, for *Multi-Token Prediction*: it predicts several
#   tokens ahead from the target's own hidden state (chapter 02 opens it up). Google's checkpoints
#   name it the *assistant*.
# - **k**: how many tokens the drafter guesses in a row before the target checks them.
# - **round**: draft k tokens, then one target forward over all of them; the target keeps the
#   longest prefix it agrees with (the **accepted** drafts) and adds one token of its own (the
#   **bonus**, or a correction where it disagreed). So every round costs one target forward and
#   yields between 1 and k + 1 tokens.
# - **tau**: new tokens per target forward, the prefill included. Plain decoding has tau = 1.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %% tags=["live"]
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # the pair labkit.load_pair() loads (LABKIT_PAIR=..., if set, wins)

# %% [markdown]
# The line above names your device, precision and versions. The lab is tested with transformers
# 5.22.0, 5.22.2, 5.24.0 and 5.25.0 (README, "Tested with"); `labkit.setup()` says so when it finds
# another release.
#
# ## Which pair?
#
# `PAIR` in the setup cell (a drop-down on Colab) chooses the pair every chapter loads:
#
# - **pocket** (the default): a small Gemma 4 target and its MTP drafter, trained in this
#   repository. It runs everywhere, offline, in seconds, and every number in the book comes from it.
# - **E2B, E4B, 26B-A4B, 31B**: Google's instruction-tuned Gemma 4 and its assistant
#   (`google/gemma-4-E2B-it` + `google/gemma-4-E2B-it-assistant`). On Colab: Runtime > Change
#   runtime type > T4 GPU first; the setup cell then asks for a Hugging Face token (Gemma's licence
#   must be accepted on its model page).
# - any hub id or folder, `TARGET` or `TARGET,DRAFTER`; in a shell, `LABKIT_PAIR=E2B jupyter lab`
#   chooses for every chapter at once.
#
# Will it fit? `labkit plan` answers from the models' configuration files alone, before anything is
# downloaded (the same estimate `load_pair` checks). For Colab's free T4 (about 15 GB free):

# %%
from labkit.plan import plan

for name in ("E2B", "E4B", "31B"):
    print(plan(name, device="cuda", free_gb=15).advice)

# %% [markdown]
# In a terminal: `labkit plan --pair E4B --device cuda --free-gb 15 --json`. A real pair is spoken
# to as Gemma 4 expects, in turns (its chat template); the pocket target is a base model and
# continues raw text.

# %% tags=["live"]
from IPython.display import HTML, display

from labkit import experiments, generation, metrics, plots, style, widgets

# The pair chosen in the setup cell (the pocket pair unless PAIR or LABKIT_PAIR names another)
pair = labkit.load_pair()
pair

# %% [markdown]
# ## One token at a time
#
# Plain decoding: the target reads the prompt (the prefill), emits one token, reads it back,
# emits the next. Every new token costs one full target forward.

# %% tags=["live"]
prompt = generation.load_prompts("prose", limit=1)[0]
new_tokens = 32
settings = dict(max_new_tokens=new_tokens, stop_at_eos=False)  # same length on both paths
k = 4  # drafts per round, for the speculative runs below

# %%
plain = generation.run(pair, prompt, path="plain", **settings)
print(f"prompt: {prompt!r}")
print(f"plain decoding: {len(plain.new_ids)} tokens, {plain.target_forwards} target forwards")

# %% [markdown]
# ## Draft, then verify
#
# Speculative decoding with transformers' own `generate(..., assistant_model=drafter)`: each
# round the drafter proposes `k` tokens and the target checks all of them in one forward. labkit
# records every round (a *trace*) without changing what transformers does.

# %%
spec = generation.run(pair, prompt, path="transformers", k=k, **settings)
same = spec.new_ids == plain.new_ids
print(f"speculative (k = {k}): {len(spec.new_ids)} tokens, {spec.target_forwards} target forwards")
print(f"same text as plain decoding: {same}")
print(f"tau = {metrics.tau(spec):.2f} tokens per target forward (plain decoding: {metrics.tau(plain):.2f})")

# %% [markdown]
# With the pocket pair the text is the same, token for token: it runs in float32 on every device,
# and with greedy decoding the target keeps only drafts it would have chosen itself. A real Gemma 4 pair on a GPU
# runs in bfloat16 (float16 where bfloat16 is not native, as on Colab's T4), and there a verify
# pass over k + 1 tokens can break a near-tie differently from a one-token forward, so the texts
# can part late (on the lab's test CPU, 16 of 24 shipped prompts within 96 tokens; chapter 03
# shows one).
#
# ## Timing it fairly
#
# tau counts forwards; the clock is what a user feels. Timing is easy to get wrong: the first
# call of each path pays one-off costs (memory allocation, kernel selection), and a machine that
# other programs share runs slower in some seconds than in others. So both paths have now run
# once (the two cells above were their warm-ups), and `experiments.time_paths` runs them again in
# turns, plain, speculative, speculative, plain, …, so that a slow spell hits both. We report the
# median of the repeats and their range.

# %%
timed = experiments.time_paths({
    "plain": lambda: generation.run(pair, prompt, path="plain", **settings),
    "speculative": lambda: generation.run(pair, prompt, path="transformers", k=k, **settings),
}, repeats=3, warmup=False)  # warmed up above
plain, spec = timed["plain"].trace, timed["speculative"].trace  # each path's median run
speedup = experiments.speedup_of(timed["plain"], timed["speculative"])
print(f"plain decoding: {timed['plain']}")
print(f"speculative:    {timed['speculative']}")
print(f"speedup on this prompt = {speedup}; tau = {metrics.tau(spec):.2f} at k = {k} "
      f"({pair.label}, {spec.decoding}, this machine)")
if speedup.value <= metrics.tau(spec):
    print(f"{metrics.tau(spec):.2f} tokens per target forward became a {speedup.value:.2f}x speedup: drafting, "
          f"and verifying {k + 1} tokens in one forward, cost the difference")
else:  # no fair timing can give this (chapter 05 says why): the machine was disturbed
    print("the speedup came out above tau, which a fair timing cannot give: something else slowed the plain "
          "runs; run this cell again")

# %% [markdown]
# Every token, coloured by how it was produced: green tokens were drafted and accepted (the
# target only checked them), blue ones the target produced itself (the bonus that closes each
# round, or a correction). The more green, the fewer target forwards. Hover a token for its kind.

# %%
display(HTML(
    f"<div style='font-size:0.9em;opacity:0.85'>{len(spec.new_ids)} new tokens in {spec.target_forwards} "
    f"target forwards · {pair.label} · {spec.decoding}, k = {k}</div>" + style.token_html(spec)))

# %% [markdown]
# Where the time went: drafting, verifying (target forwards) and everything else. Speculative
# decoding pays off only when the target forwards it saves outweigh the drafting it adds.

# %%
fig = plots.time_split_figure({"plain": plain, f"speculative, k = {k}": spec})
fig.update_layout(title_text=f"Where the time went: one prompt, {new_tokens} tokens, each path's median run of "
                  f"{len(timed['plain'].seconds)}<br>"
                  f"<sup>{pair.label} · plain: {plain.decoding} · speculative: {spec.decoding}</sup>",
                  margin={"t": 110})
fig

# %% [markdown]
# ## One prompt is an anecdote
#
# One prompt is one kind of text: an easy prompt accepts more drafts than a hard one. The same
# comparison on six prompts, each timed plain then speculative (both paths are warm by now), with
# a 90 % bootstrap interval over the prompts (each prompt's two runs stay paired):

# %%
prompts = generation.load_prompts("prose", limit=6)
timed_each = [experiments.time_paths({
    "plain": lambda p=p: generation.run(pair, p, path="plain", **settings),
    "speculative": lambda p=p: generation.run(pair, p, path="transformers", k=k, **settings),
}, repeats=1, warmup=False, offset=i) for i, p in enumerate(prompts)]  # the paths take turns at going first
plains = [t["plain"].trace for t in timed_each]
specs = [t["speculative"].trace for t in timed_each]
tau_est = metrics.interval(metrics.tau, specs)
speed_est = metrics.interval(metrics.speedup, plains, specs)  # each prompt's two runs resampled together
print(f"{pair.label}, {specs[0].decoding}, k = {k}, {new_tokens} tokens per prompt")
print(f"tau     = {tau_est}  ({tau_est.sample})")
print(f"speedup = {speed_est}x ({speed_est.sample})")
print(f"identical text on {sum(p.new_ids == s.new_ids for p, s in zip(plains, specs))} of {len(prompts)} prompts")

# %% [markdown]
# ## Try it yourself
#
# Type any prompt, pick `k` and a temperature, and press **Run**: the panel decodes it both ways,
# timed as above (a warm-up, then three runs of each in turns), and plays each way's median run
# back side by side at the pace it was measured at, each token appearing when its round
# finished (**Replay** plays them again, the replay menu slows them down). At temperature 0 both texts should be identical token for token (in exact arithmetic
# they are; in bf16 a near-tie can break differently). Above 0 each run is one random draw
# from the target's distribution, and labkit's speculative path is lossless (chapter 03 shows
# what that means), so the texts differ only by chance. The pair box takes `pocket` or the id of a
# real Gemma 4 target (e.g. `google/gemma-4-E2B-it`); without its weights on disk or a network,
# you get a message saying so, and the pocket pair keeps working.

# %% tags=["live"]
# Widgets never hold a model: the panel gets a function that decodes both ways (and loads the pair
# the box names), plus the name its pair box starts at.
run_both = generation.tour_runner(pair)
widgets.TourPanel(run_both, prompt, pair="pocket" if pair.is_pocket else pair.name, k=k,
                  max_new_tokens=new_tokens)

# %% [markdown]
# ## Summary
#
# - Speculative decoding drafts `k` tokens cheaply and lets the target verify them in one forward.
# - With greedy decoding the text is the target's own text (checked above, token for token); only
#   the number of target forwards changes. `tau` counts tokens per target forward.
# - A higher `tau` does not guarantee a speedup: drafting and bookkeeping cost time too.
#   Chapters 01–05 take the rounds apart, measure acceptance, and build the cost model.
#
# ## Exercises
#
# 1. **tau by hand.** Compute tau from a trace. A `Trace` has `.new_ids` (the generated tokens)
#    and `.rounds` (one `Round` per round).
# 2. **One round, end to end.** Write one greedy speculative round yourself. You get two tools:
#    `draft(ids, k)` returns the drafter's `k` guesses after the token ids `ids`, and
#    `target(ids)` runs one target forward over `ids` and returns its logits, one row per
#    position (row `i` scores the token that comes after `ids[i]`). Return the tokens the round
#    adds. The checker compares you with labkit's glass-box loop on four prompts, and counts
#    your target forwards.
# 3. **Predict, then measure.** Before running anything: what tau do you expect on this prompt
#    with `k = 1`, and with `k = 8`? Write both guesses down, then uncomment the measurement.

# %%
from labkit import checks, parts

check_1 = checks.check_tokens_per_forward  # uncomment the calls at the bottom once your code is ready
check_2 = checks.check_speculative_round
check_3 = checks.check_prediction


def tokens_per_forward(trace):
    raise NotImplementedError("which of the trace's fields counts target forwards? does the prefill count?")


def speculative_round(draft, target, ids, k):
    raise NotImplementedError("draft first; which row of target(...) holds the target's choice for the first "
                              "draft? keep drafts while they agree, and do not forget the target's own token")


predicted = {"k = 1": None, "k = 8": None}  # your guesses for tau

# check_1(tokens_per_forward)
# check_2(speculative_round, pair)   # draft = parts.draft_fn(pair), target = parts.target_fn(pair) inside
# measured = {f"k = {kk}": metrics.tau(generation.run(pair, prompt, k=kk, **settings)) for kk in (1, 8)}
# check_3(predicted, measured)

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
# # 08 · Choosing a drafter: MTP, a draft model, prompt lookup or none, task by task
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/08_choosing_a_drafter.ipynb)
#
# **Goal.** The MTP drafter is one way to draft. Race it against the two others every engine
# offers, an independent **draft model** with its own KV cache and **prompt lookup** (copying
# from the context), and against **none** (the target alone), on five kinds of task. See which
# wins where, explain each cell with the cost model of `05_speed_and_cost` (acceptance α, the
# drafter's cost c, the cost of verifying k + 1 tokens v), watch what a long context does, and
# race them on your own text.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %% tags=["live"]
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # the pair labkit.load_pair() loads (LABKIT_PAIR=..., if set, wins)

# %% tags=["live"]
from labkit import bench, experiments, metrics, methods, plots, widgets

# The pair chosen in the setup cell: the pocket pair (offline) unless PAIR or LABKIT_PAIR names another
pair = labkit.load_pair()
# the pocket draft model for the pocket pair (scripts/train_draft_model.py), Gemma 4 E2B for a larger Gemma 4
draft_model = methods.load_draft_model(pair)
tag = pair.label


def millions(model) -> str:
    return f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M"


def layers(model) -> int:
    return model.config.get_text_config().num_hidden_layers


print(f"{tag}: target {millions(pair.target)} parameters ({layers(pair.target)} layers); "
      f"MTP drafter {millions(pair.drafter)} (reads the target's K/V and last hidden state); "
      f"draft model {millions(draft_model)} ({layers(draft_model)} layers, its own KV cache); "
      "prompt lookup: no parameters")

# %% [markdown]
# ## The contenders
#
# | method | drafts by | costs per draft | knows |
# |---|---|---|---|
# | **mtp** | the pair's assistant: 4 layers reading the target's K/V, fed the target's last hidden state | a small forward | what the target was about to say |
# | **draft-model** | a small causal LM over the same tokenizer, with its own KV cache | a small forward (and its own prefill) | only the text |
# | **prompt-lookup** | copying what followed the last n-gram (n ≤ 2) the first time it appeared earlier | almost nothing | only the text, literally |
# | **none** | the target alone | — | — |
#
# All four run on the same glass-box loop below (`labkit.glassbox`, the target verifying every
# round), so their times compare like for like; `labkit bench --method …` runs the same methods
# on transformers' `generate` (`assistant_model=` / `prompt_lookup_num_tokens=`); a test checks that
# both paths draft the same tokens for prompt lookup. For a draft model transformers ends a round
# early when the model's confidence in its next draft falls below `assistant_confidence_threshold`
# (0.4 by default), so its rounds can be shorter than the glass box's k. Whatever the drafter, the
# verification rule keeps the target's output: greedy text is the target's own, token for token.
#
# ## The tasks
#
# Spec-Bench sorts prompts by task because drafters win on different ones. The lab ships 8
# prompts of each of five tasks, cut from text no pocket model trained on
# (`scripts/make_task_prompts.py`): **prose** (a speaker and a first line), **code** (a `def` and
# its first line), **quote** (a passage, then its first line begun again: the answer is in the
# context), **edit** (a function, then the same function begun again under a new name) and
# **dialogue** (twelve turns of a scene, then the next speaker).

# %% tags=["live"]
tasks = methods.load_tasks()
for task in methods.TASKS:
    example = next(r for r in tasks if r["task"] == task)
    tail = example["text"][-160:].replace("\n", "↵ ")
    print(f"{task:>9} ({sum(r['task'] == task for r in tasks)} prompts), the end of {example['id']}: …{tail}")

# %% [markdown]
# ## Measured: tau and speedup, task by task
#
# Every prompt, every method, greedy, `k = 4`, 48 new tokens, recorded on an idle machine by
# `scripts/record_methods.py` (a notebook's minute cannot pay for 160 runs). Intervals are 90 %
# bootstrap intervals over prompts; a speedup is paired: each prompt's run with the method against
# the same prompt's run without drafts.

# %%
recorded, meta = labkit.load_traces("methods")
shipped = meta["pair"]  # the recording's pair, which names its figures
print(f"{shipped}: recorded {meta['date']} on {meta['machine']} by `{meta['command']}` "
      f"(transformers {meta['versions']['transformers']}, load average {meta['load_average_at_start']} at the start)")
if not pair.is_pocket:
    print(f"These recorded traces are the pocket pair's (with its draft model); the live slice and the race "
          f"below run on {tag}.")

drafting = [m for m in methods.METHODS if m != "none"]
rows = []
for task in methods.TASKS:
    alone = recorded[f"{task} · none"]
    for method in methods.METHODS:
        traces = recorded[f"{task} · {method}"]
        rows.append({
            "task": task, "method": method, "traces": traces,
            "tau": metrics.interval(metrics.tau, traces),
            "speedup": metrics.interval(metrics.speedup, alone, traces),
            "identical": all(a.new_ids == b.new_ids for a, b in zip(alone, traces)),
        })
sample = (f"{shipped}, glass-box loop, greedy, k = {meta['k']}, {len(alone)} prompts per task × {meta['new_tokens']} "
          "new tokens, 90 % bootstrap intervals over prompts")
plots.methods_figure(rows, label=sample)

# %%
print(f"{'task':>9} {'method':>14}  {'tau':>18}  {'speedup':>19}")
for r in rows:
    print(f"{r['task']:>9} {r['method']:>14}  {str(r['tau']):>18}  {str(r['speedup']) + '×':>19}")
print("greedy output identical to the target alone on every prompt and task:", all(r["identical"] for r in rows))

# %% [markdown]
# Who wins each task, in words the intervals allow: a method (the target alone, "none", included)
# is named the winner only if its speedup interval lies above every other's; otherwise the leaders
# are named together.

# %%
for task in methods.TASKS:
    cells = sorted((r for r in rows if r["task"] == task), key=lambda r: -r["speedup"].value)  # none: 1.0
    best, rest = cells[0], cells[1:]
    tied = [r["method"] for r in rest if best["speedup"].versus(r["speedup"]) != "higher"]
    if not tied:
        verdict = f"{best['method']} wins clearly ({best['speedup']}×)"
    else:
        verdict = f"no clear winner between {', '.join([best['method'], *tied])} (their intervals overlap)"
    slower = [r["method"] for r in cells if r["speedup"].hi < 1.0]
    note = f"; clearly slower than the target alone: {', '.join(slower)}" if slower else ""
    print(f"{task:>9}: {verdict}{note}")

# %% [markdown]
# ## Why: the cost model, cell by cell
#
# `05_speed_and_cost` split a round's time into drafting (k · c, in target forwards), verifying
# k + 1 tokens (v) and the loop's own work, and acceptance decides how many tokens a round buys.
# Fitted on these traces, per method (costs) and per task (acceptance), the model predicts each
# cell's speedup from measured parts; the printed gap says how close it comes.

# %%
costs = {m: experiments.fit_costs([t for task in methods.TASKS for t in recorded[f"{task} · none"]],
                                  [t for task in methods.TASKS for t in recorded[f"{task} · {m}"]])
         for m in drafting}
for m in drafting:
    print(f"{m:>14}: c = {costs[m].c:.3f} target forwards per draft, v({meta['k'] + 1}) = {costs[m].v(meta['k'] + 1):.2f}")
print()
print(f"{'task':>9} {'method':>14}   alpha   predicted  measured")
for r in rows:
    if r["method"] != "none":
        predicted = experiments.predict(costs[r["method"]], r["traces"])
        print(f"{r['task']:>9} {r['method']:>14}   {metrics.alpha(r['traces']):.2f}    {predicted:.2f}×      "
              f"{r['speedup'].value:.2f}×")

# %% [markdown]
# Read the columns together. Prompt lookup costs almost nothing per draft (its c is near 0), so it
# needs no more than a little acceptance to pay, but it only drafts when the text repeats an n-gram,
# and then only what followed it the first time. The draft model pays a forward of its own for
# every draft (and its own prefill), and the MTP drafter a small one too; they earn it with α, by
# predicting text the context does not contain. Which wins is a race between α and c, task by task:

# %%
for task in methods.TASKS:
    cells = {r["method"]: r for r in rows if r["task"] == task}
    pays = [m for m in drafting if cells[m]["speedup"].lo > 1.0]
    print(f"{task:>9}: α " + ", ".join(f"{m} {metrics.alpha(cells[m]['traces']):.2f}" for m in drafting)
          + f"; clearly faster than the target alone: {', '.join(pays) or 'none'}")

# %% [markdown]
# ## A live slice
#
# The recording above, rerun now on the first prompt of each task: greedy decoding is
# deterministic, so on the pocket pair, which recorded it, tau must come out exactly as recorded
# (another pair is measured beside it). Seconds are not: they depend on this
# machine and its load. So every method runs once untimed first (a first call pays one-off
# costs), then on each prompt the four take turns, the one going first changing from prompt to
# prompt (`bench.timed_race`, on `experiments.time_paths`). One prompt's 48 tokens take too
# little time for one timing of them to say much, so we pool the five prompts: each method's
# speedup is the median of its five per-prompt speedups, with their range, which holds the
# prompts' differences as well as the machine's noise (the intervals above, over 8 prompts per
# task, are the figures to trust).

# %%
firsts = [next(r for r in tasks if r["task"] == task) for task in methods.TASKS]
live = bench.timed_race(pair, [r["text"] for r in firsts], methods.METHODS, meta["k"], draft_model=draft_model,
                          max_new_tokens=meta["new_tokens"])
same = all(metrics.tau(live[m][i].trace) == metrics.tau(recorded[f"{task} · {m}"][0])
           for i, task in enumerate(methods.TASKS) for m in drafting)
if pair.is_pocket:
    print("tau now, on the first prompt of each task (recorded: the same to the last digit"
          f"{'' if same else ', except where marked'}):")
else:  # another pair: nothing obliges it to match the pocket pair's recording
    print(f"tau now on {tag}, on the first prompt of each task (beside it where it differs: the pocket pair's "
          "recording)")
for i, task in enumerate(methods.TASKS):
    cells = []
    for m in drafting:
        now, then = metrics.tau(live[m][i].trace), metrics.tau(recorded[f"{task} · {m}"][0])
        cells.append(f"{m} {now:.2f}" + ("" if now == then else
                                         f" (recorded {then:.2f}, differs)" if pair.is_pocket else f" ({shipped}: {then:.2f})"))
    print(f"{task:>9}: " + ", ".join(cells))
print()
for m in drafting:
    now = experiments.speedup_of(live["none"], live[m])
    then = metrics.speedup([recorded[f"{t} · none"][0] for t in methods.TASKS],
                           [recorded[f"{t} · {m}"][0] for t in methods.TASKS])
    print(f"{m:>14}: tau {metrics.tau([t.trace for t in live[m]]):.2f} on these 5 prompts; speedup {now.value:.2f}× now "
          f"on {tag} (median of 5 prompts, range {now.lo:.2f}–{now.hi:.2f}), {then:.2f}× recorded on the same "
          f"prompts{'' if pair.is_pocket else ' on the ' + shipped}")

# %% [markdown]
# ## A long context: past the sliding window
#
# The pocket pair's sliding layers see the last 128 tokens. Here the prose prompts run on for 160
# new tokens, so their rounds cross the window, with the MTP drafter's K/V kept exact and as
# transformers slices it (its assistant reads a rejected draft's K/V in the sliding layers,
# `docs/stale-kv.md`). Output is the target's either way; only acceptance can move.

# %%
long = {name.removeprefix("long · "): traces for name, traces in recorded.items() if name.startswith("long · ")}
from labkit.loading import read_config  # noqa: E402
from labkit.paths import TARGET_DIR  # noqa: E402

window = read_config(TARGET_DIR).sliding_window  # the recording's target: the pocket pair's
plots.position_acceptance_figure(long, window=window, label=f"{shipped}, glass-box loop, greedy, k = {meta['k']}, "
                                 f"{len(next(iter(long.values())))} prose prompts × {meta['long_tokens']} new tokens")

# %%
def first_kept(traces, lo, hi) -> float:
    """Share of rounds starting at positions lo..hi-1 whose first draft was kept."""
    rounds = [r for t in traces for r in t.rounds[1:] if r.k and lo <= r.position < hi]
    return sum(r.accepted > 0 for r in rounds) / len(rounds) if rounds else float("nan")


for name, traces in long.items():
    inside = metrics.interval(lambda ts: first_kept(ts, 0, window), traces)
    past = metrics.interval(lambda ts: first_kept(ts, window, 10**6), traces)
    print(f"{name:>22}: first draft kept {inside} within the first {window} tokens, {past} past them "
          f"({past.versus(inside)} past the window)")
exact, sliced = long["mtp, kv exact"], long["mtp, kv transformers"]
print("same text with both K/V handlings:", all(a.new_ids == b.new_ids for a, b in zip(exact, sliced)))

# %% [markdown]
# ## Your text
#
# Paste any text (or pick a task example), choose methods and values of k, press **Race**: each
# runs on your text here and now, greedy, on the glass-box loop, and the table marks the fastest.
# Every entrant runs once to warm up, then three times, taking turns with the others; the table
# shows each one's median speedup and its range. One prompt: it answers "which is fastest on this
# text, on this machine", not which is better in general (the intervals above do that).

# %% tags=["live"]
examples = {f"{r['task']}: {r['id']}": r["text"] for r in tasks if r["id"].endswith("-01")}
race = widgets.DrafterRace(bench.race_runner(pair, draft_model, max_new_tokens=32), methods.METHODS,
                           examples=examples, label=f"{tag}, glass-box loop, greedy")
race

# %% [markdown]
# ## Summary
#
# - Three ways to draft: the pair's MTP drafter (reads the target's state), an independent draft
#   model (its own forwards and cache), prompt lookup (copies from the context, almost free). The
#   target's verification keeps its output whichever drafts.
# - Which wins depends on the task and on the pair: copying pays only where the text repeats
#   itself, a learned drafter wherever it predicts the target well; the tables above say which
#   wins where, with intervals, for this pair on this machine.
# - The cost model explains each cell from α, c and v: a cheap drafter needs less acceptance.
# - `labkit bench --method … --prompts FILE.jsonl --json` runs the same race on your own prompts
#   on transformers' `generate`.
#
# ## Exercises
#
# 1. **A hybrid.** Write `hybrid_propose(ctx, k, pick, lookup, mtp)`: a drafter that drafts like
#    prompt lookup where the text repeats itself and like the MTP drafter elsewhere. `lookup` and
#    `mtp` are drafter objects of the glass box (`labkit.glassbox`), and yours must answer the way
#    theirs do. Uncomment the checker; it runs your drafter on the quote and prose tasks and checks
#    the output is the target's.
# 2. **Predict, then measure.** Before running anything, use `costs["prompt-lookup"]` and the
#    measured α of prompt lookup on the *code* task to predict its speedup at `k = 8` (the cost
#    model of `05_speed_and_cost`); write it down, then uncomment the measurement on three code
#    prompts and the checker, and say whether the prediction held.
# 3. **Predict, then race.** Write a text of your own that you expect prompt lookup to win, and one
#    where you expect it to lose, with your guess of its speedup on each; then uncomment the race
#    and the checker. What in the text decided it?

# %%
from labkit import checks

check_1 = checks.check_hybrid_drafter  # uncomment the calls at the bottom once your code is ready
check_2 = checks.check_prediction
check_3 = checks.check_prediction


def hybrid_propose(ctx, k, pick, lookup, mtp):
    raise NotImplementedError("read how the glass box asks a drafter for drafts (labkit/glassbox.py); what does "
                              "prompt lookup give back when the context holds no match?")


predicted_2 = {"prompt lookup on code, k = 8": None}  # your predicted speedup, from the cost model
predicted_3 = {"your text where lookup wins": None, "your text where lookup loses": None}  # predicted speedups
texts_3 = {"your text where lookup wins": "", "your text where lookup loses": ""}  # write them here

# check_1(hybrid_propose, pair)
# code = [r["text"] for r in methods.load_tasks(3) if r["task"] == "code"]
# timed = bench.timed_race(pair, code, ("none", "prompt-lookup"), 8, max_new_tokens=meta["new_tokens"])
# check_2(predicted_2, {"prompt lookup on code, k = 8": experiments.speedup_of(timed["none"], timed["prompt-lookup"]).value})
# timed = bench.timed_race(pair, list(texts_3.values()), ("none", "prompt-lookup"), meta["k"], repeats=3)
# check_3(predicted_3, {name: experiments.speedup_of(timed["none"][i], timed["prompt-lookup"][i]).value
#                       for i, name in enumerate(texts_3)})

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
# # 10 · Chat and thinking: solutions
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/solutions/10_chat_and_thinking_solutions.ipynb)
#
# Solutions to the exercises of `10_chat_and_thinking`, each followed by its checker.

# %%
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %%
import labkit

env = labkit.setup()

# %%
from labkit import chat, checks, experiments, generation, metrics

pair = labkit.load_pair("pocket-chat")
tok = generation.text_tokenizer(pair.tokenizer)
sample = [next(q for q in chat.load_questions() if q["task"] == task)
          for task in ("add", "sub", "sort", "count", "follow_add")]  # the chapter's five questions
K, MAX_NEW = 4, 192

# %% [markdown]
# **1.** Read left to right with two pieces of state: the segment we are inside, and whether we are
# still in a header (the role or channel name after `<|turn>` / `<|channel>`, up to its newline).
# Special tokens are template, and some of them switch the segment: `<|channel>` opens a thought,
# `<channel|>` returns to the answer, `<turn|>` ends the turn (what follows until the next turn's
# header is template), `<|turn>` starts a turn's text.

# %%
OPEN = {"<|turn>": "answer", "<|channel>": "thought", "<|tool_call>": "tool_call", "<|tool_response>": "tool_response"}
CLOSE = {"<turn|>": "template", "<channel|>": "answer", "<tool_call|>": "answer", "<tool_response|>": "answer"}


def my_segments(ids, tokenizer):
    special = set(tokenizer.all_special_ids)
    labels, inside, header = [], "answer", False
    for i in ids:
        piece = tokenizer.decode([i])
        if i in special or piece in OPEN or piece in CLOSE:
            labels.append("template")
            inside = OPEN.get(piece, CLOSE.get(piece, inside))
            header = piece in ("<|turn>", "<|channel>")
        elif header:
            labels.append("template")
            header = "\n" not in piece  # the header ends with its newline
        else:
            labels.append(inside)
    return labels


replies = [labkit.run(pair, q["messages"], thinking=True, k=K, max_new_tokens=MAX_NEW) for q in sample[:2]]
checks.check_segments(my_segments, tok, replies)

# %% [markdown]
# **2.** With thinking off a reply is about eight tokens: the prefill and one or two rounds are
# most of its time, so its speedup says little about long text. A thought is about ten times
# longer and written in a fixed layout (column arithmetic), the kind of text chapter 04 found the
# drafter keeps most of. So predict a speedup above the thinking-off one, near what the pocket
# pair reaches on regular text (chapter 05's cost model: with α near 0.9 at k = 4, tau near 4 and
# a speedup a little under 2 on a CPU). Then measure, as the chapter does.

# %%
prediction = {"speedup with thinking on": 1.9}


def decode(q, path):
    return labkit.run(pair, q["messages"], thinking=True, path=path, k=K, max_new_tokens=MAX_NEW)


experiments.time_paths({"plain": lambda: decode(sample[0], "plain"),
                        "speculative": lambda: decode(sample[0], "transformers")}, repeats=1)  # warm-up
timed = [experiments.time_paths({"plain": lambda q=q: decode(q, "plain"),
                                 "speculative": lambda q=q: decode(q, "transformers")},
                                repeats=1, warmup=False, offset=i) for i, q in enumerate(sample)]
plains, specs = [t["plain"].trace for t in timed], [t["speculative"].trace for t in timed]
speedup = metrics.interval(metrics.speedup, plains, specs)
print(f"{pair.label}, greedy, k = {K}, thinking on: tau {metrics.interval(metrics.tau, specs)}, "
      f"speedup {speedup}x ({speedup.sample})")
checks.check_prediction(prediction, {"speedup with thinking on": speedup.value}, "x")

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
# # 10 · Chat and thinking: turns, thoughts and what the drafter makes of them
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/10_chat_and_thinking.ipynb)
#
# **Goal.** Gemma 4 is an assistant: it is spoken to in turns, and on request it thinks before it
# answers. Every chapter so far fed a base model raw text. Here a pair that speaks Gemma 4's turn
# format and thinks on request answers questions it never saw phrased that way, and we measure
# what that changes for speculative decoding: how the prompt is laid out token by token, where in
# a reply the drafts are kept (the working in the thought, the answer, the format's own tokens),
# what thinking costs and what speculation saves of it, what a second turn reads, and how the two
# lossless sampling rules differ on thoughts at the temperature Gemma 4 recommends.

# %% tags=["live"]
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %% tags=["live"]
import labkit

PAIR = "pocket-chat"  # @param ["pocket-chat", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # the pair labkit.load_pair() loads (LABKIT_PAIR=..., if set, wins)

# %% tags=["live"]
from IPython.display import HTML, display

from labkit import chat, checks, experiments, generation, metrics, plots, style, widgets

pair = labkit.load_pair()
if not generation.speaks_chat(pair):  # a base model continues text: it has no turns to speak in
    print(f"{pair.label} is a base model without a chat template; this chapter loads the pocket chat pair")
    pair = labkit.load_pair("pocket-chat")
tag = pair.label
tok = generation.text_tokenizer(pair.tokenizer)
questions = chat.load_questions()  # held-out: phrasings training never used
K, MAX_NEW = 4, 192  # drafts per round; room for a thinking reply
print(pair)

# %% [markdown]
# The **pocket chat pair** is the pocket target fine-tuned in this repository on synthetic
# dialogues with checkable answers (2–3-digit addition and subtraction, sorting a few numbers,
# counting a letter, follow-ups such as "Now add 7 to that."), in Gemma 4's turn format, with and
# without thinking; its drafter was distilled against it. Its card,
# [`data/pocket-chat/MODEL_CARD.md`](../data/pocket-chat/MODEL_CARD.md), has the recipe and the bars
# it was measured against. It is a 15M-parameter stand-in: it does not know anything, it does
# arithmetic in a fixed style. A real Gemma 4 pair takes the same calls (`PAIR = "E2B"`).
#
# ## A conversation, token by token
#
# Gemma 4's format ([Google, "Gemma 4 prompt formatting"](https://ai.google.dev/gemma/docs/core/prompt-formatting-gemma4)):
# every turn is `<|turn>ROLE\n … <turn|>`; thinking is switched on by `<|think|>` in the system
# turn, and the reply then starts with its thoughts, `<|channel>thought\n … <channel|>`, before the
# answer the user reads. `labkit.run(pair, messages, thinking=True)` renders a list of
# `{"role", "content"}` messages with the pair's own chat template. Hover over a token for its
# segment and id.

# %%
question = questions[0]
for thinking in (False, True):
    ids = chat.render(tok, question["messages"], thinking=thinking)
    pieces = [tok.decode([i]) for i in ids]
    print(f"thinking {'on' if thinking else 'off'}: {len(ids)} prompt tokens")
    display(HTML(style.segment_html(pieces, chat.segments(ids, tok), ids)))

# %% [markdown]
# The two prompts differ by one system turn holding `<|think|>` (a system turn is there anyway when
# the conversation has a system message). Now the reply, greedy, with the drafter proposing `k = 4`
# tokens per round (transformers' assisted `generate`): first coloured by segment, then by how
# each token was produced.

# %%
reply = labkit.run(pair, question["messages"], thinking=True, k=K, max_new_tokens=MAX_NEW)
display(HTML(style.segment_html(list(reply.pieces), reply.segments())))
display(HTML(style.token_html(reply, show_prompt=False)))
thought, answer = chat.reply_parts("".join(reply.pieces))
print(f"{len(reply.new_ids)} new tokens: {sum(s == 'thought' for s in reply.segments())} of thought, "
      f"{sum(s == 'answer' for s in reply.segments())} of answer; right: {chat.is_right(question, answer)} "
      f"(expected {question['value']}); tau = {metrics.tau(reply):.2f} at k = {K}")

# %% [markdown]
# ## Thinking on and off, measured
#
# Five held-out questions (an addition, a subtraction, a sort, a letter count, a follow-up), each
# answered with thinking on and off, by the target alone and with its drafter, greedy. Both paths
# are warmed up first, and for each question the two take turns at going first. The speedup
# interval is a 90 % bootstrap over the questions (each question's two runs resampled together).

# %% tags=["live"]
def pick(rows, wanted=("add", "sub", "sort", "count", "follow_add")):
    """The first questions of each task in `wanted`, in that order."""
    left, chosen = list(rows), []
    for task in wanted:
        row = next(r for r in left if r["task"] == task)
        left.remove(row)
        chosen.append(row)
    return chosen


sample = pick(questions)

# %%
def measure(thinking):
    def decode(q, path):
        return labkit.run(pair, q["messages"], thinking=thinking, path=path, k=K, max_new_tokens=MAX_NEW)

    experiments.time_paths({"plain": lambda: decode(sample[0], "plain"),
                            "speculative": lambda: decode(sample[0], "transformers")}, repeats=1)  # warm-up
    timed = [experiments.time_paths({"plain": lambda q=q: decode(q, "plain"),
                                     "speculative": lambda q=q: decode(q, "transformers")},
                                    repeats=1, warmup=False, offset=i) for i, q in enumerate(sample)]
    return [t["plain"].trace for t in timed], [t["speculative"].trace for t in timed]


runs = {thinking: measure(thinking) for thinking in (True, False)}

# %%
rows = {}
for thinking, (plains, specs) in runs.items():
    right = [chat.is_right(q, chat.reply_parts("".join(s.pieces))[1]) for q, s in zip(sample, specs)]
    rows[thinking] = {
        "tokens": sum(len(s.new_ids) for s in specs) / len(specs),
        "identical": sum(p.new_ids == s.new_ids for p, s in zip(plains, specs)),
        "right": sum(right), "right_interval": metrics.wilson(sum(right), len(right)),
        "plain_s": sum(p.wall for p in plains) / len(plains), "spec_s": sum(s.wall for s in specs) / len(specs),
        "tau": metrics.interval(metrics.tau, specs), "speedup": metrics.interval(metrics.speedup, plains, specs),
    }
print(f"{tag}, greedy, transformers' assisted generate, k = {K}; {len(sample)} held-out questions\n")
print(f"{'thinking':>8} {'tokens':>7} {'right':>12} {'plain s':>8} {'spec s':>7} {'tau':>18} {'speedup':>19}")
for thinking, r in rows.items():
    lo, hi = r["right_interval"]
    print(f"{'on' if thinking else 'off':>8} {r['tokens']:7.1f} {r['right']:>3} of {len(sample)} "
          f"[{lo:.2f}, {hi:.2f}] {r['plain_s']:8.2f} {r['spec_s']:7.2f} {str(r['tau']):>18} {str(r['speedup']) + 'x':>19}")
print(f"\nidentical text, plain vs speculative: {rows[True]['identical']} of {len(sample)} with thinking on, "
      f"{rows[False]['identical']} of {len(sample)} off")
on, off = rows[True], rows[False]
print(f"thinking on wrote {on['tokens'] / off['tokens']:.1f}x as many tokens; speculation's speedup "
      + {"higher": "was higher with thinking on (the intervals do not overlap)",
         "lower": "was lower with thinking on (the intervals do not overlap)",
         "no clear difference": "was not clearly different (the intervals overlap)"}[on["speedup"].versus(off["speedup"])])

# %% [markdown]
# Read the table as a learner paying for tokens would. Thinking multiplies the tokens a reply
# costs; whether it buys right answers on *this* pair the "right" column says (its interval is a
# Wilson interval over five questions: wide). With thinking off a reply is a handful of tokens, so
# the prefill and the first round are most of it and there is little left for drafts to save; a
# thought of this pair is long and regular (column arithmetic in a fixed layout). The last line
# says whether that made speculation's speedup differ, and by the intervals, not by the bars' tops.
#
# ## Where the drafts are kept: acceptance per segment
#
# `metrics.by_segment` splits the same speculative runs by what each drafted position turned out
# to be part of: a draft counts for the segment of the position it was drafted for.

# %%
thinking_on = runs[True][1]
found = metrics.by_segment(thinking_on)
for seg, r in found.items():
    est = metrics.interval(lambda ts, s=seg: plots.segment_stat(ts, s), thinking_on)
    print(f"{seg:>9}: {r['tokens']:4} tokens, {r['judged']:4} drafts judged, acceptance {est} "
          f"(bootstrap over questions; Wilson {r['interval'][0]:.2f}–{r['interval'][1]:.2f}), tau {r['tau']:.2f}")
plots.segment_figure({"greedy, thinking on": thinking_on},
                     label=f"{tag}, transformers' assisted generate, k = {K}")

# %%
if "thought" in found and "answer" in found:
    thought_est = metrics.interval(lambda ts: plots.segment_stat(ts, "thought"), thinking_on)
    answer_est = metrics.interval(lambda ts: plots.segment_stat(ts, "answer"), thinking_on)
    verdict = thought_est.versus(answer_est)
    print(f"thoughts against answers, on {len(thinking_on)} questions: "
          + {"higher": "drafts in thoughts were kept more often (the intervals do not overlap)",
             "lower": "drafts in thoughts were kept less often (the intervals do not overlap)",
             "no clear difference": "no clear difference (the intervals overlap)"}[verdict])
else:
    print("these replies had no thought or no answer segment to compare")

# %%
ranked = sorted(found, key=lambda s: -found[s]["acceptance"])
print("segments from most to least accepted (point estimates): " + " > ".join(ranked))

# %% [markdown]
# The template tokens (`<|channel>`, `thought\n`, `<channel|>`, `<turn|>`) are fixed by the format,
# but a reply holds only a handful of them, so their interval is among the widest. What a published figure calls "acceptance on reasoning" mixes all three segments; on a real reasoning model most tokens are thoughts (about
# 85 % of DeepSeek-R1's GSM8K output is inside its thinking, vLLM issue #43184), so the thought
# segment's acceptance is what decides the speedup.
#
# ## A second turn
#
# In a conversation every turn is a new prompt: the whole history, re-rendered. Gemma 4's template
# drops the earlier model turns' thoughts, so with thinking on, the history the target reads in
# turn 2 is *not* what it wrote in turn 1. A server that caches the prefix of turn 1 can reuse it
# only up to where turn 1's reply began. The drafter has no cache of its own: in every round it
# reads the target's K/V, so in turn 2 it sees the earlier answer through the target's cache.

# %%
first = [m for m in sample[-1]["messages"]][:-1]  # the follow-up's history, up to its last question
cut = max(n for n, m in enumerate(first) if m["role"] == "user") + 1
turn1_messages = first[:cut]
turn1 = labkit.run(pair, turn1_messages, thinking=True, k=K, max_new_tokens=MAX_NEW)
turn1_text = "".join(turn1.pieces).split("<turn|>")[0]
turn2_messages = turn1_messages + [{"role": "assistant", "content": turn1_text},
                                   {"role": "user", "content": "Now add 7 to that."}]
turn2 = labkit.run(pair, turn2_messages, thinking=True, k=K, max_new_tokens=MAX_NEW)
cached = list(turn1.prompt_ids) + list(turn1.new_ids)
shared = next((n for n, (a, b) in enumerate(zip(cached, turn2.prompt_ids)) if a != b), min(len(cached), len(turn2.prompt_ids)))
print(f"turn 1: {len(turn1.prompt_ids)} prompt + {len(turn1.new_ids)} new tokens "
      f"({sum(s == 'thought' for s in turn1.segments())} of them thought)")
print(f"turn 2 reads {len(turn2.prompt_ids)} prompt tokens; the first {shared} are what turn 1 already had in "
      f"its cache, the other {len(turn2.prompt_ids) - shared} are new to the target (its earlier answer "
      "without the thought, and the new question)")
print(f"turn 2's reply: {chat.reply_parts(''.join(turn2.pieces))[1]!r}; tau {metrics.tau(turn2):.2f} "
      f"(turn 1: {metrics.tau(turn1):.2f})")
display(HTML(style.token_html(turn2, show_prompt=False)))

# %% [markdown]
# The follow-up's thought starts by restating the earlier answer ("that is …"), digits the
# drafter can only get right by reading them in the target's K/V of the history: a single turn
# cannot tell you whether your drafter does that, a second one does.
#
# ## What the chat template does on this pair
#
# Chapter 04 found no clear difference between prompts with and without the chat template on the
# pocket target, a base model trained on plain text. On a pair trained to speak in turns the
# template is the format its text is predictable in. The same five questions, thinking off, asked as
# raw text (`chat=False`) and in a turn.

# %%
raw = [labkit.run(pair, chat.user_text(q["messages"]), chat=False, k=K, max_new_tokens=24, stop_at_eos=False)
       for q in sample]
in_turn = runs[False][1]
raw_tau, turn_tau = metrics.interval(metrics.tau, raw), metrics.interval(metrics.tau, in_turn)
print(f"{tag}, greedy, k = {K}: tau {raw_tau} as raw text, {turn_tau} in a turn ({len(sample)} questions)")
print("in a turn against raw text: " + {"higher": "tau higher in a turn (the intervals do not overlap)",
                                        "lower": "tau lower in a turn (the intervals do not overlap)",
                                        "no clear difference": "no clear difference (the intervals overlap)"}[
    turn_tau.versus(raw_tau)])
print(f"raw text, first question: {''.join(raw[0].pieces)[:80]!r}")
raw_right = sum(chat.is_right(q, chat.reply_parts("".join(t.pieces))[1]) for q, t in zip(sample, raw))
raw_tokens = sum(len(t.new_ids) for t in raw) / len(raw)
print(f"as raw text: {raw_tokens:.1f} new tokens a reply, {raw_right} of {len(sample)} right; in a turn: "
      f"{rows[False]['tokens']:.1f} tokens, {rows[False]['right']} of {len(sample)} right (thinking off)")

# %% [markdown]
# Read the last two lines before the taus. A reply of one token is the prefill's token alone, so
# its tau is 1 whatever the drafter does; where raw replies are that short, the two taus do not
# compare like for like, and the lesson is in the replies themselves: a model trained on turns
# answers in the format it learned, and a question outside a turn gets little or no answer. The
# template is not a wrapper around the question, it is the input the model knows. Chapter 04's base
# target, trained on plain text, had no such format to lose.
#
# ## Sampling at temperature 1.0: argmax drafts or drafts from q?
#
# Gemma 4's model card recommends sampling at temperature 1.0. Chapter 03 showed the two lossless
# rules: transformers drafts the drafter's argmax and keeps it with probability p(x) (a point
# mass q), the glass box draws each draft from q and keeps it with probability min(1, p/q). They
# part most where the target is unsure. Three questions with thinking on, each rule once, the same
# seed per question.

# %%
hot = {"temperature": 1.0, "k": K, "max_new_tokens": MAX_NEW}
point_mass = [labkit.run(pair, q["messages"], thinking=True, path="transformers", seed=i, **hot)
              for i, q in enumerate(sample[:3])]
from_q = [labkit.run(pair, q["messages"], thinking=True, path="glassbox", seed=i, **hot)
          for i, q in enumerate(sample[:3])]
plots.segment_figure({"argmax drafts, kept with p(x)": point_mass, "drafts from q, kept with min(1, p/q)": from_q},
                     label=f"{tag}, T = 1.0, k = {K}, thinking on")

# %%
for name, traces in (("argmax, point mass", point_mass), ("drawn from q", from_q)):
    segs = metrics.by_segment(traces)
    parts = ", ".join(f"{s} {segs[s]['acceptance']:.2f} ({segs[s]['judged']} judged)" for s in segs)
    print(f"{name:>18}: tau {metrics.interval(metrics.tau, traces)}; acceptance by segment: {parts}")

# %%
rules_verdict = metrics.interval(metrics.tau, point_mass).versus(metrics.interval(metrics.tau, from_q))
print("argmax drafts against drafts from q, tau: " + {
    "higher": "argmax drafts kept more (the intervals do not overlap)",
    "lower": "drafts from q kept more (the intervals do not overlap)",
    "no clear difference": "no clear difference (the intervals overlap)"}[rules_verdict])

# %% [markdown]
# Both rules are exact: each reply is a draw from the target's own distribution at T = 1.0. They
# differ only in how many drafts survive. Which wins depends on how sure the target is: where it
# puts most of its probability on one token (a column sum), the drafter's argmax is usually that
# token and p(x) is near 1, so a point mass loses little; where the target spreads out, a draft
# drawn from a q that spreads the same way is kept more often (Bebop's rule, chapter 11: sampling
# wins iff TV(p, q) < 1 − p(argmax q)). Three questions give wide intervals: read the whiskers.
#
# ## What real Gemma 4 is expected to do (cited, not measured here)
#
# - Reasoning models spend most of their tokens thinking: about 85 % of DeepSeek-R1's GSM8K
#   output (vLLM issue #43184). Whatever acceptance thoughts get decides the speedup.
# - Published figures disagree in direction: argmax drafts lost acceptance inside long thinking in
#   one engine's measurement (tokenspeed #1305: 3.87 → 2.08 accepted tokens per step), mlx-serve
#   #433 reports the opposite tendency on its models. Measure your own pair and prompts.
# - Serving engines reuse a conversation's prefix cache across turns; with thinking on, the
#   stripped thoughts end that prefix at the previous reply (the second-turn section above).
#
# ## Try it yourself
#
# The tour's panel takes a conversation: edit the question and press **Run** (thinking on).

# %% tags=["live"]
run_both = generation.tour_runner(pair, thinking=True)
widgets.TourPanel(run_both, sample[0]["messages"], pair="pocket-chat" if pair.is_pocket else pair.name, k=K,
                  max_new_tokens=MAX_NEW)

# %% [markdown]
# ## Summary
#
# - A chat prompt is a rendered conversation: turns, and with thinking on a system turn holding
#   `<|think|>`; a thinking reply is thought, then answer, inside template tokens.
# - `labkit.run(pair, messages, thinking=...)` labels every new token by segment, and
#   `metrics.by_segment` splits acceptance and tau by them: measure the thought segment, it is most
#   of a reasoning model's tokens.
# - Thinking multiplies the tokens of a reply; speculation saves more where text is long and
#   regular. Every later turn re-reads a history whose earlier thoughts are gone.
#
# ## Exercises
#
# 1. **Write the segment labeller.** `my_segments(ids, tokenizer)` returns one label per token:
#    "thought" inside `<|channel>thought\n … <channel|>`, "template" for every special token and
#    the header after `<|turn>` or `<|channel>` up to its newline, "answer" otherwise (tool calls
#    optional). Check it against `labkit.chat.segments` on this chapter's replies.
# 2. **Predict, then measure.** From the thinking-off rows alone (tau, speedup) and the fact that a
#    thinking reply is about ten times longer and mostly column arithmetic, predict the speedup
#    with thinking on at k = 4 on these five questions, then compare with the measured interval.

# %%
def my_segments(ids, tokenizer):
    raise NotImplementedError("walk the ids left to right; which tokens open and close a segment?")


prediction = {"speedup with thinking on": None}  # your number, before you look at the table above

# checks.check_segments(my_segments, tok, thinking_on)
# checks.check_prediction(prediction, {"speedup with thinking on": rows[True]["speedup"].value}, "x")

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
# # 04 · Acceptance: how many drafts survive, and what moves it
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/04_acceptance.ipynb)
#
# **Goal.** Measure acceptance the way papers and engines report it (per draft position, tokens
# per target forward `tau`, per-token acceptance `α`), compare it with the closed form
# `(1 − α^(k+1)) / (1 − α)`, and see what moves it: the kind of text, `k` (drafts per round), the
# temperature, the draft-length schedule, and the chat template. Every number comes with the
# sample behind it and an interval, and the text only says what those intervals allow.

# %% tags=["live"]
import sys

if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
    # !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
    sys.path.insert(0, "/content/mtp-lab")

# %% tags=["live"]
import labkit

PAIR = "pocket"  # @param ["pocket", "E2B", "E4B", "26B-A4B", "31B"] {allow-input: true}
env = labkit.setup(pair=PAIR)  # the pair labkit.load_pair() loads (LABKIT_PAIR=..., if set, wins)

# %% tags=["live"]
from labkit import generation, metrics, plots, widgets

# The pair chosen in the setup cell: the pocket pair (offline) unless PAIR or LABKIT_PAIR names another
pair = labkit.load_pair()
tag = pair.label
print(pair)  # which pair, in what precision, on which device

# %% [markdown]
# ## Enough data, measured once
#
# Acceptance varies a lot from prompt to prompt: a docstring that continues a familiar pattern is
# easy to draft, a fresh identifier is not. Two prompts of twenty tokens give about ten rounds,
# too few to tell a real effect from luck, and this notebook's time budget (a minute on a laptop)
# cannot pay for hundreds. So the lab ships **traces** (the record of every round) measured on
# the pocket pair with every shipped held-out prompt of a kind (24 prose, 24 code, 64 new tokens
# each) by `scripts/record_traces.py`. A trace is data: it needs no model to plot.
#
# The interval after each number is a **90 % bootstrap interval over prompts**: resample the
# prompts with replacement a thousand times, recompute the number each time, and keep the middle
# 90 %. Prompts, not rounds, are resampled, because the rounds of one prompt are alike.

# %%
shipped, meta = labkit.load_traces("acceptance")
recorded_on = meta["pair"]  # the recording's pair, which names the figures drawn from it
print(f"{recorded_on}: recorded {meta['date']} on {meta['machine']}\n  by `{meta['command']}` "
      f"(transformers {meta['versions']['transformers']}, {meta['new_tokens']} new tokens per prompt)")
if not pair.is_pocket:
    print(f"These shipped traces are the pocket pair's; the live slice, the two sampling rules and the explorer "
          f"below run on {tag}.")
for name, traces in shipped.items():
    print(f"  {name:34s} {len(traces)} prompts, {len(metrics.drafting_rounds(traces)):4d} rounds, "
          f"{traces[0].decoding}")

# %% [markdown]
# ## Three numbers
#
# - **Acceptance at position j**: how often the j-th draft of a round was kept. Position 2 can
#   only be kept if position 1 was, so this can only fall with j.
# - **α**, per-token acceptance: accepted drafts / drafts the target actually judged (a round
#   judges its accepted drafts plus the one it rejected; drafts after a rejection never count).
#   Engines use other ratios under similar names (vLLM's "acceptance rate" is accepted / drafted).
# - **tau**: new tokens per target forward, over the whole generation (the prefill, the forward
#   that reads the prompt and yields the first token, included).
# - **Accepted length per round**: new tokens per target forward *after* the prefill, i.e. the
#   accepted drafts plus the target's own token, averaged over rounds. This is the number papers
#   quote (EAGLE's "average acceptance length τ", Spec-Bench's "mean accepted tokens"), and vLLM's
#   "mean acceptance length" is the same ratio over the rounds that drafted (chapter 09);
#   `metrics.accepted_length` computes it. It is always at least
#   `tau`, and the gap shrinks as generations get longer. Quote a paper's τ next to this one, not
#   next to the lab's `tau`.
#
# If every draft were an independent coin with probability `α` (the **coin model**), position j
# would be kept with probability `α^j`, and a round would yield `(1 − α^(k+1)) / (1 − α)` tokens.
# Compare that closed form with **tokens per full round** (accepted drafts + 1, over rounds that
# drafted all `k`), not with `tau`, which also pays for the prefill's single token and for the last
# rounds, cut short by the token budget.

# %%
by_kind = {kind: shipped[f"{kind}, k = 4"] for kind in ("prose", "code")}
stats = {}
for kind, traces in by_kind.items():
    tau_ = metrics.interval(metrics.tau, traces)
    alpha_ = metrics.interval(metrics.alpha, traces)
    per_round = metrics.interval(metrics.tokens_per_round, traces)
    paper = metrics.interval(metrics.accepted_length, traces)
    stats[kind] = (tau_, alpha_, per_round)
    print(f"{kind:5s} ({recorded_on}, k = 4, greedy; {tau_.sample}):\n   tau {tau_}   α {alpha_}\n"
          f"   accepted length per round, as a paper reports it {paper}\n"
          f"   tokens per full round {per_round}, coin model with this α {metrics.expected_tau(alpha_.value, 4):.2f}")
verdict = stats["code"][2].versus(stats["prose"][2])
print(f"\ncode against prose, tokens per full round: {verdict}")
plots.acceptance_figure(by_kind, title="Acceptance by draft position<br>"
                                       f"<sup>{recorded_on}, k = 4, {by_kind['code'][0].decoding}</sup>")

# %% [markdown]
# The bars carry their intervals; the dotted lines are the coin model with each kind's `α`.
# Whether code is drafted better than prose on this pair is the line printed above: "higher" or
# "lower" only when the two intervals do not overlap.
#
# **Conditional acceptance**, `P(draft j kept | drafts before it kept)`, is the per-position
# `α_j`. The coin model says it is flat. An MTP drafter sees the target's hidden state only at
# the round's start and its own guesses after that, so one might expect it to get worse deeper
# into a round; the printed comparison of position 1 with the last position says whether this
# sample shows it.

# %%
cond = {kind: [metrics.interval(lambda ts, j=j: metrics.acceptance_by_position(ts, conditional=True)[j], traces)
               for j in range(4)] for kind, traces in by_kind.items()}
for kind, est in cond.items():
    print(f"{kind:5s}: α_1 {est[0]}  α_2 {est[1]}  α_3 {est[2]}  α_4 {est[3]}\n"
          f"       α_4 against α_1: {est[3].versus(est[0])}; α_2 against α_1: {est[1].versus(est[0])}")
plots.acceptance_figure(by_kind, conditional=True, title="Conditional acceptance by position<br>"
                        f"<sup>{recorded_on}, k = 4, {by_kind['code'][0].decoding}</sup>")

# %%
plots.tau_histogram(by_kind, title="Accepted drafts per round<br>"
                    f"<sup>{recorded_on}, k = 4, {by_kind['code'][0].decoding}, 24 prompts of each kind</sup>")

# %% [markdown]
# ## A live slice
#
# The shipped traces were measured on another day, maybe on another machine. Re-measure a small
# slice now (two code prompts, k = 4) and see where it falls. With greedy decoding the pocket pair
# is deterministic, so on the same prompts the live rounds should match the shipped ones exactly;
# a slice of two prompts can still land outside the 24-prompt interval, because two prompts are
# not a sample of the whole set.

# %% tags=["live"]
live_prompts = generation.load_prompts("code", limit=2)


def measure(kind="code", k=4, **kw):
    """Traces for the live prompts (transformers' assisted generate; lossless if sampled)."""
    kw = {"max_new_tokens": 32, "stop_at_eos": False, **kw}
    return [generation.run(pair, p, path="transformers", k=k, seed=i, **kw) for i, p in enumerate(live_prompts)]


live = measure()

# %%
same = [a.new_ids[:32] == b.new_ids[:32] for a, b in zip(live, shipped["code, k = 4"][:2])]
print(f"live ({tag}, 2 code prompts × 32 tokens, {live[0].decoding}):\n"
      f"   tokens per full round {metrics.tokens_per_round(live):.2f}; the shipped 24-prompt interval "
      f"{stats['code'][2]}: {'inside' if stats['code'][2].contains(metrics.tokens_per_round(live)) else 'outside'}\n"
      f"   first 32 tokens identical to the shipped traces' on {sum(same)} of 2 prompts"
      + ("" if pair.is_pocket else f" (they are the {recorded_on}'s: another pair need not match them)"))

# %% [markdown]
# ## Sweeping k
#
# More drafts per round can only add tokens per target forward, but with diminishing returns:
# the closed form saturates at `1 / (1 − α)`. Whether the extra drafts pay for themselves is a
# question of *cost*, the subject of notebook 05.

# %%
ks = (1, 2, 3, 4, 5, 6, 8)
rows = []
for k in ks:
    traces = shipped[f"code, k = {k}"]
    rows.append({"k": k, "tau": metrics.interval(metrics.tau, traces), "alpha": metrics.alpha(traces),
                 "per_round": metrics.interval(metrics.tokens_per_round, traces), "label": "code"})
    r = rows[-1]
    print(f"k = {k}: tokens per full round {r['per_round']}, coin model (α = {r['alpha']:.2f}) "
          f"{metrics.expected_tau(r['alpha'], k):.2f}; tau {r['tau']}")
plots.sweep_figure(rows, title="Tokens per target forward against k<br>"
                   f"<sup>{recorded_on}, 24 code prompts, {shipped['code, k = 1'][0].decoding}</sup>")

# %% [markdown]
# ## Temperature, schedule, chat template
#
# - **Temperature**: with sampling the target's own token is random, so even a good drafter
#   guesses it less often. *Which* rule keeps a draft depends on how the draft was made. The
#   shipped sampled traces come from transformers' assisted generate on labkit's lossless path:
#   the drafter proposes its **argmax**, verified as a point mass, so a draft `a` is kept with
#   probability `p(a)` (notebook 03). The `min(1, p(x)/q(x))` rule belongs to drafts **sampled
#   from `q`**, which the glass-box loop makes. Both are lossless (their output is distributed
#   exactly as the target's own sampling; notebook 03 shows what transformers' as-shipped rule does
#   instead), and the section after the next cell measures them side by side.
# - **Schedule**: a "heuristic" schedule drafts 2 more after a fully accepted round and 1 fewer
#   after a rejection; "constant" always drafts `k`. transformers names both, but its MTP
#   candidate generator never changes `k` (the count of drafts per round printed below shows it),
#   so the schedule is measured on the glass-box loop too, which applies it.
# - **Chat template**: the same request wrapped in Gemma 4's chat format (`<|turn>user …<turn|>`,
#   then `<|turn>model`). Mind which target this is: the **pocket target is a small base model
#   trained on plain text** (Shakespeare and Python code), never on chat turns. It does not answer
#   as an assistant; it continues text that now starts with markers it never saw. So on this pair
#   the template measures unfamiliar framing, not the effect reported for instruction-tuned Gemma 4
#   targets, which were trained on that format. Chapter 10 (`10_chat_and_thinking`) measures the
#   template, and thinking, on a pair trained to speak in turns.

# %%
variants = {
    "greedy, constant k": shipped["code, k = 4"],
    "T = 0.7": shipped["code, k = 4, T = 0.7"],
    "T = 1.0": shipped["code, k = 4, T = 1.0"],
    "heuristic, transformers": shipped["code, k = 4, heuristic schedule"],
    "heuristic, glass box": shipped["code, k = 4, heuristic schedule, glass box"],
    "chat template": shipped["code, k = 4, chat template"],
}
for name in ("heuristic, transformers", "heuristic, glass box"):
    # rounds with room for k + 2 more tokens: the token budget did not cut their drafts
    free = [r.k for t in variants[name] for r in t.rounds[1:]
            if len(t.prompt_ids) + meta["new_tokens"] - r.position > t.k + 2]
    counts = ", ".join(f"k = {k}: {free.count(k)}" for k in sorted(set(free)))
    print(f"{name}: drafts per round, away from the token budget's end: {counts}")
base = metrics.interval(metrics.tau, variants["greedy, constant k"])
for name, traces in variants.items():
    t = metrics.interval(metrics.tau, traces)
    a = metrics.interval(metrics.alpha, traces)
    against = "" if name.startswith("greedy") else f"; against greedy, constant k: {t.versus(base)}"
    print(f"{name:24s} tau {t}   α {a}{against}\n{'':24s} ({traces[0].decoding})")
chat_verdict = metrics.interval(metrics.tau, variants["chat template"]).versus(base)
print(f"\nchat template against none, on the pocket target (a base model trained on plain text): "
      + {"no clear difference": "no clear difference in tau on these 24 code prompts (the intervals overlap)",
         "lower": "tau lower with the template (the intervals do not overlap)",
         "higher": "tau higher with the template (the intervals do not overlap)"}[chat_verdict])
plots.acceptance_figure({name: variants[name] for name in ("greedy, constant k", "T = 0.7", "T = 1.0")},
                        theory=False, title="Acceptance by position at three temperatures<br>"
                                            f"<sup>{recorded_on}, code, k = 4, transformers' assisted generate, "
                                            "lossless</sup>")

# %% [markdown]
# ## Two lossless sampling rules, side by side
#
# The same four code prompts at `T = 1.0`, `k = 4`, sampled two ways:
#
# - **argmax draft, verified as a point mass** (transformers' assisted generate on labkit's
#   lossless path, as in the shipped traces): the draft `a` is kept with probability `p(a)`;
# - **draft sampled from `q`, verified with `min(1, p/q)`** (the glass-box loop,
#   `labkit.glassbox`): the draft is kept with probability `Σ min(p, q) = 1 − TV(p, q)` on average.
#
# Both emit exactly the target's distribution (each printed row measures it: the mean exact TV
# distance of its rounds to the target); they differ in how many drafts survive. vLLM applies the **point-mass rule by default**: its
# `draft_sample_method` is `"greedy"` (argmax drafts, `q` taken as one-hot) unless set to
# `"probabilistic"` (drafts sampled from `q`, verified with `min(1, p/q)`); SGLang added the
# sampled variant in 2026 (PR #26312).

# %%
rule_prompts = generation.load_prompts("code", limit=4)
sampled_kw = {"k": 4, "temperature": 1.0, "max_new_tokens": 32, "stop_at_eos": False}
by_rule = {
    "argmax draft, point mass": [generation.run(pair, p, path="transformers", seed=i, **sampled_kw)
                                 for i, p in enumerate(rule_prompts)],
    "draft ~ q, min(1, p/q)": [generation.run(pair, p, path="glassbox", seed=i, **sampled_kw)
                               for i, p in enumerate(rule_prompts)],
}
est = {}
for name, traces in by_rule.items():
    est[name] = (metrics.interval(metrics.alpha, traces), metrics.interval(metrics.tau, traces))
    print(f"{name:26s} α {est[name][0]}   tau {est[name][1]}   mean TV to the target "
          f"{metrics.summarize(traces).tv:.4f}\n{'':26s} ({traces[0].decoding}; {est[name][1].sample})")
(a_pm, t_pm), (a_q, t_q) = est.values()
print(f"\ndrafts sampled from q against argmax drafts: α {a_q.versus(a_pm)}, tau {t_q.versus(t_pm)} "
      f"({tag}, 4 code prompts × 32 tokens: rough intervals)")
print(f"the shipped point-mass traces, 24 code prompts × 64 tokens: α "
      f"{metrics.interval(metrics.alpha, shipped['code, k = 4, T = 1.0'])}")

# %% [markdown]
# Read the verdict line, not the point estimates: with four prompts the intervals are wide, and
# "no clear difference" is a possible answer. Which rule keeps more depends on the drafter: an
# argmax draft survives with `p(argmax q)`, a sampled one with `1 − TV(p, q)`, so a drafter whose
# whole distribution tracks the target's gains from sampling its drafts, and one that only gets
# the top token right does not (notebook 03 works both out on a toy vocabulary).
#
# ## Explore
#
# Move `k` and the temperature: the summary and figures update, measured live on the two code
# prompts (a new setting takes a few seconds the first time; settings already measured are
# reused). Two prompts are a small sample: compare what you see with the shipped intervals above
# before you believe a difference.

# %% tags=["live"]
explorer = widgets.SweepExplorer(lambda k, t: measure("code", k=k, temperature=t), ks=range(1, 9),
                                 label=f"{tag}, 2 code prompts × 32 tokens, live", known={(4, 0.0): live})
explorer

# %% [markdown]
# ## Summary
#
# - Acceptance falls with draft position; `α` (accepted / judged) and `tau` summarise it, and
#   the closed form `(1 − α^(k+1)) / (1 − α)` predicts tokens per full round from `α` as if drafts
#   were coins.
# - Larger `k` gives more tokens per target forward with diminishing returns, capped at `1/(1 − α)`.
# - Papers (EAGLE, Spec-Bench) and vLLM quote the accepted length per round, which leaves out the
#   prefill; the lab's `tau` counts it. Say which one you quote.
# - Sampling has two lossless rules: an argmax draft verified as a point mass (kept with `p(x)`;
#   transformers' lossless path here, and vLLM's default) and a draft sampled from `q`, kept with
#   `min(1, p/q)` (the glass box). Both keep the target's distribution; they keep different
#   numbers of drafts.
# - Text kind, temperature, schedule and chat template can all move acceptance; a difference counts
#   only when its intervals say so, and a handful of prompts rarely can. The pocket target is a base
#   model trained on plain text, so its chat-template result does not stand for an instruction-tuned
#   Gemma 4 target: chapter 10 measures that on the pocket chat pair.
#
# ## Exercises
#
# 1. **Per-token acceptance from rounds.** Write `alpha_from_rounds(rounds)`: accepted drafts over
#    drafts the target judged. Careful with two kinds of round: one that kept every draft, and one
#    cut short by the token budget before a draft was judged (`Round.rejected` tells you whether a
#    draft was turned down).
# 2. **Beyond the coin model.** Real drafts are not coins with one `α`: the conditional acceptance
#    printed above differs by position. Write `expected_tokens(alphas)`: the tokens a round yields
#    on average when draft `j` is kept with probability `alphas[j - 1]` *given* that the drafts
#    before it were kept (`k = len(alphas)`). The checker compares you with a simulation; then try
#    it on the conditional rates measured above and compare with the tokens per full round.
# 3. **Predict, then measure.** Before you run anything: will the chat template raise or lower
#    acceptance `α` on *prose* prompts, and by how much? Remember which target this is (a base model
#    trained on plain text). Write your guess in `prediction`, then uncomment the measurement: four
#    prose prompts with the template (`generation.run(..., chat=True)`) against the same four
#    without, with intervals.
# 4. Write `furthest_from_coin(rows)`: from `rows` (the sweep over k above), the `k` whose measured
#    tokens per full round are furthest from the coin model, above or below it. The checker prints
#    every gap with its interval: say whether the interval allows the difference. Why can real
#    drafts fall short of the coin model, and why could they beat it? (Hint: compare the conditional
#    acceptance at position 1 with the later positions; a long accepted run is often a copy.)

# %%
from labkit import checks

check_1 = checks.check_alpha_from_rounds  # uncomment the call(s) at the bottom once your code is ready
check_2 = checks.check_expected_tokens
check_3 = checks.check_direction_prediction
check_4 = checks.check_furthest_from_coin


def alpha_from_rounds(rounds):
    raise NotImplementedError("count accepted drafts, and the drafts the target judged: which drafts were never judged?")


def expected_tokens(alphas):
    raise NotImplementedError("a round yields 1 token plus one for each leading draft kept: what is the chance "
                              "that drafts 1..j are all kept?")


def furthest_from_coin(rows):
    raise NotImplementedError("for each row: measured tokens per full round minus the coin model at its α and k")


prediction = {"direction": None, "alpha change": None}  # "higher", "lower" or "no clear difference"; α with − without

# check_1(alpha_from_rounds)
# check_2(expected_tokens)
# prose = generation.load_prompts("prose", limit=4)
# kw = {"k": 4, "max_new_tokens": 32, "stop_at_eos": False}
# without = [generation.run(pair, p, seed=i, **kw) for i, p in enumerate(prose)]
# with_chat = [generation.run(pair, p, seed=i, chat=True, **kw) for i, p in enumerate(prose)]
# check_3(prediction, without, with_chat)
# check_4(furthest_from_coin, rows)

"""The glass-box speculative loop: draft → verify → accept, short enough to read in one sitting.

`speculative_loop` is the loop to read: prefill, then rounds of `draft_step`s (through a drafter's
`propose`), one `verify_step` and `accept`, yielding one `Step` per round. `speculate` runs it and
records the same `Trace` transformers' assisted `generate` gives with a Gemma 4 MTP drafter
(timing, per-round summaries and the per-round TV live there, not in the loop). Tests prove it:
greedy output equals the target's own greedy output and transformers' assisted output; sampled
output is distributed like the target's.
Introduced in `03_verify_and_accept`.

How the Gemma 4 assistant drafts (`MTPDrafter`): it has no KV cache and no prefill of its own.
Each step it reads concat(target input embedding of the last seen token, the target's last hidden
state at the position before it), projects that down (`pre_projection`), cross-attends to the
target's own K/V (the last non-shared sliding and full layers, `shared_kv_states`) at one constant
position, and hands `post_projection` of its output to the next step as the "hidden state".

Two drafters for comparison share the harness: `IndependentDrafter` (a classic small causal LM
with its own KV cache) and `PromptLookupDrafter` (copies what followed the last n-gram).

`kv="exact"` (default) gives the drafter only K/V of tokens that were kept; `kv="transformers"`
reproduces transformers 5.22's slicing, which after a rejection leaves the rejected drafts' K/V
visible to the drafter (see docs/stale-kv.md). Output tokens are the same either way; acceptance
can differ.

With sampling, the glass box draws every draft from the drafter's q and keeps it with probability
min(1, p/q) (Leviathan et al.'s rule). transformers' path, made lossless by `labkit.tracing.lossless`,
drafts the argmax instead and verifies it as a point mass (kept with probability p(x)), which is
also vLLM's default (`draft_sample_method="greedy"`). Both are exact; they keep different numbers
of drafts (`04_acceptance` measures the two side by side).

`sampled_rounds` runs the same loop and also keeps, for every sampled round, what the verifier
saw and drew (`SampledRound`: q(x), p(x), the uniform draws u, the residual it resampled from):
the data behind the sampled round stepper of `03_verify_and_accept`.

Chapter 11's strategies plug into it (`labkit.strategies`): argmax or sampled drafts (the pick),
token or block verification (`accept`), a confidence stop (the pick ends `propose`), and a draft
tree (`labkit.tree.tree_loop`, the same pieces around a tree-shaped verify).

Left out: batches, static caches and CUDA graphs (so it is slower than a server).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from transformers import DynamicCache

from labkit import rules, strategies
from labkit.errors import BadInputError
from labkit.trace import Decoding, Round, Trace, check_model_inputs

# A drafting policy: logits (vocab,) → (token, q), q the distribution the token came from (vocab,).
Pick = Callable[[torch.Tensor], tuple[int, torch.Tensor]]


@dataclass
class Context:
    """What a drafter may look at when a round starts."""

    ids: list[int]  # every token so far; the last one has not been through the target yet
    hidden: torch.Tensor | None  # (1, 1, hidden) target's last hidden state before ids[-1]
    shared_kv: dict[str, tuple[torch.Tensor, torch.Tensor]] | None  # target K/V, kept tokens


@dataclass(frozen=True)
class SampledDraft:
    """One judged draft of a sampled round: what the verifier compared and what it drew."""

    token: int  # the drafted token x
    q: float  # q(x): the drafter's probability of x, which x was drawn from
    p: float  # p(x): the target's probability of x at this position
    accept: float  # min(1, p(x) / q(x))
    u: float  # the uniform draw that was really made; x is kept when u < accept

    @property
    def kept(self) -> bool:
        return self.u < self.accept


@dataclass(frozen=True)
class SampledRound:
    """A sampled speculative round, draft by draft (`03_verify_and_accept`'s sampled stepper).

    Only the judged drafts are kept: verification stops at the first rejection, so drafts after it
    were never judged (and drew no u).
    """

    index: int  # round number in the trace (0 is the prefill, so sampled rounds start at 1)
    position: int  # sequence position of the first draft
    context: tuple[int, ...]  # every token before the round (prompt and earlier output)
    k: int  # drafts proposed
    drafts: tuple[SampledDraft, ...]  # judged drafts, in order; the last is the rejected one if any
    top: tuple[tuple[int, float, float, float], ...]  # (token, p, q, next-token mass) for the top tokens of
    # where the round's last token came from: the residual norm(max(0, p - q)) after a rejection,
    # else the target's p after the last draft (the bonus); q is 0 for the bonus
    token: int  # the round's last token: resampled from the residual, or the bonus drawn from p
    emitted: tuple[int, ...]  # what the round adds: kept drafts, then `token`
    temperature: float  # the sampling temperature (p and q are at this temperature)

    @property
    def accepted(self) -> int:
        return sum(d.kept for d in self.drafts)

    @property
    def rejected(self) -> bool:
        return bool(self.drafts) and not self.drafts[-1].kept


def _sampled_round(index: int, context: list[int], drafted: list[int], qs: list[torch.Tensor],
                   p: torch.Tensor, draws: list[float], accepted: int, token: int,
                   emitted: list[int], temperature: float, top: int = 8) -> SampledRound:
    """Package one round of `speculate` for the stepper. p: (k + 1, vocab); qs: k × (vocab,)."""
    drafts = tuple(
        SampledDraft(x, float(qs[j][x]), float(p[j, x]), rules.accept_probability(float(p[j, x]), float(qs[j][x])), u)
        for j, (x, u) in enumerate(zip(drafted, draws))
    )
    if accepted < len(drafted):  # the last token was resampled from the residual
        q_last = qs[accepted]
        source = rules.residual(p[accepted], q_last)
    else:  # every draft kept: the bonus comes from the target's own p
        q_last = torch.zeros_like(p[accepted])
        source = p[accepted]
    mass, ids = source.topk(min(top, source.numel()))
    rows = [(int(t), float(p[accepted, t]), float(q_last[t]), float(m)) for m, t in zip(mass, ids)]
    if token not in {r[0] for r in rows}:  # the token actually drawn is always shown
        rows.append((token, float(p[accepted, token]), float(q_last[token]), float(source[token])))
    return SampledRound(index, len(context), tuple(context), len(drafted), drafts, tuple(rows), token,
                        tuple(emitted), temperature)


@functools.lru_cache(maxsize=None)
def _cache_name(cls: type) -> str:
    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"


def cache_kwargs(model: torch.nn.Module, cache: Any) -> dict[str, Any]:
    """The K/V cache as `model.forward` names it: `cache` from transformers 5.24 on (where
    `past_key_values` still works but warns on every call), `past_key_values` before. The
    signature is read once per model class, not on every drafting step."""
    return {_cache_name(type(model)): cache}


def draft_step(drafter: torch.nn.Module, embed: torch.nn.Module, token: torch.Tensor, hidden: torch.Tensor,
               shared_kv: dict[str, tuple[torch.Tensor, torch.Tensor]], position: int, **kw: Any) -> Any:
    """One forward of Gemma 4's assistant, for B rows: the draft step every MTP caller shares.

    token: (B, 1) the last seen token; hidden: (B, 1, target hidden) the target's last hidden state
    before it (or the previous step's `last_hidden_state`); shared_kv: the target's K/V, {layer type:
    (K, V)}, each (B, KV heads, tokens, head dim); position: the last seen token's position, the
    same for every step of a round; embed: the target's input embedding; kw (output_attentions=True,
    ...) goes to the drafter. Returns the drafter's output: logits (B, 1, vocab) and
    last_hidden_state (B, 1, target hidden), post_projection's output, the next step's "hidden state".
    Callers: `MTPDrafter.propose`, `batching`, `diagram.measure_round`, `media.drafter_attention`.
    """
    b = token.shape[0]
    return drafter(
        inputs_embeds=torch.cat([embed(token), hidden], dim=-1),  # (B, 1, 2 × target hidden)
        position_ids=torch.full((b, 1), position, device=token.device),  # constant within the round
        shared_kv_states=shared_kv,
        attention_mask=torch.ones(b, position + 1, dtype=torch.long, device=token.device),
        **kw,
    )


def verify_step(target: torch.nn.Module, cache: Any, tokens: torch.Tensor, start: int,
                mask: dict[str, torch.Tensor] | None = None, positions: torch.Tensor | None = None,
                **extra: Any) -> Any:
    """One target forward over tokens (B, n) at positions start … start + n - 1, appending to `cache`.

    In a round the tokens are the last kept token and the k drafts (n = k + 1), so one forward
    judges every draft; the prefill is the same call over the prompt, a plain decoding step over one
    token. A tree (`labkit.tree`) brings its own `mask` ({layer type: (B, 1, n, keys)}) and
    `positions` (B, n) instead of the causal ones. extra (pixel_values, ...) goes to the target.
    Returns its output: logits (B, n, vocab), hidden_states[-1] (B, n, hidden), which the MTP
    drafter reads, and shared_kv_states, the K/V it attends to. Callers: `speculative_loop`,
    `batching`, `tree.tree_loop`.
    """
    b, n = tokens.shape
    return target(
        input_ids=tokens,
        **cache_kwargs(target, cache),
        attention_mask=torch.ones(b, start + n, dtype=torch.long, device=tokens.device) if mask is None else mask,
        position_ids=torch.arange(start, start + n, device=tokens.device).expand(b, n) if positions is None
        else positions,
        use_cache=True,
        output_hidden_states=True,  # the drafter reads the last one
        return_shared_kv_states=True,  # ... and the target's K/V
        **extra,
    )


def accept(drafted: list[int], qs: list[torch.Tensor], logits: torch.Tensor, settings: Decoding,
           generator: torch.Generator | None) -> tuple[int, int, torch.Tensor | None, list[float]]:
    """The verdict on a round's drafts: (accepted, the target's own next token, p, the uniform draws).

    logits: (k + 1, vocab), the target's at every draft and one past them; qs: k × (vocab,), where
    each draft came from. Greedy keeps drafts while they equal the target's argmax (p is None);
    sampling keeps draft x with probability min(1, p(x)/q(x)), p (k + 1, vocab) the warped target,
    token by token, or by block verification (`settings.verify`, `11_beyond_one_chain`).
    """
    d = torch.tensor(drafted, dtype=torch.long, device=logits.device)
    if settings.greedy:  # block verification keeps the same drafts at temperature 0
        return (*rules.greedy_accept(d, logits), None, [])
    p = rules.warp(logits, settings.temperature, settings.top_p)  # (k + 1, vocab)
    draws: list[float] = []
    rule = rules.block_verify if settings.verify == "block" else rules.rejection_sample
    accepted, token = rule(d, torch.stack(qs) if qs else p[:0], p, generator, draws)
    return accepted, token, p, draws


class MTPDrafter:
    """Gemma 4's assistant: drafts from the target's hidden state and K/V, at a constant position."""

    name = "mtp"

    def __init__(self, target: torch.nn.Module, drafter: torch.nn.Module):
        self.embed = target.get_input_embeddings()  # scaled by sqrt(hidden), as the target does
        self.drafter = drafter

    @torch.no_grad()
    def propose(self, ctx: Context, k: int, pick: Pick) -> tuple[list[int], list[torch.Tensor]]:
        token, hidden = ctx.ids[-1], ctx.hidden
        tokens, qs = [], []
        for _ in range(k):
            out = draft_step(self.drafter, self.embed, torch.tensor([[token]], device=hidden.device), hidden,
                             ctx.shared_kv, len(ctx.ids) - 1)
            token, q = pick(out.logits[0, -1])
            hidden = out.last_hidden_state  # post_projection, fed back as the next "hidden state"
            tokens.append(token)
            qs.append(q)
            if getattr(pick, "done", False):  # a confidence stop (strategies.StopBelow) ends the round
                break
        return tokens, qs

    @torch.no_grad()
    def propose_tree(self, ctx: Context, k: int, width: int, pick: Pick,
                     sampled: bool = False) -> tuple[list[list[int]], list[list[torch.Tensor]]]:
        """`width` branches of up to k drafts: the first step's top `width` tokens (point masses),
        or `width` independent draws from q when `sampled`, then each branch drafted on as one row of
        a batch (B = width rows share the target's K/V). Returns the branches' tokens and the
        distributions each draft came from (`rules.multi_draft_sample` judges the first position,
        `labkit.tree`)."""
        token, hidden, position = ctx.ids[-1], ctx.hidden, len(ctx.ids) - 1
        out = draft_step(self.drafter, self.embed, torch.tensor([[token]], device=hidden.device), hidden,
                         ctx.shared_kv, position)
        logits = out.logits[0, -1]
        if sampled:  # a confidence stop reads this step too
            firsts = [pick(logits) for _ in range(width)]
        else:
            pick(logits)  # a confidence stop reads the first step too
            firsts = [(t, rules.point_mass(t, logits.shape[-1], logits.device)) for t in logits.topk(width).indices.tolist()]
        tokens = [[t] for t, _ in firsts]
        qs = [[q] for _, q in firsts]
        kv = {name: (key.expand(width, *key.shape[1:]), value.expand(width, *value.shape[1:]))
              for name, (key, value) in ctx.shared_kv.items()}
        hidden = out.last_hidden_state.expand(width, -1, -1)  # (width, 1, hidden)
        done = getattr(pick, "done", False)
        for _ in range(k - 1):
            if done:  # a confidence stop: every branch's last draft was below the threshold
                break
            out = draft_step(self.drafter, self.embed, torch.tensor([[b[-1]] for b in tokens], device=hidden.device),
                             hidden, kv, position)
            hidden, done = out.last_hidden_state, True
            for b in range(width):
                t, q = pick(out.logits[b, -1])
                done = done and getattr(pick, "done", False)
                tokens[b].append(t)
                qs[b].append(q)
        return tokens, qs


class IndependentDrafter:
    """A classic drafter: any small causal LM over the same vocabulary, with its own KV cache."""

    name = "independent"

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.cache: DynamicCache | None = None
        self.seen: list[int] = []  # tokens whose K/V are in self.cache

    @torch.no_grad()
    def propose(self, ctx: Context, k: int, pick: Pick) -> tuple[list[int], list[torch.Tensor]]:
        device = next(self.model.parameters()).device
        if self.cache is None or ctx.ids[: len(self.seen)] != self.seen:
            keep = 0
            while keep < min(len(self.seen), len(ctx.ids)) and self.seen[keep] == ctx.ids[keep]:
                keep += 1
            if self.cache is None or keep == 0:
                self.cache, self.seen = DynamicCache(config=self.model.config), []
                self.cache.activate_past_recording()
                keep = 0
            else:  # roll back the rejected drafts
                self.cache.crop(keep - len(self.seen))
                self.seen = self.seen[:keep]
        feed = ctx.ids[len(self.seen) :]
        tokens, qs = [], []
        for _ in range(k):
            out = self.model(
                input_ids=torch.tensor([feed], device=device), **cache_kwargs(self.model, self.cache), use_cache=True
            )
            self.seen += feed
            token, q = pick(out.logits[0, -1])
            tokens.append(token)
            qs.append(q)
            feed = [token]
            if getattr(pick, "done", False):  # a confidence stop (strategies.StopBelow)
                break
        return tokens, qs


class PromptLookupDrafter:
    """Prompt lookup: find the last n-gram earlier in the text and propose what followed it.

    As transformers' `prompt_lookup_num_tokens` does: the longest n-gram up to `max_ngram` that
    occurs earlier, its first (leftmost) occurrence, and up to k tokens after it. Its drafts are
    deterministic, so they are verified as point masses (exact under sampling).
    """

    name = "prompt-lookup"

    def __init__(self, vocab_size: int, max_ngram: int = 2):
        self.vocab_size, self.max_ngram = vocab_size, max_ngram

    def propose(self, ctx: Context, k: int, pick: Pick) -> tuple[list[int], list[torch.Tensor]]:
        ids = ctx.ids
        for n in range(min(self.max_ngram, len(ids) - 1), 0, -1):
            tail = ids[-n:]
            for start in range(len(ids) - n):  # leftmost match first; the tail itself has nothing after it
                if ids[start : start + n] == tail:
                    tokens = ids[start + n : start + n + k]
                    device = ctx.hidden.device if ctx.hidden is not None else "cpu"
                    return tokens, [rules.point_mass(t, self.vocab_size, device) for t in tokens]
        return [], []


class NoDrafter:
    """No drafts: the target alone, on the same loop as the drafters it is compared with (`08`)."""

    name = "none"

    def propose(self, ctx: Context, k: int, pick: Pick) -> tuple[list[int], list[torch.Tensor]]:
        return [], []


def _picker(settings: Decoding, generator: torch.Generator | None) -> Pick:
    """Greedy drafts are the argmax; sampled drafts are drawn from q, as the theory requires; argmax
    drafts under sampling (`drafts="argmax"`) come from the point mass on the argmax, which is how
    they are verified. `stop_below` wraps the pick in a confidence stop (`strategies.StopBelow`)."""

    def pick(logits: torch.Tensor) -> tuple[int, torch.Tensor]:
        if settings.greedy:
            return int(logits.argmax()), logits.float().softmax(-1)
        if settings.drafts == "argmax":
            token = int(logits.argmax())
            return token, rules.point_mass(token, logits.shape[-1], logits.device)
        q = rules.warp(logits, settings.temperature, settings.top_p)
        return int(torch.multinomial(q, 1, generator=generator)), q

    return strategies.StopBelow(pick, settings.stop_below) if settings.stop_below > 0 else pick


def trim_kv(kv: dict, stale: int, mode: str, length: int) -> dict:
    """Drop the K/V of rejected drafts before the next round's drafter sees them.

    kv: {layer type: (K, V)}, each (B, KV heads, tokens, head dim), from `verify_step`.
    exact: the last `stale` entries belong to rejected drafts; cut them from every layer type.
    transformers: slice by absolute length like 5.22 does, which keeps one rejected entry in the
    full layer and all of them in a sliding layer once past its window.
    """
    if mode == "transformers":
        return {name: (k[:, :, :length], v[:, :, :length]) for name, (k, v) in kv.items()}
    if stale == 0:
        return kv
    return {name: (k[:, :, :-stale], v[:, :, :-stale]) for name, (k, v) in kv.items()}


def _until_eos(tokens: list[int], eos: Collection[int]) -> list[int]:
    """The tokens up to and including the first EOS: generation stops there, as `generate` does."""
    for i, t in enumerate(tokens):
        if t in eos:
            return tokens[: i + 1]
    return tokens


@dataclass(frozen=True)
class Step:
    """One round of `speculative_loop`, as it happened; `speculate` turns it into a `Round`."""

    position: int  # where the first draft went (= tokens before the round)
    context: list[int]  # every token before the round
    drafted: list[int]  # (k,) the drafts
    qs: list[torch.Tensor]  # k × (vocab,): the distribution each draft came from
    logits: torch.Tensor  # (k + 1, vocab) the target's, float32, at every draft and one past them
    p: torch.Tensor | None  # (k + 1, vocab) the target's warped distribution when sampling, else None
    draws: list[float]  # the uniform draws the sampling rule made
    accepted: int  # drafts kept (a prefix of `drafted`)
    token: int  # the target's own token: the bonus, or the correction after a rejection
    emitted: list[int]  # what the round adds: kept drafts, then `token` (cut at EOS and max length)
    candidates: tuple[int, ...] = ()  # a tree's first drafts, one per branch (`labkit.tree`); () for a chain
    view: Context | None = None  # what the drafter drafted from (block verification's exact check reads it)


@torch.no_grad()
def speculative_loop(
    target: torch.nn.Module,
    drafter: MTPDrafter | IndependentDrafter | PromptLookupDrafter | NoDrafter | Any,
    input_ids: torch.Tensor,
    settings: Decoding = Decoding(),
    eos: Collection[int] = (),
    **prefill_inputs: Any,
) -> Iterator[Step]:
    """Speculative decoding itself: draft → verify → accept, one `Step` per round, round 0 the prefill.

    drafter: anything with `propose(ctx, k, pick)`; input_ids: (1, prompt_len); eos: the token ids
    that end the generation. `speculate` runs this loop and records what it yields as a `Trace`.
    """
    device, prompt = input_ids.device, input_ids[0].tolist()
    generator = torch.Generator(device=device).manual_seed(settings.seed) if settings.seed is not None else None
    pick = _picker(settings, generator)
    cache = DynamicCache(config=target.config.get_text_config())
    cache.activate_past_recording()  # lets crop() roll sliding-window layers back

    # Round 0, the prefill: the target reads the prompt and chooses one token on its own.
    out = verify_step(target, cache, torch.tensor([prompt], device=device), 0, **prefill_inputs)
    logits = out.logits[0, -1:].float()  # (1, vocab)
    _, token, p, draws = accept([], [], logits, settings, generator)
    ctx = Context(prompt + [token], out.hidden_states[-1][:, -1:], out.shared_kv_states)
    yield Step(len(prompt), prompt, [], [], logits, p, draws, 0, token, [token])

    k = settings.k
    while len(ctx.ids) - len(prompt) < settings.max_new_tokens and ctx.ids[-1] not in eos:
        position = len(ctx.ids)  # where the first draft goes
        room = settings.max_new_tokens - (position - len(prompt))  # tokens still wanted, the bonus included
        k_round = min(k, room - 1)
        drafted, qs = drafter.propose(ctx, k_round, pick) if k_round > 0 else ([], [])  # lookup may find fewer
        # verify: one target forward over the last kept token and every draft, (1, k + 1) tokens
        out = verify_step(target, cache, torch.tensor([[ctx.ids[-1], *drafted]], device=device), position - 1)
        logits = out.logits[0].float()  # (k + 1, vocab)
        accepted, token, p, draws = accept(drafted, qs, logits, settings, generator)
        emitted = _until_eos(drafted[:accepted] + [token], eos)[:room]
        stale = len(drafted) - accepted
        cache.crop(-stale)  # forget the rejected drafts' K/V
        step = Step(position, ctx.ids, drafted, qs, logits, p, draws, accepted, token, emitted, view=ctx)
        kv = trim_kv(out.shared_kv_states, stale, settings.kv, position + accepted + 1)
        ctx = Context(ctx.ids + emitted, out.hidden_states[-1][:, accepted : accepted + 1], kv)
        if settings.schedule == "heuristic" and drafted:
            k = k + 2 if accepted == len(drafted) else max(1, k - 1)
        yield step


class _Stopwatch:
    """The recorder's clock, outside the loop: forward hooks note when the target's last forward
    started and ended. On CUDA every reading waits for the GPU first."""

    def __init__(self, target: torch.nn.Module, device: torch.device):
        self.sync = device.type == "cuda"
        self.forward = (0.0, 0.0)  # (start, end) of the target's last forward
        self.hooks = [target.register_forward_pre_hook(lambda *_: self._mark(0)),
                      target.register_forward_hook(lambda *_: self._mark(1))]

    def now(self) -> float:
        if self.sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _mark(self, end: int) -> None:
        self.forward = (self.forward[0], self.now()) if end else (self.now(), 0.0)

    def close(self) -> None:
        for hook in self.hooks:
            hook.remove()


def _round(index: int, step: Step, t_draft: float, t_verify: float, t_rest: float,
           settings: Decoding = Decoding(), tv: float | None = None) -> Round:
    """A `Step` as a trace keeps it: q(x), p(x) and the target's choices, not (k, vocab) tensors."""
    probs = step.logits.softmax(-1) if step.p is None else step.p  # (k + 1, vocab)
    # the prefill's top token is read off the distribution its token was drawn from, as it always was
    top = step.p if index == 0 and step.p is not None else step.logits
    if step.p is not None and step.drafted and settings.verify == "token":  # per-round TV (03 and 04 plot it):
        # drafted from q and verified against q, so exact (tv ≈ 0 by construction; tests check it, rules
        # explains it). A tree's first position judges its branches' first drafts one after another;
        # block verification's first token depends on drafts it never drew: `tv` comes from
        # strategies.block_round_tv when asked for (speculate's check_block), else stays None.
        tv = strategies.first_position_tv(step.p[0], step.qs[0], step.candidates, settings.drafts == "sampled")
    return Round(
        index=index,
        position=step.position,
        k=len(step.drafted),
        drafted=tuple(step.drafted),
        draft_probs=tuple(float(step.qs[j][t]) for j, t in enumerate(step.drafted)),
        target_probs=tuple(float(probs[j, t]) for j, t in enumerate(step.drafted)),
        target_top=tuple(top.argmax(-1).tolist()),
        accepted=step.accepted,
        emitted=tuple(step.emitted),
        t_draft=t_draft,
        t_verify=t_verify,
        t_rest=t_rest,
        tv=tv,
    )


@torch.no_grad()
def speculate(
    target: torch.nn.Module,
    drafter: torch.nn.Module | MTPDrafter | IndependentDrafter | PromptLookupDrafter | NoDrafter | Any,
    input_ids: torch.Tensor,
    settings: Decoding = Decoding(),
    *,
    eos_token_id: int | list[int] | None = None,
    pair: str = "",
    record: list[SampledRound] | None = None,
    check_block: bool = False,
    **prefill_inputs: Any,
) -> Trace:
    """Speculative decoding in the open. input_ids: (1, prompt_len). Returns a `Trace`.

    Runs `speculative_loop` (the loop to read) and records it: each round timed (drafting, the
    target's forward, the rest) and summarized as a `Round`. settings: k, max_new_tokens,
    temperature, top_p, schedule, kv and seed (`Decoding`; the glass box is always lossless).
    `prefill_inputs` (pixel_values, ...) go to the target's prefill only: images and audio reach
    the drafter through the target's K/V, never directly. `record`, if given, receives a
    `SampledRound` for every sampled round with drafts (see `sampled_rounds`). `check_block`: under
    block verification, every round of two drafts gets its exact TV (`strategies.block_round_tv`,
    seconds a round, kept off the clock).
    """
    check_model_inputs(prefill_inputs)
    strategies.check(settings)
    if isinstance(drafter, torch.nn.Module):  # an assistant model; anything else proposes drafts itself
        drafter = MTPDrafter(target, drafter)
    if check_block and not isinstance(drafter, MTPDrafter):
        raise BadInputError("check_block checks the Gemma 4 assistant's rounds: pass the assistant model")
    loop = speculative_loop
    if settings.tree > 1:  # a tree is another verify shape around the same pieces (chapter 11)
        from labkit.tree import tree_loop  # tree builds on this module

        loop = tree_loop
    eos = {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id or ())
    clock, rounds, unclocked = _Stopwatch(target, input_ids.device), [], 0.0
    try:
        t_start = t0 = clock.now()
        for step in loop(target, drafter, input_ids, settings, eos, **prefill_inputs):
            (t1, t2), t3 = clock.forward, clock.now()  # the round's verify forward ran from t1 to t2
            tv = None
            if check_block and settings.verify == "block" and step.p is not None and len(step.drafted) == 2:
                # off the clock: t1-t3 are read, and the next round's verify forward re-marks clock.forward
                tv, drift = strategies.block_round_tv(target, drafter.drafter, step, settings, **prefill_inputs)
                if drift > 1e-4:
                    raise RuntimeError(f"block_round_tv re-read round {len(rounds)} {drift:.1e} away from the one that ran")
                unclocked += clock.now() - t3
            rounds.append(_round(len(rounds), step, t1 - t0 if rounds else 0.0, t2 - t1, t3 - t2, settings, tv))
            if record is not None and step.p is not None and step.drafted:
                record.append(_sampled_round(len(rounds) - 1, step.context, step.drafted, step.qs, step.p,
                                             step.draws, step.accepted, step.token, step.emitted,
                                             settings.temperature))
            t0 = clock.now()
        wall = clock.now() - t_start - unclocked
    finally:
        clock.close()
    return Trace(path="glassbox", drafter=drafter.name, pair=pair, prompt_ids=tuple(input_ids[0].tolist()),
                 rounds=tuple(rounds), settings=replace(settings, lossless=True), wall=wall)


def sampled_rounds(
    target: torch.nn.Module,
    drafter: torch.nn.Module | MTPDrafter,
    input_ids: torch.Tensor,
    settings: Decoding,
    *,
    pair: str = "",
    **kw: Any,
) -> tuple[Trace, list[SampledRound]]:
    """Run `speculate` with sampling and keep every round draft by draft (`03_verify_and_accept`).

    Returns the ordinary trace and one `SampledRound` per round with drafts, holding the u draws
    the loop really made: the sampled round stepper reads them, and replays nothing.
    """
    if settings.greedy:
        raise ValueError("sampled_rounds needs temperature > 0: greedy rounds draw no u")
    if settings.verify != "token" or settings.tree > 1:  # its records read u < min(1, p/q), draft by draft
        raise ValueError("sampled_rounds records 03's token-wise chain: verify='token', tree=1")
    record: list[SampledRound] = []
    trace = speculate(target, drafter, input_ids, settings, pair=pair, record=record, **kw)
    return trace, record

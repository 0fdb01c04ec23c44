"""The glass-box speculative loop: draft → verify → accept, short enough to read in one sitting.

`speculate` does what transformers' assisted `generate` does with a Gemma 4 MTP drafter, in plain
sight, and records the same `Trace`. Tests prove it: greedy output equals the target's own greedy
output and transformers' assisted output; sampled output is distributed like the target's.
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

Left out: batches, tree drafts, static caches and CUDA graphs (so it is slower than a server).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from transformers import DynamicCache

from labkit import rules
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


class MTPDrafter:
    """Gemma 4's assistant: drafts from the target's hidden state and K/V, at a constant position."""

    name = "mtp"

    def __init__(self, target: torch.nn.Module, drafter: torch.nn.Module):
        self.embed = target.get_input_embeddings()  # scaled by sqrt(hidden), as the target does
        self.drafter = drafter

    @torch.no_grad()
    def propose(self, ctx: Context, k: int, pick: Pick) -> tuple[list[int], list[torch.Tensor]]:
        position = torch.tensor([[len(ctx.ids) - 1]], device=ctx.hidden.device)
        mask = torch.ones(1, len(ctx.ids), dtype=torch.long, device=ctx.hidden.device)
        token, hidden = ctx.ids[-1], ctx.hidden
        tokens, qs = [], []
        for _ in range(k):
            emb = self.embed(torch.tensor([[token]], device=hidden.device))
            out = self.drafter(
                inputs_embeds=torch.cat([emb, hidden], dim=-1),  # (1, 1, 2 * target hidden)
                position_ids=position,  # constant within the round
                shared_kv_states=ctx.shared_kv,
                attention_mask=mask,
            )
            token, q = pick(out.logits[0, -1])
            hidden = out.last_hidden_state  # post_projection, fed back as the next "hidden state"
            tokens.append(token)
            qs.append(q)
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


def _picker(temperature: float, top_p: float, generator: torch.Generator | None) -> Pick:
    """Greedy drafts are the argmax; sampled drafts are drawn from q, as the theory requires."""

    def pick(logits: torch.Tensor) -> tuple[int, torch.Tensor]:
        if temperature == 0.0:
            return int(logits.argmax()), logits.float().softmax(-1)
        q = rules.warp(logits, temperature, top_p)
        return int(torch.multinomial(q, 1, generator=generator)), q

    return pick


def _trim_kv(kv: dict, stale: int, mode: str, length: int) -> dict:
    """Drop the K/V of rejected drafts before the next round's drafter sees them.

    exact: the last `stale` entries belong to rejected drafts; cut them from every layer type.
    transformers: slice by absolute length like 5.22 does, which keeps one rejected entry in the
    full layer and all of them in a sliding layer once past its window.
    """
    if mode == "transformers":
        return {name: (k[:, :, :length], v[:, :, :length]) for name, (k, v) in kv.items()}
    if stale == 0:
        return kv
    return {name: (k[:, :, :-stale], v[:, :, :-stale]) for name, (k, v) in kv.items()}


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
    **prefill_inputs: Any,
) -> Trace:
    """Speculative decoding in the open. input_ids: (1, prompt_len). Returns a `Trace`.

    settings: k, max_new_tokens, temperature, top_p, schedule, kv and seed (`Decoding`; the
    glass box is always lossless). `prefill_inputs` (pixel_values, ...) go to the target's prefill
    only: images and audio reach the drafter through the target's K/V, never directly. `record`,
    if given, receives a `SampledRound` for every sampled round with drafts (see `sampled_rounds`).
    """
    check_model_inputs(prefill_inputs)
    k, max_new_tokens, temperature, top_p = settings.k, settings.max_new_tokens, settings.temperature, settings.top_p
    schedule, kv, seed = settings.schedule, settings.kv, settings.seed
    if isinstance(drafter, torch.nn.Module):  # an assistant model; anything else proposes drafts itself
        drafter = MTPDrafter(target, drafter)
    device = input_ids.device
    sync = device.type == "cuda"
    eos = {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id or ())
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    pick = _picker(temperature, top_p, generator)

    def now() -> float:
        if sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    cache = DynamicCache(config=target.config.get_text_config())
    cache.activate_past_recording()  # lets crop() roll sliding-window layers back

    def forward(tokens: list[int], start: int, **extra: Any) -> Any:
        ids = torch.tensor([tokens], device=device)
        return target(
            input_ids=ids,
            **cache_kwargs(target, cache),
            attention_mask=torch.ones(1, start + len(tokens), dtype=torch.long, device=device),
            position_ids=torch.arange(start, start + len(tokens), device=device)[None],
            use_cache=True,
            output_hidden_states=True,  # the drafter reads the last one
            return_shared_kv_states=True,  # ... and the target's K/V
            **extra,
        )

    def target_dist(logits: torch.Tensor) -> torch.Tensor:
        return logits if temperature == 0.0 else rules.warp(logits, temperature, top_p)

    # Round 0, the prefill: the target reads the prompt and produces one token on its own.
    t_start = now()
    prompt = input_ids[0].tolist()
    out = forward(prompt, 0, **prefill_inputs)
    t_verify = now() - t_start
    p0 = target_dist(out.logits[0, -1].float())
    first = int(p0.argmax()) if temperature == 0.0 else int(torch.multinomial(p0, 1, generator=generator))
    ctx = Context(prompt + [first], out.hidden_states[-1][:, -1:], out.shared_kv_states)
    t_end = now()
    rounds = [
        Round(0, len(prompt), 0, (), (), (), (int(p0.argmax()),), 0, (first,), 0.0, t_verify,
              t_end - t_start - t_verify)
    ]

    k_now = k
    while len(ctx.ids) - len(prompt) < max_new_tokens and ctx.ids[-1] not in eos:
        t0 = now()
        position = len(ctx.ids)  # where the first draft goes
        k_round = min(k_now, max_new_tokens - (len(ctx.ids) - len(prompt)) - 1)
        drafted, qs = drafter.propose(ctx, k_round, pick) if k_round > 0 else ([], [])
        k_round = len(drafted)  # prompt lookup may find fewer
        t1 = now()
        out = forward([ctx.ids[-1]] + drafted, position - 1)  # verify all drafts in one pass
        t2 = now()
        logits = out.logits[0].float()  # (k + 1, vocab)
        d = torch.tensor(drafted, dtype=torch.long, device=device)
        if temperature == 0.0:
            accepted, nxt = rules.greedy_accept(d, logits)
            p = None
        else:
            p = rules.warp(logits, temperature, top_p)  # (k + 1, vocab)
            q = torch.stack(qs) if qs else p[:0]
            draws: list[float] = []
            accepted, nxt = rules.rejection_sample(d, q, p, generator, draws)
        emitted = drafted[:accepted] + [nxt]
        for i, t in enumerate(emitted):  # stop at EOS like generate does
            if t in eos:
                emitted = emitted[: i + 1]
                break
        emitted = emitted[: max_new_tokens - (len(ctx.ids) - len(prompt))]
        if record is not None and p is not None and drafted:
            record.append(_sampled_round(len(rounds), ctx.ids, drafted, qs, p, draws, accepted, nxt, emitted,
                                         temperature))
        cache.crop(-(k_round - accepted))  # forget the rejected drafts' K/V
        kept = _trim_kv(out.shared_kv_states, k_round - accepted, kv, position + accepted + 1)
        ctx = Context(ctx.ids + emitted, out.hidden_states[-1][:, accepted : accepted + 1], kept)
        if schedule == "heuristic" and k_round > 0:
            k_now = k_now + 2 if accepted == k_round else max(1, k_now - 1)
        t3 = now()
        all_p = logits.softmax(-1) if p is None else p
        tv = None
        if p is not None and drafted:  # drafted from q and verified against q: exact, tv ≈ 0
            tv = rules.tv_distance(rules.emitted_distribution(p[0], qs[0], qs[0]), p[0])
        rounds.append(
            Round(
                index=len(rounds),
                position=position,
                k=k_round,
                drafted=tuple(drafted),
                draft_probs=tuple(float(qs[j][t]) for j, t in enumerate(drafted)),
                target_probs=tuple(float(all_p[j, t]) for j, t in enumerate(drafted)),
                target_top=tuple(logits.argmax(-1).tolist()),
                accepted=accepted,
                emitted=tuple(emitted),
                t_draft=t1 - t0,
                t_verify=t2 - t1,
                t_rest=t3 - t2,
                tv=tv,
            )
        )
    return Trace(
        path="glassbox",
        drafter=drafter.name,
        pair=pair,
        prompt_ids=tuple(prompt),
        rounds=tuple(rounds),
        settings=replace(settings, lossless=True),
        wall=now() - t_start,
    )



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
    record: list[SampledRound] = []
    trace = speculate(target, drafter, input_ids, settings, pair=pair, record=record, **kw)
    return trace, record

"""Watch transformers' own assisted `generate` round by round, without changing what it does.

`trace_generate` runs `target.generate(..., assistant_model=drafter)` unchanged and listens through
supported hooks only: PyTorch forward hooks on the two models (timings, the drafter's logits) and a
pass-through `LogitsProcessor` appended to `generate`'s list (the target's final, warped scores).
Nothing is monkeypatched; the tokens are the ones transformers emits (a test checks traced ==
untraced). Introduced in `00_tour`.

The lossless hook is the one intervention (`settings.lossless`, on by default: `labkit.run` uses it
for every sampled run unless told `lossless=False`): transformers' MTP candidate generator drafts by argmax but hands
softmax(drafter logits) to the verifier, so with sampling the output is not distributed like the
target's. A forward hook on the drafter replaces its logits with a point mass on the drafted token,
which makes the verifier's rule exact (`03_verify_and_accept`).

Left out: batches (assisted generation is batch size 1), beam search, streaming.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from labkit import rules
from labkit.trace import Decoding, Round, Trace, check_model_inputs


def generation_config(
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    eos_token_id: int | list[int] | None = None,
    pad_token_id: int | None = None,
) -> GenerationConfig:
    """The one GenerationConfig every labkit path uses: greedy at temperature 0, else sampling.

    top_k and top_p are always set: a setting left unset is filled in from the checkpoint's own
    generation_config, and Gemma 4's ship sampling defaults (top_k 64, top_p 0.95). Unset, they
    would cut transformers' distribution but not the glass box's (the lab compares every path
    against the same target distribution: temperature, then top-p), and warn on every greedy run.
    """
    sampling = temperature > 0.0
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sampling,
        temperature=temperature if sampling else 1.0,
        top_p=top_p if sampling else 1.0,
        top_k=0 if sampling else 50,  # 50: GenerationConfig's own default, the one greedy does not warn about
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )


@contextmanager
def drafter_settings(drafter: torch.nn.Module, k: int, schedule: str) -> Iterator[None]:
    """Set how many tokens the drafter proposes per round, and restore the checkpoint's value.

    transformers reads both from the drafter's own generation_config, not from `generate`'s.
    """
    cfg = drafter.generation_config
    saved = (cfg.num_assistant_tokens, cfg.num_assistant_tokens_schedule)
    cfg.num_assistant_tokens, cfg.num_assistant_tokens_schedule = k, schedule
    try:
        yield
    finally:
        cfg.num_assistant_tokens, cfg.num_assistant_tokens_schedule = saved


def _point_mass_logits(module: Any, args: Any, output: Any) -> Any:
    logits = output.logits
    point = torch.full_like(logits, float("-inf"))
    point.scatter_(-1, logits.argmax(-1, keepdim=True), 0.0)
    output.logits = point
    return output


@contextmanager
def lossless(drafter: torch.nn.Module) -> Iterator[None]:
    """Make transformers' MTP sampling path exact: verify argmax drafts as the point masses they are.

    With q = one-hot(draft), the rule keeps draft x with probability p(x) and otherwise samples
    from p without x, renormalised: exactly p. Scoped to the `with` block; greedy is unaffected.
    """
    handle = drafter.register_forward_hook(_point_mass_logits)
    try:
        yield
    finally:
        handle.remove()


@dataclass
class _Open:
    """The round being recorded."""

    start: float
    drafted: list[int] = field(default_factory=list)
    draft_probs: list[float] = field(default_factory=list)
    q_first: torch.Tensor | None = None  # (vocab,) the verifier's q at the first draft
    t_draft: float = 0.0
    t_verify: float = 0.0
    position: int = -1
    target_probs: list[float] = field(default_factory=list)
    target_top: list[int] = field(default_factory=list)
    tv: float | None = None
    end: float = 0.0


class _Recorder(LogitsProcessor):
    """Last in generate's processor list: sees the target's final scores, returns them unchanged."""

    def __init__(self, tracer: _Tracer):
        self.tracer = tracer

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.tracer.on_scores(input_ids.shape[1], scores)
        return scores


class _Tracer:
    def __init__(self, sampling: bool, lossless: bool, sync: bool):
        self.sampling, self.lossless, self.sync = sampling, lossless, sync
        self.rounds: list[_Open] = []
        self.current: _Open | None = None
        self.verified = False  # the open round already had its target forward
        self._t0 = 0.0

    def now(self) -> float:
        if self.sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _begin(self, t: float) -> _Open:
        if self.current is None or self.verified:
            if self.current is not None:
                self.current.end = t
            self.current = _Open(start=t if self.rounds else self._t0)
            self.rounds.append(self.current)
            self.verified = False
        return self.current

    # forward hooks -----------------------------------------------------------------------------
    def drafter_pre(self, module: Any, args: Any) -> None:
        self._begin(self.now())
        self._t0 = self.now()

    def drafter_post(self, module: Any, args: Any, output: Any) -> None:
        t = self.now()
        r = self.current
        r.t_draft += t - self._t0
        logits = output.logits[0, -1].float()  # (vocab,)
        q = logits.softmax(-1)
        token = int(logits.argmax())
        r.drafted.append(token)
        r.draft_probs.append(float(q[token]))
        if self.sampling and r.q_first is None:
            r.q_first = rules.point_mass(token, q.numel(), q.device) if self.lossless else q

    def target_pre(self, module: Any, args: Any, kwargs: Any) -> None:
        self._begin(self.now())
        self._t0 = self.now()

    def target_post(self, module: Any, args: Any, kwargs: Any, output: Any) -> None:
        self.current.t_verify += self.now() - self._t0
        self.verified = True

    # logits processor --------------------------------------------------------------------------
    def on_scores(self, length: int, scores: torch.Tensor) -> None:
        r = self.current
        i = len(r.target_top)
        if i == 0:
            r.position = length
        row = scores[0].double()  # float64: a lossless round's TV then prints as 0, not float32's 1e-7
        r.target_top.append(int(row.argmax()))
        if i < len(r.drafted) or (self.sampling and i == 0):
            p = row.softmax(-1)
            if i < len(r.drafted):
                r.target_probs.append(float(p[r.drafted[i]]))
            if self.sampling and i == 0 and r.q_first is not None:
                d = rules.point_mass(r.drafted[0], p.numel(), p.device)
                r.tv = rules.tv_distance(rules.emitted_distribution(p, r.q_first, d), p)


def _close(tracer: _Tracer, output_ids: list[int], end: float) -> tuple[Round, ...]:
    if tracer.current is not None:
        tracer.current.end = end
    rounds = []
    opens = tracer.rounds
    for n, r in enumerate(opens):
        stop = opens[n + 1].position if n + 1 < len(opens) else len(output_ids)
        emitted = tuple(output_ids[r.position : stop])
        accepted = 0
        while accepted < min(len(r.drafted), len(emitted)) and emitted[accepted] == r.drafted[accepted]:
            accepted += 1
        wall = r.end - r.start
        rounds.append(
            Round(
                index=n,
                position=r.position,
                k=len(r.drafted),
                drafted=tuple(r.drafted),
                draft_probs=tuple(r.draft_probs),
                target_probs=tuple(r.target_probs),
                target_top=tuple(r.target_top),
                accepted=accepted,
                emitted=emitted,
                t_draft=r.t_draft,
                t_verify=r.t_verify,
                t_rest=max(0.0, wall - r.t_draft - r.t_verify),
                tv=r.tv,
            )
        )
    return tuple(rounds)


def trace_generate(
    target: torch.nn.Module,
    drafter: torch.nn.Module | None,
    input_ids: torch.Tensor,
    settings: Decoding = Decoding(),
    *,
    pair: str = "",
    eos_token_id: int | list[int] | None = None,
    pad_token_id: int | None = None,
    **model_inputs: Any,
) -> Trace:
    """Run transformers' `generate` (assisted when `drafter` is given) and record every round.

    input_ids: (1, prompt_len). settings: k, max_new_tokens, temperature, top_p, schedule, lossless
    and seed (`Decoding`; kv is the glass box's). `model_inputs` go to `generate` unchanged
    (pixel_values, ...).
    """
    check_model_inputs(model_inputs)
    k, schedule, seed = settings.k, settings.schedule, settings.seed
    sampling = not settings.greedy
    exact = settings.lossless and sampling and drafter is not None  # the lossless hook is needed
    sync = input_ids.device.type == "cuda"
    tracer = _Tracer(sampling, exact, sync)
    cfg = generation_config(
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )
    handles = [
        target.register_forward_pre_hook(tracer.target_pre, with_kwargs=True),
        target.register_forward_hook(tracer.target_post, with_kwargs=True),
    ]
    if drafter is not None:
        # Registered before `lossless`'s hook, so it records the drafter's real distribution.
        handles += [
            drafter.register_forward_pre_hook(tracer.drafter_pre),
            drafter.register_forward_hook(tracer.drafter_post),
        ]
    try:
        with _assisted(drafter, k, schedule, exact):
            if seed is not None:
                torch.manual_seed(seed)
            tracer._t0 = start = tracer.now()
            out = target.generate(
                input_ids,
                generation_config=cfg,
                assistant_model=drafter,
                logits_processor=LogitsProcessorList([_Recorder(tracer)]),
                **model_inputs,
            )
            end = tracer.now()
    finally:
        for h in handles:
            h.remove()
    rounds = _close(tracer, out[0].tolist(), end)
    return Trace(
        path="transformers" if drafter is not None else "plain",
        drafter="mtp" if drafter is not None else "none",
        pair=pair,
        prompt_ids=tuple(input_ids[0].tolist()),
        rounds=rounds,
        settings=replace(settings, k=k if drafter is not None else 0,
                         lossless=settings.lossless or not sampling or drafter is None),
        wall=end - start,
    )


@contextmanager
def _assisted(drafter: torch.nn.Module | None, k: int, schedule: str, exact: bool) -> Iterator[None]:
    if drafter is None:
        yield
        return
    with drafter_settings(drafter, k, schedule):
        if exact:
            with lossless(drafter):
                yield
        else:
            yield


@dataclass(frozen=True)
class KVAudit:
    """What the drafter was shown at the start of one round, against what it should see."""

    position: int  # position of the last seen token (the drafter's constant position)
    full_len: int  # K/V entries handed to the drafter's full-attention layers
    full_stale: int  # ... of which belong to no kept token (a rejected draft)
    sliding_len: int  # K/V entries handed to the sliding layers
    sliding_stale: int  # ... of which belong to no kept token


@torch.no_grad()
def audit_drafter_kv(
    target: torch.nn.Module, drafter: torch.nn.Module, input_ids: torch.Tensor, *, k: int = 4,
    max_new_tokens: int = 64,
) -> list[KVAudit]:
    """Run transformers' greedy assisted generate and check the K/V its drafter reads each round.

    The reference is a fresh target forward over the kept tokens only: every K row the drafter
    receives should match a row of it. Rows that match none are K/V of rejected drafts.
    """
    seen: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def grab(module: Any, args: Any, kwargs: Any) -> None:
        position = int(kwargs["position_ids"][0, -1])
        if not seen or seen[-1][0] != position:  # steps of one round share the same K/V
            kv = kwargs["shared_kv_states"]
            seen.append((position, kv["full_attention"][0].clone(), kv["sliding_attention"][0].clone()))

    handle = drafter.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with drafter_settings(drafter, k, "constant"):
            out = target.generate(input_ids, generation_config=generation_config(
                max_new_tokens=max_new_tokens), assistant_model=drafter)
    finally:
        handle.remove()
    rows = []
    for position, full, sliding in seen:
        ref = target(input_ids=out[:, :position], use_cache=False, return_shared_kv_states=True)
        kept = {name: kv[0][0, 0] for name, kv in ref.shared_kv_states.items()}  # (kept, head_dim)

        def stale(view: torch.Tensor, name: str) -> int:
            rows_ = view[0, 0]  # (n, head_dim), first KV head
            d = torch.cdist(rows_.float(), kept[name].float())  # (n, kept)
            return int((d.min(-1).values > 1e-3 * (1 + rows_.norm(dim=-1))).sum())

        rows.append(KVAudit(position, full.shape[2], stale(full, "full_attention"),
                            sliding.shape[2], stale(sliding, "sliding_attention")))
    return rows

"""One call to run a prompt through any decoding path and get a `Trace` back.

`run(pair, prompt, path=...)` checks its input first (a clear `BadInputError`, never a stack trace
from inside transformers), then dispatches to:

- "plain":        the target alone, transformers' `generate` (one token per target forward),
- "transformers": transformers' assisted `generate` with the MTP drafter, traced (`labkit.tracing`),
- "glassbox":     the readable loop in `labkit.glassbox`.

`tour_runner(pair)` decodes a prompt both ways for 00's panel (`widgets.TourPanel`, which takes
traces, never models), each path warmed up and timed by repeats (`experiments.time_paths`).
A prompt is text, token ids, or a conversation: a list of `{"role", "content"}` messages that the
pair's chat template renders (`labkit.chat`), thinking on or off (`10_chat_and_thinking`).
Introduced in `00_tour`. Left out: batches (one prompt at a time, like
assisted generation), tool declarations in the chat template.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch

from labkit.chat import chat_keywords, check_messages, is_conversation, render
from labkit.errors import BadInputError, PrecisionError
from labkit.experiments import time_paths
from labkit.glassbox import speculate
from labkit.loading import Pair, load_pair
from labkit.methods import METHODS, glassbox_drafter
from labkit.paths import POCKET_CHAT_DIR, PROMPTS_DIR
from labkit.tracing import trace_generate
from labkit.trace import Decoding, Trace

PATHS = ("plain", "transformers", "glassbox")
DECODING_FIELDS = tuple(f.name for f in fields(Decoding))  # k, max_new_tokens, temperature, ...


def load_prompts(kind: str = "prose", limit: int | None = None) -> list[str]:
    """The held-out prompts shipped in data/prompts/<kind>.jsonl ("prose" or "code")."""
    path = PROMPTS_DIR / f"{kind}.jsonl"
    if not path.exists():
        known = sorted(p.stem for p in PROMPTS_DIR.glob("*.jsonl"))
        raise BadInputError(f"no prompt set {kind!r}; the lab ships {known or 'none'} in {PROMPTS_DIR}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["text"] for r in rows][:limit]


def text_tokenizer(tokenizer: Any) -> Any:
    return getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps the text tokenizer


Prompt = str | Sequence[int] | torch.Tensor | Sequence[dict[str, Any]]  # text, ids or chat messages


def is_pocket_chat(pair: Pair) -> bool:
    """The pocket chat pair (`load_pair("pocket-chat")`), trained here to speak Gemma 4's turns."""
    return pair.is_pocket and Path(str(pair.target_id)).parent == POCKET_CHAT_DIR


def speaks_chat(pair: Pair) -> bool:
    """True for an instruction-tuned pair (an "-it" target whose tokenizer has a chat template, or the
    pocket chat pair): Gemma 4 is meant to be spoken to in turns. False for the pocket target, a base
    model that continues text."""
    tok = text_tokenizer(pair.tokenizer)
    name = str(getattr(pair, "target_id", "") or pair.name).rstrip("/").split("/")[-1]
    it = is_pocket_chat(pair) or (not pair.is_pocket and (name.endswith("-it") or "-it-" in name))
    return it and bool(getattr(tok, "chat_template", None))


def encode(pair: Pair, prompt: Prompt, chat: bool | None = None, thinking: bool | None = None) -> torch.Tensor:
    """Token ids (1, n) on the pair's device, or a BadInputError saying what is wrong.

    A list of {"role", "content"} messages renders with the pair's chat template (`labkit.chat.render`);
    thinking True/False switches the template's `enable_thinking` (None: the template's default).
    A string: chat=None treats it as the pair is meant to be prompted (`speaks_chat`), one user turn
    for an -it pair or the pocket chat pair, raw text otherwise."""
    tok = text_tokenizer(pair.tokenizer)
    if is_conversation(prompt) or (isinstance(prompt, (list, tuple)) and prompt and is_conversation(prompt[0])):
        check_messages(prompt)  # one conversation, not a batch of them
        if chat is False:
            raise BadInputError("chat=False with a list of messages: messages only make sense in the chat "
                                "template; pass a string prompt for raw text")
        return torch.tensor([render(tok, prompt, thinking)], device=pair.device)
    chat = speaks_chat(pair) if chat is None else chat
    if thinking is not None and not (chat and isinstance(prompt, str)):
        raise BadInputError(
            f"thinking={thinking} needs a chat prompt: pass messages, e.g. [{{'role': 'user', 'content': "
            "'What is 2 + 3?'}], to a pair with a chat template (labkit.load_pair('pocket-chat') or an "
            "'-it' Gemma 4 target); this prompt would be decoded as raw text or ids")
    if isinstance(prompt, str) and chat:
        if not prompt.strip():
            raise BadInputError("the prompt is empty; give the model some text to continue")
        return torch.tensor([render(tok, [{"role": "user", "content": prompt}], thinking)], device=pair.device)
    if isinstance(prompt, (list, tuple)) and prompt and isinstance(prompt[0], str):
        raise BadInputError(
            f"got {len(prompt)} prompts; speculative decoding here runs one prompt at a time "
            "(transformers' assisted generation supports batch size 1 only). Loop over them."
        )
    if isinstance(prompt, str):
        if not prompt.strip():
            raise BadInputError("the prompt is empty; give the model some text to continue")
        ids = tok(prompt, return_tensors="pt").input_ids
    else:
        ids = torch.as_tensor(prompt)
        if ids.dim() == 1:
            ids = ids[None]
        if ids.dim() != 2 or ids.shape[0] != 1:
            raise BadInputError(
                f"input ids of shape {tuple(ids.shape)}: the lab decodes one sequence at a time "
                "(batch size 1); pass shape (n,) or (1, n)"
            )
        if ids.shape[1] == 0:
            raise BadInputError("the prompt is empty; give the model some text to continue")
        if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise BadInputError(f"token ids must be integers, got {ids.dtype}; pass a list of ints or a text prompt")
        ids = ids.long()
        vocab = pair.target.config.get_text_config().vocab_size
        bad = ids[(ids < 0) | (ids >= vocab)]
        if bad.numel():
            raise BadInputError(
                f"token id {int(bad[0])} is outside the target's vocabulary (0 … {vocab - 1}); "
                "encode text with the pair's tokenizer, or pass the text itself")
    return ids.to(pair.device)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    """A real number, not NaN (NaN compares false with everything, so it would slip past range checks)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isnan(x)


def check_settings(pair: Pair, n_prompt: int, settings: Decoding, path: str) -> None:
    """A BadInputError saying what to change, for any setting the pair cannot run with."""
    k, max_new_tokens, temperature, top_p = settings.k, settings.max_new_tokens, settings.temperature, settings.top_p
    if path not in PATHS:
        raise BadInputError(f"unknown path {path!r}; choose one of {PATHS}")
    if not _is_int(k):
        raise BadInputError(f"k = {k!r}: the number of drafts per round must be a whole number, e.g. k=4")
    if k < 1:
        raise BadInputError(f"k = {k!r}: the drafter must propose at least 1 token per round")
    if not _is_int(max_new_tokens):
        raise BadInputError(f"max_new_tokens = {max_new_tokens!r}: it must be a whole number, e.g. 64")
    if max_new_tokens < 1:
        raise BadInputError(f"max_new_tokens = {max_new_tokens}: ask for at least one new token")
    if not _is_real(temperature) or temperature < 0 or math.isinf(temperature):
        raise BadInputError(f"temperature = {temperature!r}: use 0 for greedy or a positive finite number")
    if not _is_real(top_p) or not 0 < top_p <= 1:
        raise BadInputError(f"top_p = {top_p!r}: it must be a number in (0, 1]")
    limit = pair.target.config.get_text_config().max_position_embeddings
    if n_prompt + max_new_tokens > limit:
        raise BadInputError(
            f"prompt ({n_prompt} tokens) + max_new_tokens ({max_new_tokens}) exceeds the target's "
            f"context window of {limit} tokens; shorten the prompt or ask for fewer tokens"
        )


def run(
    pair: Pair,
    prompt: Prompt,
    settings: Decoding | None = None,
    *,
    path: str = "transformers",
    drafter: str = "mtp",
    chat: bool | None = None,
    thinking: bool | None = None,
    stop_at_eos: bool = True,
    **overrides: Any,
) -> Trace:
    """Generate from `prompt` along `path` and return the trace, with decoded pieces attached.

    settings: one `Decoding` (k, max_new_tokens, temperature, top_p, schedule, lossless, kv, seed;
    `Decoding()` if omitted), handed on as it is; keywords of those names override its fields, as
    transformers' `generate` takes a `GenerationConfig` and keywords: `run(pair, p, k=2)` and
    `run(pair, p, Decoding(k=2))` are the same call. The trace keeps the settings (`trace.settings`).
    Any other keyword (pixel_values, ...) goes to the model.

    lossless: for path "transformers" with sampling, verify argmax drafts as the point masses they
    are (`labkit.tracing.lossless`), so the output is distributed exactly like the target's. On by
    default; `lossless=False` runs transformers' as-shipped MTP sampling rule, whose output is
    biased (`03_verify_and_accept` shows by how much). The glass-box loop is always lossless.
    prompt: text, token ids, or one conversation: a list of {"role", "content"} messages, rendered
    with the pair's chat template and its generation prompt (`labkit.chat.render`). A chat trace
    labels every new token ("thought", "answer", "tool_call", "tool_response", "template";
    `trace.segments()`) and stops at the end of the model's turn (`<turn|>`).
    thinking: True/False switches the chat template's `enable_thinking` (Gemma 4: `<|think|>` in
    the system turn, then the model thinks inside `<|channel>thought … <channel|>` before it
    answers); None leaves the template's default (off for Gemma 4). Only for chat prompts.
    chat: a string prompt becomes one user turn of the pair's chat template; None (the default)
    does so for an instruction-tuned pair only (`speaks_chat`: "-it" targets such as E2B-it, and
    the pocket chat pair), not for the pocket target, a base model.
    drafter: for path "glassbox", "mtp" (the pair's drafter), "prompt-lookup", "none" (the target
    alone on the same loop), or a causal LM to use as an independent draft model (labkit.methods).
    """
    if settings is not None and not isinstance(settings, Decoding):
        raise BadInputError(f"settings must be a labkit Decoding, e.g. Decoding(k=4), not {type(settings).__name__}; "
                            "or pass the settings as keywords (k=4, temperature=0.7, ...)")
    ids = encode(pair, prompt, chat=chat, thinking=thinking)
    turns = is_conversation(prompt) or (isinstance(prompt, str) and (speaks_chat(pair) if chat is None else chat))
    fixed = {name: overrides.pop(name) for name in DECODING_FIELDS if name in overrides}
    settings = Decoding() if settings is None else settings
    settings = replace(settings, **fixed) if fixed else settings
    model_inputs = overrides
    check_settings(pair, ids.shape[1], settings, path)
    tok = text_tokenizer(pair.tokenizer)
    # The target's own stop tokens (a chat model also ends its turn: Gemma 4's <turn|>), else <eos>.
    eos = (pair.target.generation_config.eos_token_id or tok.eos_token_id) if stop_at_eos else None
    if eos is not None and turns:  # a chat reply ends with its turn, whatever generation_config says
        eos = sorted({*([eos] if isinstance(eos, int) else eos), *end_of_turn(tok)})
    if path == "glassbox":
        if isinstance(drafter, torch.nn.Module):
            source = glassbox_drafter("draft-model", pair, drafter)
        elif drafter in METHODS:
            source = glassbox_drafter(drafter, pair)
        else:
            raise BadInputError(f"unknown drafter {drafter!r}; use 'mtp', 'prompt-lookup', 'none' or a draft model")
        trace = speculate(pair.target, source, ids, settings, pair=pair.name, eos_token_id=eos, **model_inputs)
    else:
        trace = trace_generate(pair.target, pair.drafter if path == "transformers" else None, ids, settings,
                               pair=pair.name, eos_token_id=eos, pad_token_id=tok.pad_token_id, **model_inputs)
    check_finite(trace, pair)
    trace = trace.with_pieces(tok)
    if turns:
        trace = replace(trace, meta={**trace.meta, "thinking": thinking, "segments": trace.segments(tok)})
    return trace


def check_finite(trace: Trace, pair: Pair) -> None:
    """A target whose activations overflowed (Gemma's can exceed float16's 65,504 on a T4, which has no
    bfloat16) gives NaN probabilities and then meaningless tokens: say so instead of showing them."""
    probs = [p for r in trace.rounds for p in (*r.target_probs, *r.draft_probs)]
    if any(not math.isfinite(p) for p in probs):
        dtype = str(pair.dtype).removeprefix("torch.")
        raise PrecisionError(
            f"{pair.label} produced NaN or infinite probabilities in {dtype}: its activations overflowed. "
            + ("float16 cannot hold them; load it in bfloat16 on a GPU that has it "
               "(compute capability 8.0+), or in float32: labkit.load_pair(..., dtype=torch.float32)."
               if dtype == "float16" else "Try float32: labkit.load_pair(..., dtype=torch.float32)."))


def end_of_turn(tokenizer: Any) -> list[int]:
    """The id of Gemma 4's `<turn|>` in this tokenizer ([] if it has none)."""
    found = tokenizer.convert_tokens_to_ids("<turn|>")
    return [found] if isinstance(found, int) and found != tokenizer.unk_token_id else []


def tour_runner(pair: Pair, *, load: Callable[[str | None], Any] | None = None, repeats: int = 3,
                thinking: bool | None = None) -> Callable[[str, Prompt, Decoding], tuple[str, Any, Any]]:
    """The `run` of `widgets.TourPanel` (`00_tour`): (pair box text, prompt, settings) → (the pair's
    label, plain decoding timed, speculative decoding timed), each an `experiments.Timed` whose
    `.trace` is its median run.

    Both paths are warmed up, then run `repeats` times each, interleaved (`experiments.time_paths`),
    so neither pays a first call's costs the other escapes. It starts with `pair`, which the box
    names "pocket" (a pocket pair) or by `pair.name`. Another name ("pocket" or a Gemma 4 target id)
    is loaded with `load` (`labkit.load_pair` by default) and kept for the next run; one that cannot
    be loaded raises labkit's error and the last pair stays.
    A prompt may be chat messages (`10_chat_and_thinking`), run with `thinking` on or off; a chat reply
    stops at the end of its turn, text runs the full `max_new_tokens`.
    """
    box = "pocket-chat" if is_pocket_chat(pair) else "pocket" if pair.is_pocket else pair.name
    current = {"name": box, "pair": pair}

    def run_both(name: str, prompt: Prompt, settings: Decoding) -> tuple[str, Any, Any]:
        if name != current["name"]:
            loaded = (load or load_pair)(name)  # "pocket" is the pocket pair, whatever was chosen
            current.update(name=name, pair=loaded)
        chosen = current["pair"]
        kw = chat_keywords(prompt, thinking)  # text: same length on both paths, for the replay
        timed = time_paths({"plain": lambda: run(chosen, prompt, settings, path="plain", **kw),
                            "speculative": lambda: run(chosen, prompt, settings, path="transformers", **kw)},
                           repeats=repeats)
        return chosen.label, timed["plain"], timed["speculative"]

    return run_both


def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    """The first position where two token sequences differ (one ending early counts), else None."""
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
    return at if at is not None or len(a) == len(b) else min(len(a), len(b))


@torch.no_grad()
def next_logits(pair: Pair, prompt: str | Sequence[int] | torch.Tensor, continuation: Sequence[int] = (),
                **model_inputs: Any) -> torch.Tensor:
    """(vocab,) the target's logits for the token after `prompt` + `continuation`, computed in the
    pair's precision by one forward over the whole sequence, returned as float32."""
    ids = encode(pair, prompt)
    seq = torch.cat([ids[0], torch.as_tensor(list(continuation), dtype=ids.dtype, device=ids.device)])[None]
    return pair.target(input_ids=seq, logits_to_keep=1, **model_inputs).logits[0, -1].float()


def logit_gap(pair: Pair, prompt: str | Sequence[int] | torch.Tensor, continuation: Sequence[int] = (),
              **model_inputs: Any) -> tuple[float, list[int]]:
    """(gap, [best, second]): how far apart the target's two best logits are for the token after
    `prompt` + `continuation`, in the pair's precision; 0 is an exact tie. Introduced in
    `03_verify_and_accept`, where half precision breaks such ties differently on different passes."""
    top = next_logits(pair, prompt, continuation, **model_inputs).topk(2)
    return float(top.values[0] - top.values[1]), top.indices.tolist()

"""Drafting methods side by side: the pair's MTP drafter, an independent draft model, prompt lookup,
and none (the target alone), on transformers' `generate` and on the glass box (`08_choosing_a_drafter`).

`generate_kwargs` says how transformers runs a method (`assistant_model=` for both drafters,
`prompt_lookup_num_tokens=` for prompt lookup); `glassbox_drafter` the drafter object the glass
box runs for it. `count_forwards` counts the target's forward passes during a call, which gives
tau for every method on transformers' path without tracing it: generated tokens / passes after
the prefill. Prompt lookup here finds matches as transformers does (the first, leftmost match of
the longest n-gram up to 2), so both paths draft the same tokens. For a draft model transformers
also ends a round early when the model's probability of its next draft is below
`assistant_confidence_threshold` (0.4 by default, adapted as it goes): its rounds can be shorter
than the glass box's k, so its tau can be lower; the tokens are the target's on both.
Left out: tree drafts (Medusa, EAGLE), lookahead decoding, suffix trees, batching.

Only torch at the top: `labkit.cli` reads METHODS from here and must start where transformers is
broken (`labkit doctor` says so), so the glass box, tracing, loading and timing are imported inside
the functions that use them (and `labkit.generation`, which imports this module).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from labkit.errors import BadInputError
from labkit.paths import DRAFT_MODEL_DIR, PROMPTS_DIR

if TYPE_CHECKING:  # for annotations only: only torch at run time (see the docstring)
    from labkit.loading import Pair

METHODS = ("mtp", "draft-model", "prompt-lookup", "none")
TASKS = ("prose", "code", "quote", "edit", "dialogue")  # data/prompts/tasks.jsonl (scripts/make_task_prompts.py)
PROMPT_LOOKUP_NGRAM = 2  # transformers' default `max_matching_ngram_size`


def load_tasks(per_task: int | None = None, path: str | Path | None = None) -> list[dict[str, str]]:
    """The task prompts, {"id", "task", "source", "text"} rows: the first `per_task` of each task
    (all by default) of data/prompts/tasks.jsonl, or of a file of {"text", "task"} rows ("task"
    optional: "all"). A malformed file raises BadInputError naming the line."""
    import json

    path = Path(path).expanduser() if path is not None else PROMPTS_DIR / "tasks.jsonl"
    if not path.is_file():
        raise BadInputError(f"{path}: no such file of {{\"text\": ..., \"task\": ...}} rows")
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
                rows.append({**row, "text": str(row["text"]), "task": str(row.get("task", "all"))})
            except (json.JSONDecodeError, KeyError, TypeError):
                raise BadInputError(f'{path}, line {i}: not a {{"text": ..., "task": ...}} JSON object') from None
    if not rows:
        raise BadInputError(f"{path} holds no prompts")
    seen: dict[str, int] = {}
    out = []
    for r in rows:
        seen[r["task"]] = seen.get(r["task"], 0) + 1
        if per_task is None or seen[r["task"]] <= per_task:
            out.append(r)
    return out


def check_method(method: str, draft_model: Any = None) -> None:
    if method not in METHODS:
        raise BadInputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "draft-model" and draft_model is None:
        raise BadInputError("method 'draft-model' needs a draft model: labkit.load_draft_model(pair) loads the "
                            "pocket one for the pocket pair (python scripts/train_draft_model.py trains it) and "
                            "Gemma 4 E2B for a larger Gemma 4, or pass a folder")


def generate_kwargs(method: str, pair: Pair, k: int, draft_model: Any = None) -> dict[str, Any]:
    """What `pair.target.generate` needs to run `method` with k drafts per round (constant)."""
    check_method(method, draft_model)
    if method == "mtp":
        return {"assistant_model": pair.drafter}
    if method == "draft-model":
        return {"assistant_model": draft_model}
    if method == "prompt-lookup":
        return {"prompt_lookup_num_tokens": k, "max_matching_ngram_size": PROMPT_LOOKUP_NGRAM}
    return {}


@contextmanager
def drafting(method: str, pair: Pair, k: int, draft_model: Any = None) -> Iterator[None]:
    """The assistant's own generation config set to k drafts a round, constant, for the call."""
    from labkit.tracing import drafter_settings

    assistant = generate_kwargs(method, pair, k, draft_model).get("assistant_model")
    if assistant is None:
        yield
        return
    with drafter_settings(assistant, k, "constant"):
        yield


def glassbox_drafter(method: str, pair: Pair, draft_model: Any = None) -> Any:
    """The glass box's drafter for `method` ("none": a drafter that never drafts, the same loop)."""
    from labkit.glassbox import IndependentDrafter, MTPDrafter, NoDrafter, PromptLookupDrafter

    check_method(method, draft_model)
    if method == "mtp":
        return MTPDrafter(pair.target, pair.drafter)
    if method == "draft-model":
        return IndependentDrafter(draft_model)
    if method == "prompt-lookup":
        return PromptLookupDrafter(pair.target.config.get_text_config().vocab_size, PROMPT_LOOKUP_NGRAM)
    return NoDrafter()


@contextmanager
def count_forwards(model: torch.nn.Module) -> Iterator[list[int]]:
    """Counts `model`'s forward passes inside the block: `with count_forwards(m) as n: ...; n[0]`."""
    count = [0]
    handle = model.register_forward_pre_hook(lambda module, args: count.__setitem__(0, count[0] + 1))
    try:
        yield count
    finally:
        handle.remove()


def default_draft_model(pair: Pair) -> str | Path:
    """The draft model `load_draft_model` offers `pair` when none is named, or a clear error.

    The pocket pair: the pocket draft model (data/pocket/draft_model/). A Gemma 4 target from the hub:
    the smallest Gemma 4, E2B (its -it model for an -it target), which shares every Gemma 4's
    tokenizer; a draft model must cost far less than its target, and E4B runs about as many
    parameters per token as 26B-A4B's active experts, so E2B drafts for E4B, 26B-A4B and 31B alike,
    and nothing smaller drafts for E2B. Any other pair (a folder): the pocket draft model when the
    target reads the pocket tokenizer (the pocket pair saved as a folder pair does).
    """
    if pair.is_pocket:
        if not (DRAFT_MODEL_DIR / "model.safetensors").exists():
            raise BadInputError(f"no pocket draft model in {DRAFT_MODEL_DIR}: train one with "
                                "`python scripts/train_draft_model.py --quick --install` (a few minutes)")
        return DRAFT_MODEL_DIR
    target = str(pair.target_id)
    gemma = re.fullmatch(r"google/gemma-4-(E2B|E4B|26B-A4B|31B)(-it)?", target)
    if gemma and gemma[1] != "E2B":
        return f"google/gemma-4-E2B{gemma[2] or ''}"
    if gemma:
        raise BadInputError(f"{target} is the smallest Gemma 4: no smaller Gemma 4 can draft for it. Pass a "
                            "folder or hub id of a smaller causal LM with Gemma 4's tokenizer, or compare the "
                            "other methods (mtp, prompt-lookup, none)")
    if (DRAFT_MODEL_DIR / "model.safetensors").exists() and _reads_pocket_tokenizer(pair):
        return DRAFT_MODEL_DIR
    raise BadInputError(f"no draft model is known for {pair.label}: a draft model must read the target's "
                        "tokenizer. Pass a folder or hub id of a small causal LM that does "
                        "(load_draft_model(pair, source)), or compare the other methods (mtp, prompt-lookup, none)")


def _reads_pocket_tokenizer(pair: Pair) -> bool:
    from transformers import AutoTokenizer

    from labkit.paths import TOKENIZER_DIR

    try:
        return AutoTokenizer.from_pretrained(TOKENIZER_DIR).get_vocab() == pair.tokenizer.get_vocab()
    except (OSError, ValueError):
        return False


def load_draft_model(pair: Pair, source: str | Path | None = None) -> Any:
    """An independent draft model for `pair`, on its device and in its dtype: `default_draft_model`
    (the pocket draft model for the pocket pair, Gemma 4 E2B for a larger Gemma 4) unless `source`
    names a folder or hub id of a causal LM that shares the target's tokenizer. A clear error when
    it is missing or does not fit."""
    from transformers import AutoModelForCausalLM

    from labkit.loading import _quiet_progress, model_class, read_config

    source = default_draft_model(pair) if source is None else source
    config = read_config(source)  # a clear error for a wrong id, a missing folder or no network
    multimodal = getattr(config, "model_type", None) == "gemma4" and getattr(config, "vision_config", None)
    cls = model_class(config, "target") if multimodal else AutoModelForCausalLM  # E2B: as load_pair loads it
    with _quiet_progress(Path(source) == DRAFT_MODEL_DIR):  # the pocket model loads in a blink: no bar
        model = cls.from_pretrained(source, dtype=pair.dtype).to(pair.device).eval()
    check_draft_model(pair, model)
    return model


def check_draft_model(pair: Pair, model: Any) -> None:
    """A draft model must score the target's vocabulary: the same ids mean the same tokens."""
    ours = pair.target.config.get_text_config().vocab_size
    theirs = model.config.get_text_config().vocab_size
    if ours != theirs:
        raise BadInputError(f"the draft model's vocabulary ({theirs} tokens) is not the target's ({ours}): "
                            "a draft model must share the target's tokenizer")

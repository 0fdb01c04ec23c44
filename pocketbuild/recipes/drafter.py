"""The pocket MTP drafter (`Gemma4AssistantForCausalLM`), distilled from the frozen target: `scripts/train_drafter.py`.

The target writes the training rows (continuations of training-text prompts, greedy and sampled
at temperature 0.8, plus untouched text); then distillation stages run in order, each a cosine of
its own from the weights the last one left (labkit.distill.fit); then the centroid head; then one
calibration factor on the logits for sampled drafting.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal


@dataclass(frozen=True)
class Stage:
    name: str  # its checkpoint <out>/<name>.pt and its lines in <out>/log.jsonl
    rows: Literal["all", "continuations", "short"]  # every training row; only the target's
    # continuations; those and the greedy continuations of short prompts
    steps: int  # distillation steps of this stage
    lr: float  # its peak learning rate (warm-up, then cosine down to a tenth)
    warmup: int = 20
    rounds_from: Literal["start", "prompt", "short_prompt"] = "start"  # train rounds from every
    # position, or only those inference runs: from the (short) prompt's last token on
    hard: float = 0.0  # weight of a cross-entropy on the target's argmax added to the KL (greedy
    # drafting needs only the argmax; it sharpens q, which the calibration gives back to sampling)
    seed: int = 0  # added to the recipe's seed: the stage's rows are drawn from it


@dataclass(frozen=True)
class DrafterRecipe:
    k: int = 5  # steps trained per anchor: one more than the lab's default 4, so k sweeps work
    prompts: int = 8192  # continuation prompts (a third greedy, a third sampled, a third text)
    prompt_len: int = 48  # tokens of training text before the target continues
    new_tokens: int = 112  # tokens the target writes per prompt
    gen_batch: int = 64  # prompts generated at once; consecutive pairs of batches (prose, code)
    # cycle through greedy, sampled and plain text
    batch: int = 16  # sequences per distillation step
    short_prompt_len: int = 16  # the lab's prompts are short (14-59 tokens)
    short_prompts: int = 2048  # greedy continuations of such prompts (half prose, half code)
    centroid_steps: int = 150  # steps for the centroid head (drafter frozen)
    calib_prompts: int = 64  # fresh sampled continuations that fit the logit scale
    calib_temperature: float = 0.8  # the sampling temperature it is fitted for: the bars' and the lab's
    eval_sequences: int = 96  # held-out sequences for the agreement report
    width: int = 256  # drafter hidden size, a multiple of 64 (heads are 64 wide); E2B's assistant's too
    mlp: int = 512  # drafter MLP width
    threads: int = 2
    seed: int = 0
    stages: tuple[Stage, ...] = ()  # run in order, each from the weights the one before left


FULL = DrafterRecipe(stages=(
    Stage("distil", "all", 1100, 2e-3, warmup=50),
    Stage("polish", "all", 1000, 1e-3, seed=1),  # agreement was still rising when the first cosine ended
    Stage("focus", "continuations", 1200, 5e-4, rounds_from="prompt", seed=2),
    Stage("focus2", "continuations", 1200, 2.5e-4, rounds_from="prompt", hard=1.0, seed=3),
    Stage("short", "short", 600, 2.5e-4, rounds_from="short_prompt", hard=1.0, seed=4),
))
def changed(stages: tuple[Stage, ...], **fields: dict) -> tuple[Stage, ...]:
    """`stages` with some stages' fields changed, by stage name: changed(s, short={"steps": 700})."""
    return tuple(replace(s, **fields.get(s.name, {})) for s in stages)


# About an hour of a 2-core CPU: half the prompts, the first cosine, then the two stages with the
# argmax cross-entropy, which move greedy tau most. Short of the bars alone.
LAPTOP = replace(FULL, prompts=4096, gen_batch=512, stages=changed(
    tuple(s for s in FULL.stages if s.name in ("distil", "focus2", "short")),
    distil={"steps": 650}, focus2={"steps": 350, "lr": 5e-4}, short={"steps": 350}))
# Goes on from a LAPTOP drafter (`--init <run>/short.pt`), ~90 more minutes of 2 cores: the target
# writes as many prompts again (rows already written are reused), a warm restart at half the
# first lr on all rows, then focus2 and short again.
CONTINUED = replace(LAPTOP, prompts=8192, stages=changed(
    LAPTOP.stages, distil={"steps": 1000, "lr": 1e-3, "warmup": 20}, focus2={"steps": 700}, short={"steps": 600}))
# The shipped drafter's last two runs (a GPU's minutes each): 64 rows a step, more prompts.
WIDE = replace(CONTINUED, batch=64, prompts=12288, stages=changed(
    CONTINUED.stages, distil={"steps": 1200}, focus2={"steps": 1000}, short={"steps": 800}))
WIDER = replace(WIDE, prompts=20480, stages=changed(
    WIDE.stages, distil={"steps": 1000}, focus2={"steps": 900}, short={"steps": 700}))
# Under 5 minutes on 2 cores against the shipped 24-layer target.
QUICK = replace(FULL, prompts=192, new_tokens=80, short_prompts=64, centroid_steps=40, calib_prompts=8,
                eval_sequences=32, width=128, stages=changed(
                    FULL.stages, distil={"steps": 50}, polish={"steps": 20}, focus={"steps": 20},
                    focus2={"steps": 20}, short={"steps": 20}))

RECIPES = {"full": FULL, "laptop": LAPTOP, "continued": CONTINUED, "wide": WIDE, "wider": WIDER, "quick": QUICK}
# Recipes that go on from an earlier run's weights (`--init`)
CONTINUING = ("continued", "wide", "wider")

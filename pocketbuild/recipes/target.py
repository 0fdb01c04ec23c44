"""The pocket target (`Gemma4ForCausalLM`) on Shakespeare + the Python stdlib: `scripts/train_target.py`.

Three stages, each from the weights the one before left, each with a fresh AdamW and its own cosine:
maximum likelihood on the corpus; a second, shorter cosine on batches the first never drew; then
a short stage against greedy loops, where each maximum-likelihood update is followed by one on the
unlikelihood of the model's own repeated n-grams (pocketbuild.lm.sequence_unlikelihood).
Each batch is half prose, half code, so the model is equally good at both kinds the lab drafts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from labkit.fit import TrainConfig


@dataclass(frozen=True)
class Unlikelihood:
    prefixes: int = 8  # training prefixes the model continues per step, half prose, half code
    prefix_len: int = 24  # <bos> + 23 training tokens
    new_tokens: int = 64  # greedy tokens the model writes after each
    ngram: int = 4  # a token is penalised when it belongs to a repeated 4-gram
    weight: float = 0.5  # scales the unlikelihood loss (its own update, after the MLE one)


@dataclass(frozen=True)
class Stage:
    name: str  # its checkpoint <out>/<name>.pt and its lines in <out>/log.jsonl
    train: TrainConfig  # steps, batch, learning rate and schedule of this stage
    draws_from: int = 0  # step s draws the batch the first stage's step draws_from + s would: later
    # stages start past the first's steps, on batches it never drew
    bos_first: bool = False  # every window starts with <bos>, as every prompt the lab sends does
    unlikelihood: Unlikelihood | None = None  # the second update against loops, if any


@dataclass(frozen=True)
class TargetRecipe:
    layers: int | None = 24  # depth, a multiple of 4 ([sliding x 3, full] blocks); None: labkit.pocket's
    width: int | None = 256  # hidden size, a multiple of 64 (heads are 64 wide); None: labkit.pocket's
    mlp: int | None = 512  # MLP width; None: labkit.pocket's (3x the width)
    threads: int = 2  # torch threads for every stage
    stages: tuple[Stage, ...] = ()  # run in order; the first one's seed draws every stage's batches


# Batch 32 x 256, 2,400 steps (~6 passes over the prose, ~2.6 over the code).
PRETRAIN = TrainConfig(steps=2400, batch=32, seq_len=256, lr=2e-3, warmup=100, min_lr_ratio=0.1,
                       eval_every=200, eval_windows=32, ckpt_every=100, seed=0)
FULL = TargetRecipe(stages=(
    Stage("pretrain", PRETRAIN),
    # margin on the code bar, which the last stage then spends a little of
    Stage("polish", replace(PRETRAIN, steps=600, lr=6e-4, warmup=20, eval_every=100, ckpt_every=50, seed=2),
          draws_from=PRETRAIN.steps + 1000),
    Stage("derepeat", replace(PRETRAIN, steps=100, lr=1e-4, warmup=20, min_lr_ratio=1.0, weight_decay=0.0,
                              eval_every=50, ckpt_every=10, seed=1),
          draws_from=PRETRAIN.steps, bos_first=True, unlikelihood=Unlikelihood()),
))

# A learner's smoke run: labkit.pocket's 8 x 256 shape, enough steps to see the loss fall and
# the checkpoint and resume path run, in a few minutes.
QUICK_PRETRAIN = replace(PRETRAIN, steps=120, batch=8, seq_len=128, warmup=20, eval_every=60, eval_windows=8,
                         ckpt_every=20)
QUICK = TargetRecipe(layers=None, width=None, mlp=None, stages=(
    Stage("pretrain", QUICK_PRETRAIN),
    Stage("polish", replace(QUICK_PRETRAIN, steps=6, lr=5e-4, warmup=2, eval_every=6, ckpt_every=3, log_every=2,
                            seed=2), draws_from=QUICK_PRETRAIN.steps + 1000),
    Stage("derepeat", replace(QUICK_PRETRAIN, steps=6, lr=2e-4, warmup=2, min_lr_ratio=1.0, weight_decay=0.0,
                              eval_every=6, ckpt_every=3, log_every=2, seed=1),
          draws_from=QUICK_PRETRAIN.steps, bos_first=True, unlikelihood=Unlikelihood(prefixes=4, new_tokens=24)),
))

RECIPES = {"full": FULL, "quick": QUICK}

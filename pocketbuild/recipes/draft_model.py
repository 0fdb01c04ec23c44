"""The pocket draft model: a classic, independent drafter for the pocket target (`scripts/train_draft_model.py`).

A small `Gemma4ForCausalLM` over the pocket tokenizer with its own KV cache, the kind of drafter
speculative decoding started with (Leviathan et al. 2023; Chen et al. 2023), to race the MTP
drafter in `08_choosing_a_drafter`. It learns the target's next-token distribution at every
position (KL, plus a cross-entropy on the target's argmax, which is all greedy drafting needs) on
the target's own greedy and sampled continuations and on training text, as the MTP drafter does;
the target's top tokens per position are computed once, so training never runs the target.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from labkit.fit import TrainConfig


@dataclass(frozen=True)
class DraftModelRecipe:
    layers: int = 2  # [sliding, full]: the last layer global, as in every Gemma 4 stack
    width: int = 128  # hidden size, a multiple of 64 (heads are 64 wide)
    mlp: int = 256  # MLP width
    prompts: int = 1536  # continuation prompts the target writes (a third greedy, sampled, text)
    prompt_len: int = 48  # tokens of training text before the target continues
    new_tokens: int = 112  # tokens the target writes per prompt
    gen_batch: int = 64  # prompts generated at once; batches alternate prose and code
    hard: float = 0.5  # weight of the cross-entropy on the target's argmax, added to the KL
    top: int = 64  # the target's most likely tokens kept per position for the KL (renormalised)
    eval_sequences: int = 64  # held-out rows for the agreement report
    eval_prompts: int = 8  # held-out prose and as many code prompts for `labkit bench` (tau and speed)
    threads: int = 2
    seed: int = 0
    train: TrainConfig = TrainConfig(steps=2000, batch=16, lr=2e-3, warmup=100, ckpt_every=100)


FULL = DraftModelRecipe()
QUICK = replace(FULL, width=64, mlp=128, prompts=128, new_tokens=64, eval_sequences=16, eval_prompts=2,
                train=replace(FULL.train, steps=30, warmup=5, ckpt_every=10))

RECIPES = {"full": FULL, "quick": QUICK}
# A full model ships only past these (scripts/train_draft_model.py --install): it never changes the
# target's greedy output, it makes the target faster on 2 CPU threads (glass box, greedy, k = 4),
# and every clone carries it, so it stays small.
BARS = {"megabytes": ("<=", 10.0), "identical_greedy": ("==", True), "speedup_greedy": (">=", 1.0)}

"""Train the pocket target (`Gemma4ForCausalLM`, 15.4M parameters) on Shakespeare + Python stdlib.

    python scripts/train_target.py --quick        # a few minutes, 8 x 256: a learner's smoke run
    nohup python scripts/train_target.py > runs/target/stdout.log 2>&1 &    # the full run: ~10 min on a GPU
    python scripts/train_target.py --layers 8 --width 256 --steps 1800 --batch 16 --out runs/t8   # ~65 min

Runs on a GPU when there is one (`--device`, default `auto`), else on the CPU: the same recipe,
the same code, minutes instead of hours.

Three phases: maximum likelihood on the corpus (`<out>/ckpt.pt`, `<out>/log.jsonl`); more of it
under a second, shorter cosine (`<out>/polish/`, a warm restart on batches phase 1 never drew);
then a short phase against greedy loops (`<out>/derepeat/`): each MLE update is followed by one on
the unlikelihood of the model's own repeated n-grams (pocketbuild.train.sequence_unlikelihood).
`--polish-steps 0` and `--derepeat-steps 0` skip the last two.
Needs `scripts/prep_pocket_data.py` and `scripts/train_tokenizer.py` first. Each phase resumes from
its checkpoint if present; the final model goes to `<out>/final/` (safetensors). Weights move to
`data/pocket/target/` only after they pass the held-out bars (bits per byte, non-degenerate text).
Each batch is half prose, half code, so the model is equally good at both kinds the lab drafts; the
code half draws from the stdlib's code but its tests (`code_train` + `code_train_extra`, 12 MB).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit.pocket import HEAD_DIM, TOKENIZER_DIR, target_config  # noqa: E402
from pocketbuild.train import (  # noqa: E402
    TrainConfig, bytes_per_token_table, eval_windows, random_windows, sequence_unlikelihood,
    tokenize_jsonl, train, training_device,
)

# The full run: batch 32 x 256, 2,400 steps (~6 passes over the prose, ~2.6 over the code).
# Measurements behind these numbers: docs/pocket-history.md.
FULL = TrainConfig(steps=2400, batch=32, seq_len=256, lr=2e-3, warmup=100, min_lr_ratio=0.1,
                   weight_decay=0.1, beta1=0.9, beta2=0.95, grad_clip=1.0,
                   eval_every=200, eval_windows=32, ckpt_every=100, threads=2, seed=0)
# Deep and narrow (15.4M parameters, ~31 MB in bf16): on a CPU a step costs per layer whatever the
# width, so depth is what makes a 4-layer drafter's round cheap. --quick keeps labkit.pocket's 8 x 256.
FULL_SHAPE = {"layers": 24, "width": 256, "mlp": 512}
# --quick: enough steps to see the loss fall and the checkpoint/resume path run, in a few minutes.
QUICK = replace(FULL, steps=120, batch=8, seq_len=128, warmup=20, eval_every=60, eval_windows=8,
                ckpt_every=20)

# Phase 1b, a second cosine from phase 1's weights (fresh AdamW, warm-up 20, down to a tenth):
# margin on the code bar, which phase 2 then spends a little of.
POLISH = replace(FULL, steps=600, lr=6e-4, warmup=20, eval_every=100, ckpt_every=50, seed=2)
QUICK_POLISH = replace(QUICK, steps=6, lr=5e-4, warmup=2, eval_every=6, ckpt_every=3, log_every=2, seed=2)

# Phase 2, against loops: maximum likelihood alone leaves greedy text looping, and loops only
# show once a model feeds on its own output, so each step lets the model continue a few training
# prefixes greedily and pushes down the tokens of n-grams it repeated (unlikelihood, Welleck et
# al. 2019), after an ordinary MLE update that keeps its bits per byte.
DEREPEAT = replace(FULL, steps=100, lr=1e-4, warmup=20, min_lr_ratio=1.0, weight_decay=0.0,
                   eval_every=50, ckpt_every=10, seed=1)
UNLIKELIHOOD = {"prefixes": 8,  # prefixes continued per step, half prose, half code
                "prefix_len": 24,  # <bos> + 23 training tokens
                "new_tokens": 64,  # greedy tokens the model writes after each
                "ngram": 4,  # a token is penalised when it belongs to a repeated 4-gram
                "weight": 0.5}  # scales the unlikelihood loss (its own update, after the MLE one)
QUICK_DEREPEAT = replace(QUICK, steps=6, lr=2e-4, warmup=2, min_lr_ratio=1.0, weight_decay=0.0,
                         eval_every=6, ckpt_every=3, log_every=2, seed=1)
QUICK_UNLIKELIHOOD = {**UNLIKELIHOOD, "prefixes": 4, "new_tokens": 24}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny run for learners and tests")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--seq-len", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--polish-steps", type=int, help="steps of phase 1b (a second cosine); 0 skips it")
    ap.add_argument("--derepeat-steps", type=int, help="steps of phase 2 (against loops); 0 skips it")
    ap.add_argument("--layers", type=int, help="depth, a multiple of 4 ([sliding x 3, full] blocks); "
                    f"default {FULL_SHAPE['layers']}, --quick: labkit.pocket.target_config's")
    ap.add_argument("--width", type=int, help="hidden size, a multiple of 64 (heads are 64 wide); "
                    f"default {FULL_SHAPE['width']}, --quick: labkit.pocket.target_config's")
    ap.add_argument("--mlp", type=int, help=f"MLP width; default {FULL_SHAPE['mlp']}, with --width: 3x the "
                    "width, --quick: labkit.pocket.target_config's")
    ap.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, ...")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "target")
    ap.add_argument("--data", type=Path, default=REPO / "build" / "pocket_data")
    ap.add_argument("--tokenizer", type=Path, default=TOKENIZER_DIR)
    args = ap.parse_args()
    cfg = QUICK if args.quick else FULL
    overrides = {k: v for k, v in vars(args).items()
                 if k in ("steps", "batch", "seq_len", "lr", "threads", "seed") and v is not None}
    cfg = replace(cfg, **overrides)
    if not args.quick:
        args.layers = args.layers or FULL_SHAPE["layers"]
        args.mlp = args.mlp or (None if args.width else FULL_SHAPE["mlp"])
        args.width = args.width or FULL_SHAPE["width"]
    shape = {}  # changes to labkit.pocket.target_config (train_drafter reads the shape back)
    if args.layers is not None:
        if args.layers % 4:
            ap.error(f"--layers {args.layers}: use a multiple of 4, so the last layer is a full one")
        shape.update(num_hidden_layers=args.layers,
                     layer_types=(["sliding_attention"] * 3 + ["full_attention"]) * (args.layers // 4))
    if args.width is not None:
        if args.width % HEAD_DIM:
            ap.error(f"--width {args.width}: use a multiple of {HEAD_DIM} (the head size)")
        shape.update(hidden_size=args.width, intermediate_size=3 * args.width,
                     num_attention_heads=args.width // HEAD_DIM)
    if args.mlp is not None:
        shape.update(intermediate_size=args.mlp)
    torch.set_num_threads(cfg.threads)
    device = training_device(args.device)

    from transformers import AutoTokenizer, Gemma4ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    streams = {f"{kind}_{split}": tokenize_jsonl(args.data / f"{kind}_{split}.jsonl", tokenizer,
                                                 cache=args.data / f"{kind}_{split}.tokens")
               for kind in ("prose", "code") for split in ("train", "val")}
    extra = args.data / "code_train_extra.jsonl"  # the stdlib beyond the tokenizer's capped sample
    if extra.exists():
        streams["code_train"] = np.concatenate([
            streams["code_train"], tokenize_jsonl(extra, tokenizer, cache=args.data / "code_train_extra.tokens")])
    for name, s in streams.items():
        print(f"{name:12s} {len(s):>10,d} tokens")

    def get_batch(step: int) -> torch.Tensor:
        # seeded by the step alone, so a resumed run draws exactly the same batches
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        half = cfg.batch // 2
        return torch.cat([random_windows(streams["prose_train"], half, cfg.seq_len, g),
                          random_windows(streams["code_train"], cfg.batch - half, cfg.seq_len, g)])

    val_sets = {kind: eval_windows(streams[f"{kind}_val"], cfg.seq_len) for kind in ("prose", "code")}

    torch.manual_seed(cfg.seed)  # the model's initial weights
    model = Gemma4ForCausalLM(target_config(len(tokenizer), **shape))
    model.config.use_cache = True  # training passes use_cache=False explicitly; generation wants it
    model.to(device)
    print(f"target: {sum(p.numel() for p in model.parameters()):,} parameters on {device}; {cfg}")
    byte_lengths = bytes_per_token_table(tokenizer)
    train(model, cfg, get_batch, val_sets, byte_lengths, args.out)

    def later(full: TrainConfig, quick: TrainConfig, steps: int | None) -> TrainConfig:
        """A later phase's config: the recipe's, with phase 1's threads and the --*-steps override."""
        return replace(quick if args.quick else full, threads=cfg.threads,
                       **({} if steps is None else {"steps": steps}))

    # Phase 1b: a fresh optimizer on batches no other phase draws (phase 2 draws steps + 0..99).
    cfg1b = later(POLISH, QUICK_POLISH, args.polish_steps)
    if cfg1b.steps > 0:
        print(f"phase 1b (a second cosine): {cfg1b}")
        train(model, cfg1b, lambda step: get_batch(cfg.steps + 1000 + step), val_sets, byte_lengths,
              args.out / "polish")

    # Phase 2 starts from the last weights above with a fresh optimizer (its own warm-up).
    cfg2 = later(DEREPEAT, QUICK_DEREPEAT, args.derepeat_steps)
    if cfg2.steps > 0:
        ul = QUICK_UNLIKELIHOOD if args.quick else UNLIKELIHOOD

        def unlikelihood(model, step: int) -> tuple[torch.Tensor, dict]:
            g = torch.Generator().manual_seed(cfg2.seed * 1_000_003 + step)
            half = ul["prefixes"] // 2
            text = torch.cat([random_windows(streams["prose_train"], half, ul["prefix_len"] - 2, g),
                              random_windows(streams["code_train"], ul["prefixes"] - half, ul["prefix_len"] - 2, g)])
            prefixes = torch.cat([torch.full((len(text), 1), tokenizer.bos_token_id), text], dim=1)
            loss, repeated = sequence_unlikelihood(model, prefixes, ul["new_tokens"], ul["ngram"])
            return ul["weight"] * loss, {"unlikelihood": loss.item(), "repeated": repeated}

        def get_batch2(step: int) -> torch.Tensor:
            # Every window starts with <bos>, as every prompt the lab sends does. Phase 1 saw <bos>
            # only at document starts (dozens of plays, thousands of code files), so after <bos>
            # the target expected code: after 50 more MLE steps 10 of 24 held-out prose prompts
            # drifted into Python, and 23 of 24 with unlikelihood (code does not loop as prose does).
            windows = get_batch(cfg.steps + step)  # batches phase 1 never drew
            windows[:, 0] = tokenizer.bos_token_id
            return windows

        print(f"phase 2 (against loops): {cfg2}; {ul}")
        train(model, cfg2, get_batch2, val_sets, byte_lengths, args.out / "derepeat", extra_loss=unlikelihood)

    final = args.out / "final"
    model.eval()
    model.save_pretrained(final)  # safetensors; the tokenizer travels with it for convenience
    tokenizer.save_pretrained(final)
    print(f"saved {final}")


if __name__ == "__main__":
    main()

"""Train the pocket target (`Gemma4ForCausalLM`) on Shakespeare + Python stdlib.

    python scripts/train_target.py --quick        # a few minutes, 8 x 256: a learner's smoke run
    nohup python scripts/train_target.py > runs/target/stdout.log 2>&1 &    # the full run: ~10 min on a GPU
    python scripts/train_target.py --layers 8 --width 256 --out runs/t8    # any recipe field is a flag

The recipe and its stages are data: pocketbuild/recipes/target.py. Runs on a GPU when there is
one (`--device`, default `auto`), else on the CPU: the same recipe, minutes instead of hours.
Needs `scripts/prep_pocket_data.py` and `scripts/train_tokenizer.py` first. Each stage resumes from
its checkpoint in `<out>/`; the final model goes to `<out>/final/` (safetensors), the run's
record (recipe, stages, held-out bits per byte) to `<out>/record.json`. Weights move to
`data/pocket/target/` only after they pass the held-out bars (scripts/measure_pocket.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit.pocket import HEAD_DIM, TOKENIZER_DIR, target_config  # noqa: E402
from pocketbuild.corpus import bytes_per_token_table, eval_windows, random_windows, tokenize_jsonl  # noqa: E402
from pocketbuild.lm import evaluate, lm_loss, sequence_unlikelihood  # noqa: E402
from pocketbuild.recipes.target import RECIPES, Stage, TargetRecipe  # noqa: E402
from pocketbuild.runs import Run, RunArgs, device_name, parse, training_device  # noqa: E402


@dataclass
class Args(RunArgs):
    out: Path = REPO / "runs" / "target"
    data: Path = REPO / "build" / "pocket_data"
    tokenizer: Path = TOKENIZER_DIR
    device: str = field(default="auto", metadata={"help": "auto (a GPU if there is one), cpu, cuda, ..."})


def shape(recipe: TargetRecipe) -> dict:
    """Changes to labkit.pocket.target_config (train_drafter reads the shape back from the model)."""
    out = {}
    if recipe.layers is not None:
        if recipe.layers % 4:
            sys.exit(f"--layers {recipe.layers}: use a multiple of 4, so the last layer is a full one")
        out.update(num_hidden_layers=recipe.layers,
                   layer_types=(["sliding_attention"] * 3 + ["full_attention"]) * (recipe.layers // 4))
    if recipe.width is not None:
        if recipe.width % HEAD_DIM:
            sys.exit(f"--width {recipe.width}: use a multiple of {HEAD_DIM} (the head size)")
        out.update(hidden_size=recipe.width, intermediate_size=3 * recipe.width,
                   num_attention_heads=recipe.width // HEAD_DIM)
    if recipe.mlp is not None:
        out.update(intermediate_size=recipe.mlp)
    return out


def load_streams(data: Path, tokenizer) -> dict[str, np.ndarray]:
    """prose/code x train/val token streams; the code train stream with the stdlib beyond the
    tokenizer's capped sample (`code_train_extra`), when prep_pocket_data wrote it."""
    streams = {f"{kind}_{split}": tokenize_jsonl(data / f"{kind}_{split}.jsonl", tokenizer,
                                                 cache=data / f"{kind}_{split}.tokens")
               for kind in ("prose", "code") for split in ("train", "val")}
    extra = data / "code_train_extra.jsonl"
    if extra.exists():
        streams["code_train"] = np.concatenate([
            streams["code_train"], tokenize_jsonl(extra, tokenizer, cache=data / "code_train_extra.tokens")])
    return streams


def train_stage(run: Run, model, stage: Stage, first: Stage, streams: dict, tokenizer, val_sets: dict,
                byte_lengths: torch.Tensor) -> None:
    cfg = stage.train

    def windows(step: int, n: int, length: int, seed: int) -> torch.Tensor:
        """n windows, half prose, half code, seeded by the step alone (a resumed run draws the same)."""
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        half = n // 2
        return torch.cat([random_windows(streams["prose_train"], half, length, g),
                          random_windows(streams["code_train"], n - half, length, g)])

    def loss_at(step: int) -> tuple[torch.Tensor, dict]:
        batch = windows(stage.draws_from + step, cfg.batch, cfg.seq_len, first.train.seed)
        if stage.bos_first:  # after <bos> the corpus's documents start; the lab's prompts start there too
            batch[:, 0] = tokenizer.bos_token_id
        return lm_loss(model, batch), {}

    then = None
    if (ul := stage.unlikelihood) is not None:
        def then(step: int) -> tuple[torch.Tensor, dict]:
            text = windows(step, ul.prefixes, ul.prefix_len - 2, cfg.seed)
            prefixes = torch.cat([torch.full((len(text), 1), tokenizer.bos_token_id), text], dim=1)
            loss, repeated = sequence_unlikelihood(model, prefixes, ul.new_tokens, ul.ngram)
            return ul.weight * loss, {"unlikelihood": loss.item(), "repeated": repeated}

    def evaluation() -> dict:
        return {f"{name}_{key}": v for name, w in val_sets.items()
                for key, v in evaluate(model, w[:: max(1, len(w) // cfg.eval_windows)][: cfg.eval_windows],
                                       byte_lengths).items()}

    run.stage(stage.name, model, cfg, loss_at, then=then, evaluate=evaluation)
    entry = run.record["stages"][stage.name]
    if "final" not in entry:  # once, on every validation window: the number to report
        entry["final"] = {f"{name}_{key}": v for name, w in val_sets.items()
                          for key, v in evaluate(model, w, byte_lengths).items()}
        run.save()
    print(f"{stage.name}: " + "  ".join(f"{name} {entry['final'][name + '_bpb']:.4f} bpb" for name in val_sets))


def main() -> None:
    args, recipe = parse(Args, RECIPES)
    torch.set_num_threads(recipe.threads)
    device = training_device(args.device)
    from transformers import AutoTokenizer, Gemma4ForCausalLM, set_seed

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    streams = load_streams(args.data, tokenizer)
    for name, s in streams.items():
        print(f"{name:12s} {len(s):>10,d} tokens")
    seq_len = recipe.stages[0].train.seq_len
    val_sets = {kind: eval_windows(streams[f"{kind}_val"], seq_len) for kind in ("prose", "code")}
    set_seed(recipe.stages[0].train.seed)  # the model's initial weights
    model = Gemma4ForCausalLM(target_config(len(tokenizer), **shape(recipe)))
    model.config.use_cache = True  # training passes use_cache=False explicitly; generation wants it
    model.to(device)
    run = Run(args.out, "scripts/train_target.py", args.recipe, recipe, device=device_name(device),
              params=sum(p.numel() for p in model.parameters()))
    print(f"target: {run.record['params']:,} parameters on {device}; recipe {args.recipe}")
    byte_lengths = bytes_per_token_table(tokenizer)
    for stage in recipe.stages:  # each from the weights the one before left, with a fresh optimizer
        train_stage(run, model, stage, recipe.stages[0], streams, tokenizer, val_sets, byte_lengths)
    final = args.out / "final"
    model.eval()
    model.save_pretrained(final)  # safetensors; the tokenizer travels with it for convenience
    tokenizer.save_pretrained(final)
    print(f"saved {final}")


if __name__ == "__main__":
    main()

"""Distil the pocket MTP drafter (`Gemma4AssistantForCausalLM`) from the frozen pocket target.

    python scripts/train_drafter.py --quick                 # <= 5 minutes on 2 CPU cores
    python scripts/train_drafter.py --recipe laptop         # ~70 minutes on 2 CPU cores (short of the bars)
    python scripts/train_drafter.py --recipe continued --init runs/drafter/short.pt --out runs/drafter2
    python scripts/build_pocket.py --force    # target, then the shipped drafter's chain of runs, measured

The recipes and their stages are data: pocketbuild/recipes/drafter.py. Runs on a GPU when there is
one (`--device`, default `auto`), else on the CPU. Four steps, each resumable from `<out>/`:
1. data: the target writes continuations of training-text prompts, greedy and sampled at
   temperature 0.8, plus untouched training text (`<out>/data.pt`, extended when a later run asks
   for more prompts); the drafter must serve both decoding modes.
2. distillation: the recipe's stages in order (labkit.distill, as notebook 07 trains), each from
   the weights the one before left: the drafter runs exactly as at inference from every position.
3. centroids: tokens are grouped into 64 equal clusters by output embedding and the centroid
   head learns which clusters hold the target's probability (E2B/E4B's ordered embeddings).
4. calibration: one factor on the drafter's logits, fitted on fresh sampled continuations to
   maximise the drafts lossless sampling keeps (distill.logit_scale); no argmax moves.

Writes `<out>/final/` (safetensors) and `<out>/record.json`. Weights go to data/pocket/drafter/ only
once the pair passes its bars (`scripts/measure_pocket.py`).
"""

from __future__ import annotations

import functools
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit import distill  # noqa: E402
from labkit.fit import TrainConfig  # noqa: E402
from labkit.pocket import HEAD_DIM, NUM_ASSISTANT_TOKENS, TARGET_DIR, TOKENIZER_DIR, drafter_config  # noqa: E402
from pocketbuild.corpus import tokenize_jsonl  # noqa: E402
from pocketbuild.drafter import balanced_clusters, calib_rows, centroid_loss, make_data, row_mode, short_rows  # noqa: E402
from pocketbuild.recipes.drafter import CONTINUING, RECIPES, DrafterRecipe  # noqa: E402
from pocketbuild.runs import Run, RunArgs, device_name, parse, training_device  # noqa: E402


@dataclass
class Args(RunArgs):
    init: Path | None = field(default=None, metadata={
        "help": "start from this drafter checkpoint (an earlier run's <stage>.pt); its data.pt is reused"})
    target: Path = field(default=TARGET_DIR, metadata={"help": "the target to distil from"})
    out: Path = REPO / "runs" / "drafter"
    data: Path = REPO / "build" / "pocket_data"
    device: str = field(default="auto", metadata={"help": "auto (a GPU if there is one), cpu, cuda, ..."})


def rows(run: Run, target, streams, recipe: DrafterRecipe, init: Path | None) -> dict[str, torch.Tensor]:
    """Step 1: the training, held-out, short-prompt and calibration rows, written once and kept in
    `<out>/data.pt` (the target is frozen, so they never need redoing on resume)."""
    path = run.out / "data.pt"
    if not path.exists() and init is not None and (init.parent / "data.pt").exists():
        shutil.copyfile(init.parent / "data.pt", path)
    data = torch.load(path) if path.exists() else {}
    have = len(data.get("train", ()))
    wanted = {
        "train": lambda: torch.cat([data["train"], make_data(target, streams(), recipe, "train", recipe.prompts,
                                                             recipe.seed, start=have)]) if have else
        make_data(target, streams(), recipe, "train", recipe.prompts, recipe.seed),
        # held-out rows: greedy continuations, half prose, half code, whatever gen_batch is
        "val": lambda: make_data(target, streams(), replace(recipe, gen_batch=recipe.eval_sequences // 2), "val",
                                 recipe.eval_sequences, recipe.seed + 1),
        "short": lambda: short_rows(target, streams(), recipe, recipe.seed + 1000),
        "calib": lambda: calib_rows(target, streams(), recipe, recipe.seed + 2000),
    }
    for name, make in wanted.items():
        if name not in data or (name == "train" and recipe.prompts > have):
            data[name] = make()
            torch.save(data, path)
            run.write({"kind": "data", name: list(data[name].shape)})
    return data


def centroids(run: Run, drafter, views: distill.CachedViews, recipe: DrafterRecipe) -> None:
    """Step 3: cluster the vocabulary, then train the centroid head alone (cheap: the body is frozen)."""
    emb = drafter.masked_embedding
    emb.token_ordering.copy_(balanced_clusters(drafter.lm_head.weight, emb.num_centroids))
    drafter.requires_grad_(False)
    emb.centroids.requires_grad_(True)

    def loss_at(step: int) -> tuple[torch.Tensor, dict]:
        g = torch.Generator().manual_seed(recipe.seed * 104729 + step)
        loss, coverage = centroid_loss(drafter, views[torch.randint(0, len(views), (recipe.batch,), generator=g)],
                                       recipe.k)
        return loss, {"coverage": coverage}

    # torch's AdamW defaults at a constant lr, unclipped: a single small layer needs no more
    cfg = TrainConfig(steps=recipe.centroid_steps, lr=1e-2, warmup=0, min_lr_ratio=1.0, weight_decay=0.01,
                      beta2=0.999, grad_clip=float("inf"), seed=recipe.seed)
    run.stage("centroids", drafter, cfg, loss_at)


def main() -> None:
    args, recipe = parse(Args, RECIPES)
    if args.recipe in CONTINUING and args.init is None:
        sys.exit(f"--recipe {args.recipe} goes on from a drafter: give --init <run>/short.pt")
    if args.init is not None and not args.init.is_file():
        sys.exit(f"--init {args.init}: no such checkpoint (train_drafter.py writes <out>/<stage>.pt)")
    if recipe.width % HEAD_DIM:
        sys.exit(f"--width {recipe.width}: use a multiple of {HEAD_DIM} (the head size)")
    torch.set_num_threads(recipe.threads)
    from transformers import AutoTokenizer, Gemma4AssistantForCausalLM, Gemma4ForCausalLM, set_seed

    device = training_device(args.device)
    # fp32 as the lab runs it, also from a bf16 export (from_pretrained would keep bf16)
    target = Gemma4ForCausalLM.from_pretrained(args.target, dtype=torch.float32).eval().requires_grad_(False).to(device)
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    streams = functools.cache(lambda: {  # the text as token streams, only once the target must write rows
        f"{kind}_{split}": tokenize_jsonl(args.data / f"{kind}_{split}.jsonl", tokenizer,
                                          cache=args.data / f"{kind}_{split}.tokens")
        for kind in ("prose", "code") for split in ("train", "val")})
    set_seed(recipe.seed)
    drafter = Gemma4AssistantForCausalLM(drafter_config(
        target.config, hidden_size=recipe.width, intermediate_size=recipe.mlp,
        num_attention_heads=recipe.width // HEAD_DIM)).to(device)
    drafter.generation_config.num_assistant_tokens = NUM_ASSISTANT_TOKENS
    drafter.generation_config.num_assistant_tokens_schedule = "constant"
    run = Run(args.out, "scripts/train_drafter.py", args.recipe, recipe, init=args.init, target=args.target,
              device=device_name(device), params=sum(p.numel() for p in drafter.parameters()))
    if args.init is not None and not (run.out / f"{recipe.stages[0].name}.pt").exists():
        drafter.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=False)["model"])
    data = rows(run, target, streams, recipe, args.init)

    # Step 2. The target's views of every row, once (~4.2 GB for 10,240 rows of the 24-layer target).
    n_train = len(data["train"])
    views = distill.CachedViews(target, torch.cat([data["train"], data["short"]]), batch=64)
    continuations = torch.tensor([i for i in range(n_train) if row_mode(i, recipe) != "text"])
    subsets = {"all": torch.arange(n_train), "continuations": continuations,
               "short": torch.cat([continuations, torch.arange(n_train, len(views))])}
    firsts = {"start": 0, "prompt": recipe.prompt_len - 1, "short_prompt": recipe.short_prompt_len - 1}
    drafter.masked_embedding.requires_grad_(False)  # the centroid head: step 3
    done = 0
    for stage in recipe.stages:
        loss_at = distill.step_loss(drafter, target, views.subset(subsets[stage.rows]), k=recipe.k,
                                    batch=recipe.batch, seed=recipe.seed + stage.seed,
                                    first=firsts[stage.rounds_from], hard=stage.hard)
        cfg = TrainConfig(steps=stage.steps, lr=stage.lr, warmup=stage.warmup, seed=recipe.seed + stage.seed)
        run.stage(stage.name, drafter, cfg, loss_at, offset=done)
        done += stage.steps
    drafter.eval()
    run.save(agreement_full_head=distill.agreement(target, drafter, data["val"], recipe.k, ordered=False))

    centroids(run, drafter, views.subset(subsets["all"]), recipe)
    drafter.eval()
    run.save(agreement_centroid_head=distill.agreement(target, drafter, data["val"], recipe.k, ordered=True))

    # Step 4: the logit scale for sampled drafting; argmaxes do not move.
    scale, table = distill.logit_scale(target, drafter, data["calib"], NUM_ASSISTANT_TOKENS,
                                       recipe.calib_temperature, ordered=True, first=recipe.prompt_len - 1)
    with torch.no_grad():
        drafter.lm_head.weight.mul_(scale)
    record = run.save(calibration={"temperature": recipe.calib_temperature, "scale": scale, "table": table})
    print(f"held-out agreement, full head {record['agreement_full_head']}, centroid head "
          f"{record['agreement_centroid_head']}; logit scale {scale}: expected accepted drafts at "
          f"T={recipe.calib_temperature}, k={NUM_ASSISTANT_TOKENS}: {table.get(1.0)} at 1.0 -> {table[scale]}")
    drafter.save_pretrained(args.out / "final")
    print(f"saved {args.out / 'final'}")


if __name__ == "__main__":
    main()

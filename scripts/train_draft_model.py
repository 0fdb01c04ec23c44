"""Train the pocket draft model: a small independent `Gemma4ForCausalLM` distilled from the pocket target.

    python scripts/train_draft_model.py --quick         # a minute or two on 2 CPU cores: the path runs
    nohup python scripts/train_draft_model.py > runs/draft_model/stdout.log 2>&1 &   # the full recipe

The recipe is data: pocketbuild/recipes/draft_model.py. Steps, each resumable from `<out>/`:
1. rows: the target continues training-text prompts greedily and sampled at temperature 0.8, plus
   untouched text (pocketbuild.drafter.make_data, as for the MTP drafter), kept in `<out>/data.pt`;
2. distil: the target's top tokens at every position are computed once; then, at every position,
   KL(target || draft model) over them plus a cross-entropy on the target's argmax, with
   labkit.fit's loop (the target never runs during training);
3. measure: held-out agreement with the target's argmax, then `labkit bench` of greedy and sampled
   speculative decoding on held-out prompts (transformers' `assistant_model=` and the glass box's
   IndependentDrafter), against the target alone and against the pair's MTP drafter.
Writes `<out>/final/` and `<out>/record.json`. Weights go to data/pocket/draft_model/ only once they
pass the bars in pocketbuild/recipes/draft_model.py's card.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit.pocket import DRAFTER_DIR, HEAD_DIM, TARGET_DIR, TOKENIZER_DIR, target_config  # noqa: E402
from pocketbuild.corpus import tokenize_jsonl  # noqa: E402
from pocketbuild.drafter import make_data  # noqa: E402
from pocketbuild.recipes.draft_model import BARS, RECIPES, DraftModelRecipe  # noqa: E402
from pocketbuild.runs import Run, RunArgs, device_name, parse, training_device  # noqa: E402


@dataclass
class Args(RunArgs):
    install: bool = field(default=False, metadata={"help": "copy it to data/pocket/draft_model if it passes its bars"})
    target: Path = field(default=TARGET_DIR, metadata={"help": "the target to distil from"})
    drafter: Path = field(default=DRAFTER_DIR, metadata={"help": "the target's MTP drafter, which the bench compares with"})
    out: Path = REPO / "runs" / "draft_model"
    data: Path = REPO / "build" / "pocket_data"
    device: str = field(default="auto", metadata={"help": "auto (a GPU if there is one), cpu, cuda, ..."})


def draft_model(vocab_size: int, recipe: DraftModelRecipe):
    from transformers import Gemma4ForCausalLM

    if recipe.width % HEAD_DIM or recipe.layers < 1:
        sys.exit(f"--width {recipe.width}: a multiple of {HEAD_DIM}; --layers {recipe.layers}: at least 1")
    model = Gemma4ForCausalLM(target_config(
        vocab_size, num_hidden_layers=recipe.layers, hidden_size=recipe.width, intermediate_size=recipe.mlp,
        num_attention_heads=recipe.width // HEAD_DIM,
        layer_types=["sliding_attention"] * (recipe.layers - 1) + ["full_attention"]))
    model.config.use_cache = True
    return model


@torch.no_grad()
def soft_targets(target, rows: torch.Tensor, top: int, batch: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """The target's `top` most likely next tokens at every position of rows (n, T), once: their
    log-probabilities (n, T, top) float16 and ids (n, T, top), best first. Training then never runs
    the target (its forward was ~95 % of a step's time on 2 CPU cores)."""
    device = next(target.parameters()).device
    values, ids = [], []
    for i in range(0, len(rows), batch):
        log_p = target(input_ids=rows[i : i + batch].to(device), use_cache=False).logits.float().log_softmax(-1)
        v, j = log_p.topk(top, dim=-1)
        values.append(v.half().cpu())
        ids.append(j.to(torch.int16 if log_p.shape[-1] <= 32767 else torch.int32).cpu())
    return torch.cat(values), torch.cat(ids)


def distill_loss(model, rows: torch.Tensor, log_p: torch.Tensor, ids: torch.Tensor, hard: float
                 ) -> tuple[torch.Tensor, dict]:
    """KL(target || model) over the target's top tokens (renormalised) at every position of rows
    (B, T), plus `hard` x the cross-entropy on the target's argmax; and how often the model's
    argmax is the target's."""
    log_q = model(input_ids=rows, use_cache=False).logits.float().log_softmax(-1)
    ids = ids.long()
    p = log_p.float().softmax(-1)  # (B, T, top), renormalised over the top tokens
    kl = (p * (p.clamp_min(1e-12).log() - log_q.gather(-1, ids))).sum(-1).mean()
    ce = -log_q.gather(-1, ids[..., :1]).mean()
    return kl + hard * ce, {"kl": kl.item(), "agree": (log_q.argmax(-1) == ids[..., 0]).float().mean().item()}


@torch.no_grad()
def measure(target, model, recipe: DraftModelRecipe, val: torch.Tensor, args: Args) -> dict:
    """Held-out agreement, then `labkit bench` of this model against the pair's MTP drafter, greedy
    and sampled, on held-out prose and code prompts (transformers' path and the glass box)."""
    from labkit.bench import bench
    from labkit.generation import load_prompts
    from labkit.loading import load_pair

    device = next(model.parameters()).device
    log_p, ids = soft_targets(target, val, 1)
    agree = [distill_loss(model, val[i : i + 16].to(device), log_p[i : i + 16].to(device), ids[i : i + 16].to(device),
                          0.0)[1]["agree"] for i in range(0, len(val), 16)]
    # the pair whose target this model drafts for: the shipped pocket pair unless --target names another
    default = (Path(args.target), Path(args.drafter)) == (TARGET_DIR, DRAFTER_DIR)
    pair = load_pair() if default else load_pair(args.target, args.drafter)
    model = model.to(pair.device, pair.dtype)
    prompts = load_prompts("prose", recipe.eval_prompts) + load_prompts("code", recipe.eval_prompts)
    out: dict = {"agreement": round(sum(agree) / len(agree), 4), "prompts": len(prompts), "k": 4}
    for name, temperature in (("greedy", 0.0), ("sample_0.8", 0.8)):
        ours, mtp = (bench(pair, prompts, method=method, draft_model=model if method == "draft-model" else None,
                           max_new_tokens=64, temperature=temperature, progress=False)
                     for method in ("draft-model", "mtp"))
        out[name] = {"tau": ours["tau"], "tau_glassbox": ours["tau_glassbox"], "speedup": ours["speedup"],
                     "speedup_glassbox": ours["speedup_glassbox"], "tau_mtp": mtp["tau"], "speedup_mtp": mtp["speedup"],
                     "identical": ours["identical"] if temperature == 0 else None}
    return out


def main() -> None:
    args, recipe = parse(Args, RECIPES)
    torch.set_num_threads(recipe.threads)
    from transformers import AutoTokenizer, Gemma4ForCausalLM, set_seed

    device = training_device(args.device)
    target = Gemma4ForCausalLM.from_pretrained(args.target, dtype=torch.float32).eval().requires_grad_(False).to(device)
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    set_seed(recipe.seed)
    model = draft_model(target.config.vocab_size, recipe).to(device)
    run = Run(args.out, "scripts/train_draft_model.py", args.recipe, recipe, target=args.target,
              device=device_name(device), params=sum(p.numel() for p in model.parameters()))
    path = args.out / "data.pt"
    if path.exists():
        data = torch.load(path)
    else:
        streams = {f"{kind}_{split}": tokenize_jsonl(args.data / f"{kind}_{split}.jsonl", tokenizer,
                                                     cache=args.data / f"{kind}_{split}.tokens")
                   for kind in ("prose", "code") for split in ("train", "val")}
        data = {"train": make_data(target, streams, recipe, "train", recipe.prompts, recipe.seed),
                "val": make_data(target, streams, recipe, "val", recipe.eval_sequences, recipe.seed + 1)}
        torch.save(data, path)

    if "soft" not in data:
        data["soft"] = soft_targets(target, data["train"], recipe.top)
        torch.save(data, path)
    log_p, ids = data["soft"]

    def loss_at(step: int) -> tuple[torch.Tensor, dict]:
        g = torch.Generator().manual_seed(recipe.seed * 7919 + step)
        pick = torch.randint(0, len(data["train"]), (recipe.train.batch,), generator=g)
        return distill_loss(model, data["train"][pick].to(device), log_p[pick].to(device), ids[pick].to(device),
                            recipe.hard)

    run.stage("distil", model, recipe.train, loss_at)
    model.eval().to(torch.bfloat16).save_pretrained(args.out / "final")  # shipped as bf16, run in the pair's dtype
    model = model.float()
    record = run.save(metrics=measure(target, model, recipe, data["val"], args))
    bars = check_bars(record, args.out / "final" / "model.safetensors")
    record = run.save(bars=bars)
    print(json.dumps(record["metrics"], indent=1))
    if args.install:
        install(args.out / "final", record)


def check_bars(record: dict, weights: Path) -> dict:
    m = record["metrics"]
    values = {"megabytes": round(weights.stat().st_size / 1e6, 2), "identical_greedy": m["greedy"]["identical"],
              "speedup_greedy": m["greedy"]["speedup"]}
    return {name: {"rule": f"{op} {bar}", "value": values[name], "pass": passes(values[name], op, bar)}
            for name, (op, bar) in BARS.items()}


def passes(value, op: str, bar) -> bool:
    return {"<=": value <= bar, ">=": value >= bar, "==": value == bar}[op]


def install(final: Path, record: dict) -> None:
    """data/pocket/draft_model/: a full model only past its bars (with its card), a quick one always."""
    from labkit.pocket import DRAFT_MODEL_DIR
    from pocketbuild import cards

    full = record["recipe_name"] != "quick"
    if full and not all(b["pass"] for b in record["bars"].values()):
        sys.exit(f"not installed: {record['bars']}")
    shutil.rmtree(DRAFT_MODEL_DIR, ignore_errors=True)
    shutil.copytree(final, DRAFT_MODEL_DIR)
    (DRAFT_MODEL_DIR / "BUILD.json").write_text(json.dumps(
        {"recipe": record["recipe_name"], "built_by": "scripts/train_draft_model.py"}, indent=1) + "\n")
    if full:
        (DRAFT_MODEL_DIR / "metrics.json").write_text(json.dumps(record["metrics"], indent=1) + "\n")
        (DRAFT_MODEL_DIR / "MODEL_CARD.md").write_text(
            cards.render("draft_model.md.jinja", record=record, bars=record["bars"]))
    print(f"installed the {record['recipe_name']} pocket draft model in {DRAFT_MODEL_DIR}")


if __name__ == "__main__":
    main()

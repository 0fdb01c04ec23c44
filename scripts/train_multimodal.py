"""Train the pocket multimodal pair: a small Gemma 4 target that captions pictures and beeps, and its drafter.

    python scripts/train_multimodal.py --quick --install   # a placeholder pair, ~20 min on 2 CPU cores
    python scripts/train_multimodal.py --install           # the full recipe (~60 min on 2 CPU cores)
    python scripts/train_multimodal.py --recipe video-pages --out runs/pocket-video-pages --install
                                          # continues the shipped pair on clips and pages in one run
                                          # (~1 h 50 min on 2 CPU cores; its runs so far: docs/measured.md)

The recipe and its stages are data (pocketbuild/recipes/multimodal.py); the steps and the held-out
measurement are pocketbuild/multimodal.py. In order, each resumable from `<out>/`:
1. processor: the pocket tokenizer with Gemma 4's named media tokens, Gemma 4's image and audio
   processor settings, a chat template with image, audio and video items (`labkit.media`);
2. the stages: the towers learn what pictures and sounds hold; the target
   (`Gemma4ForConditionalGeneration`, towers frozen) learns to answer questions about them; the
   drafter (`Gemma4AssistantForCausalLM`) is distilled from the frozen target;
3. measure: held-out accuracy per modality and question, and whether greedy decoding with the
   drafter gives the target's own tokens, into `<out>/record.json`.

Writes `<out>/target/final` (model + processor + tokenizer) and `<out>/drafter/final`. `--install`
copies them to data/pocket/multimodal/ with BUILD.json and metrics.json: the full recipe only once it
passes its bars (then with MODEL_CARD.md, rendered from the record, to be committed), the quick
recipe always, labelled "quick" (`make pocket` does this on a fresh clone until the full pair ships).
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
from labkit import media, pocket, synthetic  # noqa: E402
from labkit.fit import TrainConfig  # noqa: E402
from pocketbuild import cards, multimodal  # noqa: E402
from pocketbuild.recipes.multimodal import RECIPES, REQUIRED_ACCURACY, MultimodalRecipe, Stage  # noqa: E402
from pocketbuild.runs import Run, RunArgs, parse  # noqa: E402


@dataclass
class Args(RunArgs):
    out: Path | None = field(default=None, metadata={"help": "work folder (default: build/pocket_multimodal[_quick])"})
    install: bool = field(default=False, metadata={
        "help": f"copy the finals to {pocket.MULTIMODAL_DIR} if they pass their bars"})


def new_target(processor, seed: int):
    from transformers import Gemma4ForConditionalGeneration, set_seed

    set_seed(seed)
    target = Gemma4ForConditionalGeneration(pocket.multimodal_config(processor.tokenizer))
    # transformers initialises the patch position table to ones: a constant that drowns the
    # patch content of a small tower trained from scratch. Small random values instead.
    with torch.no_grad():
        target.model.vision_tower.patch_embedder.position_embedding_table.normal_(0, 0.02)
    target.generation_config.eos_token_id = [processor.tokenizer.eos_token_id,
                                             processor.tokenizer.convert_tokens_to_ids("<turn|>")]
    target.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    return target


def load_with_window(cls, folder: Path, window: int):
    """`cls.from_pretrained(folder)`, its sliding window set to `window` (0: as saved). Attention
    layers read the window when built, so it goes into the config before loading."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    if window:
        config.get_text_config().sliding_window = window
    return cls.from_pretrained(folder, config=config)


def asked(recipe: MultimodalRecipe) -> tuple[str, ...]:
    """The families the target learns, in the lab's order: what its checks and measurement ask."""
    return tuple(f for f in media.FAMILY_INPUT if f in recipe.families)


def train_stage(run: Run, stage: Stage, recipe: MultimodalRecipe, target, drafter, processor) -> None:
    cfg = TrainConfig(steps=stage.steps, lr=stage.lr, warmup=recipe.warmup, seed=recipe.seed,
                      ckpt_every=stage.ckpt_every, log_every=stage.log_every, eval_every=stage.eval_every)
    if stage.trains == "drafter":
        run.stage(stage.name, drafter, cfg, multimodal.drafter_loss(
            target, drafter, processor, recipe.batch, recipe.k, recipe.seed, stage.families or ("image", "audio")))
        return
    if stage.trains == "target":
        for tower, embed in multimodal.towers(target).values():  # the language model reads them as they are
            tower.requires_grad_(False)
            embed.requires_grad_(False)
        loss_at = multimodal.target_loss(target, processor, recipe.batch, stage.families or recipe.families,
                                          dict(stage.pool), stage.first)
        run.stage(stage.name, target, cfg, loss_at,
                  evaluate=lambda: multimodal.answer_check(target, processor, asked(recipe)))
        return
    modality = "image" if stage.trains == "vision tower" else "audio"
    families = stage.families or (modality,)  # e.g. pages in turn with pictures: one throwaway head each
    torch.manual_seed(recipe.seed)
    heads = {f: multimodal.tower_head(target, f) for f in families}
    tower, embed = multimodal.towers(target)[modality]
    named = {"head": heads[modality]} if len(heads) == 1 else {f"head_{f}": h for f, h in heads.items()}
    parts = torch.nn.ModuleDict({"tower": tower, "embed": embed, **named})  # one head: "head", as before
    losses = [multimodal.tower_loss(target, heads[f], processor, f, recipe.batch) for f in families]
    check = (lambda: multimodal.reading_check(target, heads["document"], processor)) if "document" in heads else None
    run.stage(stage.name, parts, cfg, lambda step: losses[step % len(losses)](step), evaluate=check)


def main() -> None:
    args, recipe = parse(Args, RECIPES)
    torch.set_num_threads(recipe.threads)
    out = args.out or REPO / "build" / ("pocket_multimodal" if args.recipe == "full" else f"pocket_multimodal_{args.recipe}")
    run = Run(out, "scripts/train_multimodal.py", args.recipe, recipe)
    from transformers import Gemma4AssistantForCausalLM, Gemma4ForConditionalGeneration

    final_t, final_d = out / "target" / "final", out / "drafter" / "final"
    processor = multimodal.multimodal_processor(out / "processor", recipe.digits_apart)
    trained_t = (final_t / "model.safetensors").exists()
    init = REPO / recipe.init if recipe.init else None
    if trained_t or init:
        target = load_with_window(Gemma4ForConditionalGeneration, final_t if trained_t else init / "target",
                                  recipe.sliding_window).eval()
    else:
        target = new_target(processor, recipe.seed)
    if init and not trained_t:  # a resumed stage's checkpoint already holds these
        multimodal.soften_attention(target, recipe.attention_scale)
        multimodal.set_apart(target, processor.tokenizer, recipe.apart, recipe.seed)
    drafter = load_with_window(Gemma4AssistantForCausalLM, final_d, recipe.sliding_window).eval() \
        if (final_d / "model.safetensors").exists() else None
    fresh_drafter = init is None
    if init and (init / "LINEAGE.json").exists():  # a folder put together from earlier runs: the card names them
        run.save(lineage=json.loads((init / "LINEAGE.json").read_text()))
    last_target = [s for s in recipe.stages if s.trains == "target"][-1:]  # a saved final skips them all
    for stage in recipe.stages:
        if stage.trains == "drafter":
            if drafter is not None:
                continue
            target.eval().requires_grad_(False)
            torch.manual_seed(recipe.seed)
            if fresh_drafter:
                drafter = Gemma4AssistantForCausalLM(pocket.multimodal_drafter_config(target.config))
                drafter.generation_config = pocket.drafter_generation_config(target.generation_config)
            else:  # the pair it continues from: its drafter goes on learning
                drafter = load_with_window(Gemma4AssistantForCausalLM, init / "drafter", recipe.sliding_window)
        elif trained_t:
            continue
        train_stage(run, stage, recipe, target, drafter, processor)
        if stage in last_target:
            target.eval().save_pretrained(final_t)
            for f in (out / "processor").iterdir():  # as written, before training set padding on its tokenizer
                shutil.copy2(f, final_t / f.name)
    drafter.eval().save_pretrained(final_d)
    metrics = multimodal.measure(target, drafter, processor, recipe.eval_samples, families=asked(recipe))
    record = run.save(metrics=metrics, models={"target": cards.model_facts(target),
                                               "drafter": cards.model_facts(drafter)})
    print(json.dumps(metrics, indent=1))
    if args.install:
        install(final_t, final_d, record)


def install(final_t: Path, final_d: Path, record: dict) -> None:
    """Copy the finals to data/pocket/multimodal/: a full pair only past its bars, a quick one always."""
    metrics, name = record["metrics"], record["recipe_name"]
    families = [f for f in media.FAMILY_INPUT if f in metrics["accuracy"]]
    passed = (min(metrics["accuracy"][f] for f in families) >= REQUIRED_ACCURACY
              and metrics["greedy_identical_with_drafter"])
    if not name.endswith("quick") and not passed:
        sys.exit(f"not installed: accuracy {metrics['accuracy']} / identical "
                 f"{metrics['greedy_identical_with_drafter']} miss the bars")
    dest = pocket.MULTIMODAL_DIR
    for src, dst in ((final_t, dest / "target"), (final_d, dest / "drafter")):
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
    (dest / "metrics.json").write_text(json.dumps({**metrics, "recipe": name}, indent=1) + "\n")
    (dest / "BUILD.json").write_text(json.dumps({"recipe": name, "built_by": "scripts/train_multimodal.py"},
                                                indent=1) + "\n")
    if not name.endswith("quick"):
        (dest / "MODEL_CARD.md").write_text(card(record))
    print(f"installed the {name} pocket multimodal pair in {dest}")


def card(record: dict) -> str:
    """MODEL_CARD.md for data/pocket/multimodal, rendered from the run's record."""
    resumed = [f"{name} at step {at}" for name, s in record["stages"].items() for at in s.get("resumed_at", [])]
    return cards.render("multimodal.md.jinja", record=record, resumed=resumed, lineage=record.get("lineage", {}), held_out=synthetic.HELD_OUT,
                        earlier=RECIPES["full"], measured=sum(n for key, n in record["metrics"]["samples"].items()
                                                              if ":" not in key),
                        questions={"image": list(synthetic.IMAGE_QUESTIONS), "audio": list(synthetic.AUDIO_QUESTIONS),
                                   "clip": list(synthetic.CLIP_QUESTIONS),
                                   "document": [synthetic.DOCUMENT_QUESTIONS[0].format(n="n"),
                                                synthetic.DOCUMENT_QUESTIONS[1]],
                                   "table": synthetic.TABLE_QUESTION.format(r="r", c="c")})


if __name__ == "__main__":
    main()

"""Train the pocket multimodal pair: a small Gemma 4 target that captions pictures and beeps, and its drafter.

    python scripts/train_multimodal.py --quick --install   # a placeholder pair, ~7 min on 2 CPU cores
    python scripts/train_multimodal.py --install           # the full recipe (~25 min on 2 CPU cores)

Stages, each resumable from `<out>/`:
1. processor: the pocket tokenizer with Gemma 4's named media tokens (`<|video|>` takes the id of
   `<unused0>`, reserved for it), Gemma 4's image and audio processor settings, a chat template
   with image and audio items (`labkit.media`).
2. towers: the target's vision and audio towers first learn what pictures and sounds hold, through
   throwaway linear heads (what each picture soft token shows; the pitch of a beep), as Gemma 4's
   encoders were pretrained before its language model read them.
3. target: `Gemma4ForConditionalGeneration` (`labkit.pocket.multimodal_config`), towers frozen, learns
   to answer questions about synthetic pictures and beeps (`labkit.synthetic`); the loss covers the answer.
4. drafter: `Gemma4AssistantForCausalLM` distilled from the frozen target exactly as it runs at
   inference (`labkit.distill`), on the target's own greedy and sampled (T = 0.8) answers, whose
   prompts hold the image or audio soft tokens the drafter attends to through the target's K/V.
5. measure: held-out accuracy (exact answers, greedy) per modality and question, which parts of
   wrong descriptions are right, and whether greedy decoding with the drafter gives the target's own
   tokens; written to `<out>/metrics.json`.

Writes `<out>/target/final` (model + processor + tokenizer) and `<out>/drafter/final`. `--install`
copies them to data/pocket/multimodal/ with BUILD.json and metrics.json: the full recipe only once it
passes its bars (then with MODEL_CARD.md, to be committed), the quick recipe always, labelled
"quick" (`make pocket` does this on a fresh clone until the full pair ships).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit import distill, pocket, synthetic  # noqa: E402
from pocketbuild.train import (  # noqa: E402
    TrainConfig, load_checkpoint, lr_factor, make_optimizer, save_checkpoint,
)


@dataclass(frozen=True)
class Recipe:
    target_steps: int = 2400  # optimizer steps for the target
    vision_tower_steps: int = 600  # tower pretraining, before the target learns to read the towers
    audio_tower_steps: int = 300  # a label per soft token of a beep sequence (single beeps, pooled: 150)
    drafter_steps: int = 400  # distillation steps
    batch: int = 16  # samples per step, all of one modality (two picture steps, then a sound step)
    lr: float = 5e-4  # a quarter of the text pocket's: at its 2e-3 the towers never told pictures apart
    drafter_lr: float = 1e-3
    warmup: int = 50
    k: int = 5  # drafting steps trained per anchor (the lab's default k is 4)
    eval_samples: int = 100  # held-out samples per modality for the accuracy report
    threads: int = 2
    seed: int = 0


FULL = Recipe()
QUICK = replace(FULL, target_steps=450, vision_tower_steps=100, audio_tower_steps=40, drafter_steps=80,
                eval_samples=20)
MODALITIES = ("image", "image", "audio")  # step i trains on MODALITIES[i % 3]: pictures are harder
AUDIO_MS_PER_TOKEN = 40  # Gemma 4's audio tower: one soft token per 40 ms
REQUIRED_ACCURACY = 0.9  # issue "Multimodal demos": captions right on >= 90% of held-out samples


# ---------------------------------------------------------------- samples


def prompt_text(processor, modality: str, question: str) -> str:
    item = {"type": modality}
    return processor.apply_chat_template(
        [{"role": "user", "content": [item, {"type": "text", "text": question}]}],
        tokenize=False, add_generation_prompt=True)


def encode(processor, modality: str, items: list, texts: list[str], padding_side: str = "right") -> dict:
    processor.tokenizer.padding_side = padding_side
    kw = {"images": [[i] for i in items]} if modality == "image" else {"audio": items}
    batch = processor(text=texts, return_tensors="pt", **kw)
    batch.pop("mm_token_type_ids", None)
    return dict(batch)


def answer_weight(ids: torch.Tensor, attention: torch.Tensor, model_turn: list[int]) -> torch.Tensor:
    """(B, T): 1 at positions whose next token belongs to the answer (after '<|turn>model\\n')."""
    w = torch.zeros_like(ids, dtype=torch.float32)
    n = len(model_turn)
    for b in range(ids.shape[0]):
        row = ids[b].tolist()
        start = max(i for i in range(len(row) - n + 1) if row[i : i + n] == model_turn) + n
        end = int(attention[b].sum())  # right padding: real tokens first
        w[b, start - 1 : end - 1] = 1.0
    return w


def media_kwargs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")}


def resumable(model, cfg: TrainConfig, out: Path, stage: str, write):
    """AdamW + cosine schedule for `model`, resumed from `<out>/ckpt.pt` if a run left one:
    (optimizer, scheduler, checkpoint path, step to start from)."""
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    out.mkdir(parents=True, exist_ok=True)
    ckpt, step = out / "ckpt.pt", 0
    if ckpt.exists():
        step = load_checkpoint(ckpt, model, optimizer, scheduler)
        write({"kind": "resume", "stage": stage, "step": step})
    return optimizer, scheduler, ckpt, step


def optimizer_step(loss, params, optimizer, scheduler, clip: float) -> None:
    """Backward, clip the global gradient norm, step the optimizer and its schedule (every stage)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()
    scheduler.step()


# ---------------------------------------------------------------- stage 2: towers


def towers(target) -> dict[str, tuple]:
    """Each modality's tower and the embedder that projects its soft tokens to the text width."""
    m = target.model
    return {"image": (m.vision_tower, m.embed_vision), "audio": (m.audio_tower, m.embed_audio)}


def train_towers(target, processor, recipe: Recipe, out: Path, write) -> None:
    """Each tower first learns what its input holds, through a linear head on its soft tokens that
    is thrown away afterwards, as Gemma 4's encoders were pretrained before its language model read
    them. Measured: trained only through the language model's answers, the towers never learned
    shapes or pitch (held-out captions: shapes 5/50, pitches 14/50, colours and positions 50/50).
    Vision: every soft token names what its centre shows (background, or colour and shape:
    `synthetic.draw_scene(labels=True)`); audio: every soft token of a sequence of beeps names what
    its 40 ms hold (silence, or a beep's pitch: `synthetic.render_beeps(labels=True)`). Measured: with
    the mean of a single beep's soft tokens naming its pitch instead, the target got 100 % of beep
    counts but only 76 % of pitch sequences right (it heard pitch, not *when*)."""
    import random

    import numpy as np
    from tqdm.auto import tqdm

    m = target.model
    width = target.config.get_text_config().hidden_size
    for modality, steps in (("image", recipe.vision_tower_steps), ("audio", recipe.audio_tower_steps)):
        tower, embed = towers(target)[modality]
        torch.manual_seed(recipe.seed)
        head = torch.nn.Linear(width, 1 + len(synthetic.PARTS) if modality == "image" else 1 + len(synthetic.PITCHES))
        parts = torch.nn.ModuleDict({"tower": tower, "embed": embed, "head": head})
        cfg = TrainConfig(steps=steps, lr=recipe.lr, warmup=recipe.warmup, seed=recipe.seed)
        optimizer, scheduler, ckpt, step = resumable(parts, cfg, out / modality, f"{modality} tower", write)
        bar = tqdm(total=steps, initial=step, desc=f"{modality} tower")
        while step < steps:
            rng = random.Random(f"tower {modality} {step}")
            if modality == "image":
                drawn = [synthetic.draw_scene(synthetic.random_scene(rng), rng, labels=True) for _ in range(recipe.batch)]
                pixels = processor.image_processor([image for image, _ in drawn], return_tensors="pt")
                tokens = m.get_image_features(pixels["pixel_values"], pixels["image_position_ids"],
                                              return_dict=True).pooler_output
                tokens = torch.cat(list(tokens)) if isinstance(tokens, (tuple, list)) else tokens
                tokens = tokens.reshape(recipe.batch, -1, tokens.shape[-1])  # (B, soft tokens, width)
                side = int(tokens.shape[1] ** 0.5)  # soft tokens form a side x side grid, row by row
                cell = synthetic.IMAGE_SIZE // side
                labels = torch.tensor(np.stack([np.asarray(lab)[cell // 2 :: cell, cell // 2 :: cell].flatten()
                                                for _, lab in drawn])).long()
                loss = F.cross_entropy(head(tokens).flatten(0, 1), labels.flatten())
            else:
                drawn = [synthetic.render_beeps(synthetic.random_beeps(rng), rng, labels=True)
                         for _ in range(recipe.batch)]
                feats = processor.feature_extractor([wave for wave, _ in drawn], sampling_rate=synthetic.SAMPLE_RATE,
                                                    return_tensors="pt")
                audio = m.get_audio_features(feats["input_features"], feats["input_features_mask"], return_dict=True)
                tokens, valid = audio.pooler_output, audio.attention_mask  # (B, soft tokens, width), (B, soft tokens)
                hop = synthetic.SAMPLE_RATE * AUDIO_MS_PER_TOKEN // 1000  # samples per soft token
                labels = torch.full(valid.shape, -100, dtype=torch.long)  # -100: padding, not scored
                for b, (_, marks) in enumerate(drawn):
                    centres = marks[hop // 2 :: hop][: valid.shape[1]]
                    labels[b, : len(centres)] = torch.from_numpy(centres)
                labels[~valid.bool()] = -100
                loss = F.cross_entropy(head(tokens).flatten(0, 1), labels.flatten(), ignore_index=-100)
            optimizer_step(loss, parts.parameters(), optimizer, scheduler, cfg.grad_clip)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if step % 10 == 0:
                write({"kind": "train", "stage": f"{modality} tower", "step": step, "loss": loss.item()})
            if step % 100 == 0 or step == steps:
                save_checkpoint(ckpt, parts, optimizer, scheduler, step, cfg)
        bar.close()


# ---------------------------------------------------------------- stage 3: target


def train_target(model, processor, recipe: Recipe, out: Path, write) -> None:
    from tqdm.auto import tqdm

    cfg = TrainConfig(steps=recipe.target_steps, lr=recipe.lr, warmup=recipe.warmup, seed=recipe.seed)
    optimizer, scheduler, ckpt, step = resumable(model, cfg, out, "target", write)
    model_turn = processor.tokenizer.encode("<|turn>model\n", add_special_tokens=False)
    model.train()
    bar = tqdm(total=cfg.steps, initial=step, desc="target")
    while step < cfg.steps:
        modality = MODALITIES[step % len(MODALITIES)]
        rows = [synthetic.example(1 + step * recipe.batch + i, modality) for i in range(recipe.batch)]
        texts = [prompt_text(processor, modality, r.question) + r.answer + "<turn|>\n" for r in rows]
        batch = encode(processor, modality, [r.item for r in rows], texts)
        ids = batch["input_ids"]
        w = answer_weight(ids, batch["attention_mask"], model_turn)
        logits = model(**batch, use_cache=False).logits.float()
        ce = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
        loss = (ce * w[:, :-1].flatten()).sum() / w.sum()
        optimizer_step(loss, model.parameters(), optimizer, scheduler, cfg.grad_clip)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", modality=modality)
        if step % 5 == 0:  # 5 and 3 are coprime: every modality gets logged
            write({"kind": "train", "stage": "target", "step": step, "modality": modality, "loss": loss.item()})
        if step % 100 == 0 or step == cfg.steps:
            save_checkpoint(ckpt, model, optimizer, scheduler, step, cfg)
    bar.close()
    model.eval()


# ---------------------------------------------------------------- stage 4: drafter


@torch.no_grad()
def target_answers(target, processor, modality: str, rows: list, sampled: bool) -> dict:
    """The target's own answers to `rows`, as right-padded model inputs with the answer region."""
    prompts = [prompt_text(processor, modality, r.question) for r in rows]
    batch = encode(processor, modality, [r.item for r in rows], prompts, padding_side="left")
    out = target.generate(**batch, max_new_tokens=20, do_sample=sampled, top_k=0,
                          temperature=0.8 if sampled else None)
    texts = processor.tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    full = [p + t.strip() + "<turn|>\n" for p, t in zip(prompts, texts)]
    return encode(processor, modality, [r.item for r in rows], full)


def train_drafter(target, drafter, processor, recipe: Recipe, out: Path, write) -> None:
    from tqdm.auto import tqdm

    cfg = TrainConfig(steps=recipe.drafter_steps, lr=recipe.drafter_lr, warmup=recipe.warmup, seed=recipe.seed)
    optimizer, scheduler, ckpt, step = resumable(drafter, cfg, out, "drafter", write)
    model_turn = processor.tokenizer.encode("<|turn>model\n", add_special_tokens=False)
    drafter.train()
    bar = tqdm(total=cfg.steps, initial=step, desc="drafter")
    while step < cfg.steps:
        modality = ("image", "audio")[step % 2]
        sampled = (step // 2) % 2 == 1  # greedy and T = 0.8 answers, both modalities
        torch.manual_seed(recipe.seed * 7919 + step)
        rows = [synthetic.example(5_000_000 + step * recipe.batch + i, modality) for i in range(recipe.batch)]
        batch = target_answers(target, processor, modality, rows, sampled)
        w = answer_weight(batch["input_ids"], batch["attention_mask"], model_turn)
        view = distill.target_view(target, batch["input_ids"], **media_kwargs(batch))
        loss, agree = distill.distill_loss(drafter, view, recipe.k, weight=w)
        optimizer_step(loss, drafter.parameters(), optimizer, scheduler, 1.0)
        step += 1
        bar.update(1)
        bar.set_postfix(kl=f"{loss.item():.3f}", agree1=f"{agree[0]:.2f}")
        if step % 10 == 0:
            write({"kind": "train", "stage": "drafter", "step": step, "modality": modality,
                   "sampled": sampled, "kl": loss.item(), "agree": agree})
        if step % 50 == 0 or step == cfg.steps:
            save_checkpoint(ckpt, drafter, optimizer, scheduler, step, cfg)
    bar.close()
    drafter.eval()


# ---------------------------------------------------------------- stage 5: measure


@torch.no_grad()
def measure(target, drafter, processor, n: int, k: int = 4) -> dict:
    """On n held-out samples per modality, greedy, k drafts per round: exact-answer accuracy per
    modality and question, whether the drafter changes any token, tau and acceptance by position."""
    from tqdm.auto import tqdm

    from labkit import metrics
    from labkit.trace import Decoding
    from labkit.tracing import trace_generate

    per: dict[str, list[bool]] = {}
    parts: dict[str, list[bool]] = {}
    traces: dict[str, list] = {}
    identical, wrong, seconds = True, [], {"plain": 0.0, "drafter": 0.0}
    eos = target.generation_config.eos_token_id
    for modality in ("image", "audio"):
        for i in tqdm(range(n), desc=f"held-out {modality}"):
            ex = synthetic.example(synthetic.HELD_OUT + i, modality)
            batch = encode(processor, modality, [ex.item], [prompt_text(processor, modality, ex.question)])
            ids = batch.pop("input_ids")
            batch.pop("attention_mask")
            common = dict(eos_token_id=eos, pad_token_id=0, **batch)
            greedy = Decoding(k=k, max_new_tokens=20)
            plain = trace_generate(target, None, ids, greedy, **common)
            spec = trace_generate(target, drafter, ids, greedy, **common)
            identical &= plain.new_ids == spec.new_ids
            seconds["plain"] += plain.wall
            seconds["drafter"] += spec.wall
            text = processor.tokenizer.decode(list(plain.new_ids), skip_special_tokens=True).strip()
            ok = text == ex.answer
            for key in (modality, f"{modality}: {ex.question}"):
                per.setdefault(key, []).append(ok)
                traces.setdefault(key, []).append(spec)
            if ex.question in (synthetic.IMAGE_QUESTIONS[0], synthetic.AUDIO_QUESTIONS[0]):
                for part, right in ex.truth.parts_right(text).items():  # where wrong captions go wrong
                    parts.setdefault(f"{modality}: {part}", []).append(right)
            if not ok and len(wrong) < 10:
                wrong.append({"modality": modality, "question": ex.question, "expected": ex.answer, "got": text})
    return {
        "accuracy": {key: round(sum(v) / len(v), 4) for key, v in per.items()},
        "samples": {key: len(v) for key, v in per.items()},
        "caption_parts": {key: round(sum(v) / len(v), 4) for key, v in parts.items()},
        "greedy_identical_with_drafter": bool(identical), "k": k,
        "tau": {key: round(metrics.tau(v), 3) for key, v in traces.items()},
        "acceptance_by_position": {key: [round(a, 3) for a in metrics.acceptance_by_position(v)]
                                   for key, v in traces.items()},
        "speedup": round(seconds["plain"] / seconds["drafter"], 3),
        "examples_wrong": wrong,
    }


def model_card(target, drafter, metrics: dict, recipe: Recipe) -> str:
    """MODEL_CARD.md for data/pocket/multimodal, every figure from `metrics` (measured just now)."""
    def n(module) -> str:
        return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f}M"

    def kinds(layer_types) -> str:
        return "[" + ", ".join(t.split("_")[0] for t in layer_types) + "]"

    text, vision, audio = (target.config.get_text_config(), target.config.vision_config,
                           target.config.audio_config)
    d = drafter.config.get_text_config()
    acc = "\n".join(f"| {key} | {metrics['samples'][key]} | {metrics['accuracy'][key]:.1%} | "
                    f"{metrics['tau'][key]:.2f} | {', '.join(f'{a:.2f}' for a in metrics['acceptance_by_position'][key])} |"
                    for key in metrics["accuracy"])
    return f"""# Pocket multimodal pair

A small Gemma 4 target that reads pictures and hears sounds, with its MTP drafter, trained in this
repository on a CPU by `scripts/train_multimodal.py` (recipe "{metrics['recipe']}"; runs resumed:
{', '.join(metrics.get('resumed', [])) or 'none'}; each resume keeps the optimizer and re-spreads the cosine
schedule over the new step count).
Written by that script from the measurements below; do not edit by hand.

## Models
- **Target** `Gemma4ForConditionalGeneration`, {n(target)} parameters: text decoder {n(target.model.language_model)}
  ({text.num_hidden_layers} layers {kinds(text.layer_types)}, width {text.hidden_size}, sliding window
  {text.sliding_window}), vision tower {n(target.model.vision_tower)} ({vision.num_hidden_layers} layers, width
  {vision.hidden_size}, {vision.patch_size}-pixel patches pooled {vision.pooling_kernel_size} x {vision.pooling_kernel_size}),
  audio tower {n(target.model.audio_tower)} ({audio.num_hidden_layers} conformer layers, width {audio.hidden_size}).
- **Drafter** `Gemma4AssistantForCausalLM`, {n(drafter)} parameters: {d.num_hidden_layers} layers {kinds(d.layer_types)},
  width {d.hidden_size}, reading the target's K/V; full output head (no centroids: 4,096 tokens).
- **Processor**: the pocket tokenizer with Gemma 4's named media tokens, Gemma 4's image processor
  settings at the 70-token budget (a picture = 64 soft tokens) and its audio feature extractor
  (16 kHz, 128 mel bins; one soft token per 40 ms). Built by `labkit.media` without the video
  processor, which needs torchvision.
- Weights are float32 safetensors; load with `labkit.load_pair("pocket-multimodal")`.

## Data
Synthetic and generated on the fly by `labkit.synthetic` (no external data, nothing to license):
pictures of two coloured shapes (4 colours of the Okabe-Ito palette, circle / square / triangle,
"left of" or "above"), and sequences of 1 to 4 low (330 Hz) or high (880 Hz) beeps with a little
hiss. Questions: {list(synthetic.IMAGE_QUESTIONS)} and {list(synthetic.AUDIO_QUESTIONS)}.
Training uses example indices below {synthetic.HELD_OUT:,}; held-out ones start there.

## Recipe
Towers: {recipe.vision_tower_steps} steps for the vision tower (a label for every soft token: background or
which coloured shape), {recipe.audio_tower_steps} for the audio tower (a label for every soft token of a beep sequence: silence, low or high), each through
a linear head thrown away afterwards; then frozen.
Target: {recipe.target_steps} AdamW steps of {recipe.batch} samples (two steps of pictures, then one of
sounds), cross-entropy on the answer tokens only, lr {recipe.lr} with warm-up and cosine decay; the
vision tower's patch position table starts small and random (transformers starts it at ones).
Drafter: {recipe.drafter_steps} distillation steps, KL to the frozen target over {recipe.k} drafting steps
from every answer position, exactly as it drafts at inference (`labkit.distill`), on the target's
own greedy and sampled (T = 0.8) answers.

## Measured on {sum(metrics['samples'][m] for m in ('image', 'audio'))} held-out samples (greedy, k = {metrics['k']}, 2 CPU threads)
| subset | samples | exact answers | tau | acceptance by draft position |
|---|---|---|---|---|
{acc}

- Parts of the descriptions that are right (colours, shapes and relation of a picture; pitches and
  number of beeps of a sound): {', '.join(f'{key} {v:.0%}' for key, v in metrics['caption_parts'].items())}.
- Greedy output with the drafter identical to the target's own on every sample:
  **{metrics['greedy_identical_with_drafter']}**.
- Wall clock, target alone / with the drafter, summed over all samples: **{metrics['speedup']:.2f}x**
  (20-token answers: the prefill with its towers is the same for both and dominates).
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few minutes on 2 CPU cores")
    ap.add_argument("--out", type=Path, help="work folder (default: build/pocket_multimodal[_quick])")
    ap.add_argument("--install", action="store_true",
                    help=f"copy the finals to {pocket.MULTIMODAL_DIR} if they pass their bars")
    steps = ("target_steps", "vision_tower_steps", "audio_tower_steps", "drafter_steps", "eval_samples")
    for name in steps:
        ap.add_argument("--" + name.replace("_", "-"), type=int, help="override the recipe")
    args = ap.parse_args()
    recipe = QUICK if args.quick else FULL
    recipe = replace(recipe, **{n: getattr(args, n) for n in steps if getattr(args, n) is not None})
    torch.set_num_threads(recipe.threads)
    out = args.out or REPO / "build" / ("pocket_multimodal_quick" if args.quick else "pocket_multimodal")
    (out / "target").mkdir(parents=True, exist_ok=True)
    log = open(out / "log.jsonl", "a")

    def write(record: dict) -> None:
        log.write(json.dumps(record) + "\n")
        log.flush()

    from transformers import Gemma4AssistantForCausalLM, Gemma4ForConditionalGeneration

    t0 = time.time()
    write({"kind": "config", **asdict(recipe)})
    final_t, final_d = out / "target" / "final", out / "drafter" / "final"
    processor = pocket.multimodal_processor(out / "processor")
    if (final_t / "model.safetensors").exists():
        target = Gemma4ForConditionalGeneration.from_pretrained(final_t).eval()
    else:
        torch.manual_seed(recipe.seed)
        target = Gemma4ForConditionalGeneration(pocket.multimodal_config(processor.tokenizer))
        # transformers initialises the patch position table to ones: a constant that drowns the
        # patch content of a small tower trained from scratch. Small random values instead.
        with torch.no_grad():
            target.model.vision_tower.patch_embedder.position_embedding_table.normal_(0, 0.02)
        target.generation_config.eos_token_id = [processor.tokenizer.eos_token_id,
                                                 processor.tokenizer.convert_tokens_to_ids("<turn|>")]
        target.generation_config.pad_token_id = processor.tokenizer.pad_token_id
        write({"kind": "params", "target": sum(p.numel() for p in target.parameters())})
        train_towers(target, processor, recipe, out / "towers", write)
        for tower, embed in towers(target).values():  # the language model learns to read them as they are
            tower.requires_grad_(False)
            embed.requires_grad_(False)
        train_target(target, processor, recipe, out / "target", write)
        target.save_pretrained(final_t)
        for f in (out / "processor").iterdir():  # as written, before training set padding on its tokenizer
            shutil.copy2(f, final_t / f.name)
    target.requires_grad_(False)
    if (final_d / "model.safetensors").exists():
        drafter = Gemma4AssistantForCausalLM.from_pretrained(final_d).eval()
    else:
        torch.manual_seed(recipe.seed)
        drafter = Gemma4AssistantForCausalLM(pocket.multimodal_drafter_config(target.config))
        drafter.generation_config = pocket.drafter_generation_config(target.generation_config)
        write({"kind": "params", "drafter": sum(p.numel() for p in drafter.parameters())})
        (out / "drafter").mkdir(exist_ok=True)
        train_drafter(target, drafter, processor, recipe, out / "drafter", write)
        drafter.save_pretrained(final_d)
    metrics = measure(target, drafter, processor, recipe.eval_samples)
    metrics["minutes"] = round((time.time() - t0) / 60, 1)  # this invocation only
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]
    metrics["resumed"] = [f"{r['stage']} at step {r['step']}" for r in records if r.get("kind") == "resume"]
    metrics["recipe"] = "quick" if args.quick else "full"
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    write({"kind": "metrics", **metrics})
    print(json.dumps(metrics, indent=1))
    if args.install:
        install(final_t, final_d, target, drafter, metrics, recipe)


def install(final_t: Path, final_d: Path, target, drafter, metrics: dict, recipe: Recipe) -> None:
    """Copy the finals to data/pocket/multimodal/: a full pair only past its bars, a quick one always."""
    passed = (min(metrics["accuracy"]["image"], metrics["accuracy"]["audio"]) >= REQUIRED_ACCURACY
              and metrics["greedy_identical_with_drafter"])
    if metrics["recipe"] == "full" and not passed:
        sys.exit(f"not installed: accuracy {metrics['accuracy']} / identical "
                 f"{metrics['greedy_identical_with_drafter']} miss the bars")
    dest = pocket.MULTIMODAL_DIR
    for src, dst in ((final_t, dest / "target"), (final_d, dest / "drafter")):
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
    (dest / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    (dest / "BUILD.json").write_text(json.dumps(
        {"recipe": metrics["recipe"], "built_by": "scripts/train_multimodal.py"}, indent=1) + "\n")
    if metrics["recipe"] == "full":
        (dest / "MODEL_CARD.md").write_text(model_card(target, drafter, metrics, recipe))
    print(f"installed the {metrics['recipe']} pocket multimodal pair in {dest}")


if __name__ == "__main__":
    main()

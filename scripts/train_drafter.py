"""Distil the pocket MTP drafter (`Gemma4AssistantForCausalLM`) from the frozen pocket target.

    python scripts/train_drafter.py --quick            # <= 5 minutes on 2 CPU cores
    python scripts/train_drafter.py --laptop           # ~70 minutes on 2 CPU cores (short of the bars)
    python scripts/train_drafter.py --continued --init runs/drafter/short.pt --out runs/drafter2   # ~90 more
    python scripts/build_pocket.py --force    # target, then the shipped drafter's chain of runs, measured
    nohup nice -n 10 python scripts/train_drafter.py > runs/drafter/stdout.log 2>&1 &   # the full recipe

Runs on a GPU when there is one (`--device`, default `auto`), else on the CPU: the same recipe.

Four stages, each resumable from `<out>/`:
1. data: the target writes continuations of training-text prompts, greedy and sampled at
   temperature 0.8, plus untouched training text; the drafter must serve both decoding modes.
2. distil: the drafter runs exactly as at inference (labkit.distill.draft_steps) from every
   position at once and learns the target's next-token distributions, k steps ahead; then a
   second, shorter cosine (a warm restart at half the learning rate) goes on from those weights,
   because agreement was still rising when the first schedule ran out; a third ("focus") trains
   only the rounds inference runs: on the target's continuations, from the prompt's last token on;
   a fourth ("focus2") repeats it at half its learning rate with a cross-entropy on the target's
   argmax (all greedy drafting needs) added to the KL; a fifth ("short") adds the target's greedy
   continuations of short prompts, like the lab's, and rounds from their 16th token on, with the
   same cross-entropy. It sharpens q: stage 4 gives sampling back what that costs it.
3. centroids: tokens are grouped into 64 equal clusters by output embedding and the centroid
   head learns which clusters hold the target's probability (E2B/E4B's ordered embeddings).
4. calibration: one factor on the drafter's logits, fitted on fresh sampled continuations to
   maximise the drafts that lossless sampling at temperature 0.8 keeps (distill.logit_scale);
   a positive factor moves no argmax, so greedy drafting is exactly as trained.

Writes `<out>/final/` (safetensors). Weights go to data/pocket/drafter/ only once the pair passes
its bars (`scripts/measure_pocket.py`).
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit import distill  # noqa: E402
from labkit.pocket import HEAD_DIM, NUM_ASSISTANT_TOKENS, TARGET_DIR, TOKENIZER_DIR, drafter_config  # noqa: E402
from pocketbuild.drafter import balanced_clusters, centroid_loss  # noqa: E402
from pocketbuild.train import device_name, random_windows, tokenize_jsonl, training_device  # noqa: E402


@dataclass(frozen=True)
class DrafterRecipe:
    k: int = 5  # steps trained per anchor: one more than the lab's default 4, so k sweeps work
    prompts: int = 8192  # continuation prompts (a third greedy, a third sampled, a third text)
    prompt_len: int = 48  # tokens of training text before the target continues
    new_tokens: int = 112  # tokens the target writes per prompt
    gen_batch: int = 64  # prompts generated at once (plain generate batches fine); consecutive pairs of
    # batches (prose, code) cycle through greedy, sampled and plain text
    steps: int = 1100  # distillation steps
    batch: int = 16  # sequences per distillation step
    lr: float = 2e-3
    warmup: int = 50
    polish_steps: int = 1000  # the warm restart: more distillation steps from the weights above
    polish_lr: float = 1e-3  # its peak learning rate (warm-up 20 steps, cosine down to a tenth)
    focus_steps: int = 1200  # then steps on continuation rounds only (no plain text, no prompt rounds)
    focus_lr: float = 5e-4  # its peak learning rate (warm-up 20 steps, cosine down to a tenth)
    focus2_steps: int = 1200  # the same rounds again, a last warm restart
    focus2_lr: float = 2.5e-4  # its peak learning rate: half the focus stage's (warm-up 20, cosine to a tenth)
    focus2_hard: float = 1.0  # its argmax cross-entropy (see short_hard): greedy tau binds the speedup
    short_prompt_len: int = 16  # the lab's prompts are short (14-59 tokens): rounds from position 16 on
    short_prompts: int = 2048  # greedy continuations of such prompts (half prose, half code) for the last stage
    short_steps: int = 600  # the last stage: those rows and the continuations of `prompts`
    short_lr: float = 2.5e-4  # its peak learning rate (warm-up 20, cosine to a tenth)
    short_hard: float = 1.0  # weight of its cross-entropy on the target's argmax (distill.distill_loss);
    # it sharpens q, which costs sampled drafting: the calibration stage gives that back
    centroid_steps: int = 150  # steps for the centroid head (drafter frozen)
    calib_prompts: int = 64  # sampled continuations (training prompts, new samples) that fit the logit scale
    calib_temperature: float = 0.8  # the sampling temperature it is fitted for: the bars' and the lab's
    eval_sequences: int = 96  # held-out sequences for the agreement report
    width: int = 256  # drafter hidden size, a multiple of 64 (heads are 64 wide); E2B's assistant's too
    mlp: int = 512  # drafter MLP width
    threads: int = 2
    seed: int = 0


FULL = DrafterRecipe()
# About an hour of a 2-core CPU: half the prompts, the first cosine, then the two stages with the
# argmax cross-entropy, which move greedy tau most. Short of the bars alone (docs/pocket-history.md).
LAPTOP = replace(FULL, prompts=4096, gen_batch=512, steps=650, polish_steps=0, focus_steps=0, focus2_steps=350,
                 focus2_lr=5e-4, short_steps=350)
# Goes on from a LAPTOP drafter (`--continued --init <run>/short.pt`), ~90 more minutes of 2 cores:
# the target writes as many prompts again (rows already written are reused), then a warm restart at
# half the first lr on all rows, focus2 and short again. The shipped drafter's chain continues from
# it (build_pocket.py's DRAFTER_RECIPES["chain"]).
CONTINUED = replace(LAPTOP, prompts=8192, steps=1000, lr=1e-3, warmup=20, focus2_steps=700, short_steps=600)
# QUICK: under 5 min on 2 cores against the shipped 24-layer target.
QUICK = replace(FULL, prompts=192, new_tokens=80, gen_batch=64, steps=50, batch=16, polish_steps=20,
                focus_steps=20, focus2_steps=20, short_prompts=64, short_steps=20, centroid_steps=40,
                calib_prompts=8, eval_sequences=32, width=128)


def row_mode(i: int, recipe: DrafterRecipe) -> str:
    """How row i of `make_data` was written: batches alternate prose and code, pairs of batches
    cycle through greedy, sampled and plain text."""
    return ("greedy", "sample", "text")[(i // (2 * recipe.gen_batch)) % 3]


def bos_prompts(target, stream, n: int, length: int, g: torch.Generator) -> torch.Tensor:
    """(n, length): random windows of a training stream, each starting with <bos> as the lab's prompts do."""
    prompts = random_windows(stream, n, length - 1, g)
    prompts[:, 0] = target.config.bos_token_id
    return prompts


def make_data(target, streams, recipe: DrafterRecipe, split: str, n: int, seed: int, start: int = 0) -> torch.Tensor:
    """(n - start, prompt_len + new_tokens) token ids: rows start..n-1 of target continuations and plain
    training text (start > 0 extends rows already written; a multiple of gen_batch)."""
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed + start)
    length = recipe.prompt_len + recipe.new_tokens
    rows = []
    for i in tqdm(range(start, n, recipe.gen_batch), desc=f"{split} data"):
        m = min(recipe.gen_batch, n - i)
        kind = "prose" if (i // recipe.gen_batch) % 2 == 0 else "code"
        mode = row_mode(i, recipe)
        stream = streams[f"{kind}_{split}"]
        if mode == "text":
            rows.append(random_windows(stream, m, length - 1, g))
            continue
        prompts = bos_prompts(target, stream, m, recipe.prompt_len, g).to(target.device)
        torch.manual_seed(seed + i)
        out = target.generate(
            prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=recipe.new_tokens,
            min_new_tokens=recipe.new_tokens, do_sample=mode == "sample",
            temperature=0.8 if mode == "sample" else None, top_k=0 if mode == "sample" else None,
            pad_token_id=0,
        )
        rows.append(out[:, :length].cpu())
    return torch.cat(rows)


def short_rows(target, streams, recipe: DrafterRecipe, seed: int) -> torch.Tensor:
    """(short_prompts, prompt_len + new_tokens): the target's greedy continuations of training-text
    prompts of short_prompt_len tokens from <bos>, half prose then half code."""
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    new_tokens = recipe.prompt_len + recipe.new_tokens - recipe.short_prompt_len
    rows = []
    for kind in ("prose", "code"):
        for _ in tqdm(range(0, recipe.short_prompts // 2, recipe.gen_batch), desc=f"short {kind} prompts"):
            prompts = bos_prompts(target, streams[f"{kind}_train"], recipe.gen_batch, recipe.short_prompt_len, g)
            rows.append(distill.continuations(target, prompts, new_tokens))
    return torch.cat(rows)


def calib_rows(target, streams, recipe: DrafterRecipe, seed: int) -> torch.Tensor:
    """(calib_prompts, prompt_len + new_tokens): the target's continuations of training-text prompts
    sampled at calib_temperature, half prose then half code (fresh samples, not training rows)."""
    g = torch.Generator().manual_seed(seed)
    half = recipe.calib_prompts // 2
    rows = []
    for n, kind in enumerate(("prose", "code")):
        prompts = bos_prompts(target, streams[f"{kind}_train"], half, recipe.prompt_len, g)
        rows.append(distill.continuations(target, prompts, recipe.new_tokens, recipe.calib_temperature,
                                          seed=seed + n))
    return torch.cat(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="<= 5 minutes on 2 CPU cores")
    ap.add_argument("--laptop", action="store_true", help="~70 minutes on 2 CPU cores (LAPTOP)")
    ap.add_argument("--continued", action="store_true",
                    help="~90 more minutes on 2 CPU cores from a LAPTOP drafter (CONTINUED; needs --init)")
    ap.add_argument("--init", type=Path, help="start from this drafter checkpoint (an earlier run's "
                    "<stage>.pt); that run's data.pt is reused and extended to --prompts")
    ap.add_argument("--target", type=Path, default=TARGET_DIR, help="the target to distil from (default: "
                    "the pocket target; the build passes its own)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "drafter")
    ap.add_argument("--data", type=Path, default=REPO / "build" / "pocket_data")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--polish-steps", type=int, help="warm-restart steps after --steps (0: none)")
    ap.add_argument("--focus-steps", type=int, help="continuation-only steps after those (0: none)")
    ap.add_argument("--focus2-steps", type=int, help="continuation-only steps at half that lr (0: none)")
    ap.add_argument("--short-steps", type=int, help="steps with continuations of short prompts added (0: none)")
    ap.add_argument("--batch", type=int, help="sequences per distillation step")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--prompts", type=int, help="continuation prompts written by the target")
    ap.add_argument("--width", type=int, help="drafter hidden size, a multiple of 64")
    ap.add_argument("--mlp", type=int, help="drafter MLP width")
    ap.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, ...")
    args = ap.parse_args()
    if args.quick + args.laptop + args.continued > 1:
        ap.error("one of --quick, --laptop, --continued")
    if args.continued and args.init is None:
        ap.error("--continued goes on from a drafter: give --init <run>/short.pt")
    if args.init is not None and not args.init.is_file():
        ap.error(f"--init {args.init}: no such checkpoint (train_drafter.py writes <out>/<stage>.pt)")
    recipe = QUICK if args.quick else LAPTOP if args.laptop else CONTINUED if args.continued else FULL
    recipe = replace(recipe, **{k: getattr(args, k) for k in ("steps", "polish_steps", "focus_steps", "focus2_steps",
                                                              "short_steps",
                                                              "batch", "threads", "prompts", "width", "mlp")
                                if getattr(args, k) is not None})
    if recipe.width % HEAD_DIM:
        ap.error(f"--width {recipe.width}: use a multiple of {HEAD_DIM} (the head size)")
    torch.set_num_threads(recipe.threads)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "log.jsonl", "a")

    def write(record: dict) -> None:
        log.write(json.dumps(record) + "\n")
        log.flush()

    from transformers import AutoTokenizer, Gemma4AssistantForCausalLM, Gemma4ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    device = training_device(args.device)
    # fp32 as the lab runs it, also from a bf16 export (from_pretrained would keep bf16)
    target = Gemma4ForCausalLM.from_pretrained(args.target, dtype=torch.float32).eval().requires_grad_(False).to(device)

    @functools.cache
    def streams() -> dict:
        """The training text as token streams, only once the target must write rows from it."""
        return {f"{kind}_{split}": tokenize_jsonl(args.data / f"{kind}_{split}.jsonl", tokenizer,
                                                  cache=args.data / f"{kind}_{split}.tokens")
                for kind in ("prose", "code") for split in ("train", "val")}

    # Stage 1: data (cached; the target is frozen, so it never needs redoing on resume).
    data_file = out / "data.pt"
    if not data_file.exists() and args.init is not None and (args.init.parent / "data.pt").exists():
        shutil.copyfile(args.init.parent / "data.pt", data_file)
        write({"kind": "data", "copied_from": str(args.init.parent / "data.pt")})
    if data_file.exists():
        data = torch.load(data_file)
        have = len(data["train"])
        if recipe.prompts > have:  # more prompts than were written: the target writes the rest
            t0 = time.time()
            data["train"] = torch.cat([data["train"], make_data(target, streams(), recipe, "train", recipe.prompts,
                                                                recipe.seed, start=have)])
            torch.save(data, data_file)
            write({"kind": "data", "train": list(data["train"].shape), "extended_from": have,
                   "seconds": time.time() - t0})
    else:
        t0 = time.time()
        data = {"train": make_data(target, streams(), recipe, "train", recipe.prompts, recipe.seed),
                # held-out rows: greedy continuations, half prose, half code, whatever gen_batch is
                "val": make_data(target, streams(), replace(recipe, gen_batch=recipe.eval_sequences // 2), "val",
                                 recipe.eval_sequences, recipe.seed + 1)}
        torch.save(data, data_file)
        write({"kind": "data", "train": list(data["train"].shape), "val": list(data["val"].shape),
               "seconds": time.time() - t0})
    if recipe.short_steps and "short" not in data:  # added to the recipe after data.pt existed
        t0 = time.time()
        data["short"] = short_rows(target, streams(), recipe, recipe.seed + 1000)
        torch.save(data, data_file)
        write({"kind": "data", "short": list(data["short"].shape), "seconds": time.time() - t0})

    # Stage 2: distillation, checkpointed and resumable (labkit.distill.fit, as in 07_train_a_drafter).
    torch.manual_seed(recipe.seed)
    drafter = Gemma4AssistantForCausalLM(drafter_config(
        target.config, hidden_size=recipe.width, intermediate_size=recipe.mlp,
        num_attention_heads=recipe.width // HEAD_DIM)).to(device)
    drafter.generation_config.num_assistant_tokens = NUM_ASSISTANT_TOKENS
    drafter.generation_config.num_assistant_tokens_schedule = "constant"
    ckpt = out / "ckpt.pt"
    if args.init is not None and not ckpt.exists():  # fit() resumes from ckpt.pt once it exists
        drafter.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=False)["model"])
        write({"kind": "init", "from": str(args.init)})
    if ckpt.exists():
        write({"kind": "resume", "step": torch.load(ckpt, map_location="cpu", weights_only=False)["step"]})
    # on resume too: a recipe changed between runs is then on record (model_card reads the last one)
    write({"kind": "config", **asdict(recipe), "init": None if args.init is None else str(args.init),
           "target": str(args.target),
           "params": sum(p.numel() for p in drafter.parameters()), "device": device_name(device)})
    from tqdm.auto import tqdm

    def progress(phase: str, offset: int):
        def every(step: int, kl: float, agree: list[float]) -> None:
            bar.n = step
            bar.set_postfix(kl=f"{kl:.3f}", agree1=f"{agree[0]:.2f}")  # also redraws the bar
            if step % 10 == 0:
                write({"kind": "train", "phase": phase, "step": offset + step, "kl": kl, "agree": agree})
        return every

    # The target's views of every training row, once (on the target's device; ~4.2 GB for 10,240
    # rows of a 16-layer target, as much for 24 layers): each step then runs the drafter only.
    n_train, extra = len(data["train"]), data.get("short", data["train"][:0])
    views = distill.CachedViews(target, torch.cat([data["train"], extra]), batch=64)
    train_views = views.subset(torch.arange(n_train))
    generated = torch.tensor([i for i in range(n_train) if row_mode(i, recipe) != "text"])
    short = torch.cat([generated, torch.arange(n_train, n_train + len(extra))])
    bar = tqdm(total=recipe.steps, desc="distil")
    distill.fit(drafter, target, train_views, steps=recipe.steps, k=recipe.k, batch=recipe.batch,
                lr=recipe.lr, warmup=recipe.warmup, seed=recipe.seed, every=progress("distil", 0),
                checkpoint=ckpt)
    bar.close()
    # Later cosines go on from the weights above, each with its own checkpoint file and row seed.
    later = [("polish", train_views, recipe.polish_steps, recipe.polish_lr, 0, 0.0),
             # the rounds inference runs: the target's continuations, from the prompt's last token on
             ("focus", views.subset(generated), recipe.focus_steps, recipe.focus_lr, recipe.prompt_len - 1, 0.0),
             ("focus2", views.subset(generated), recipe.focus2_steps, recipe.focus2_lr, recipe.prompt_len - 1,
              recipe.focus2_hard),
             # rounds from a short prompt's last token on; in the longer rows those start in the prompt
             ("short", views.subset(short), recipe.short_steps, recipe.short_lr, recipe.short_prompt_len - 1,
              recipe.short_hard)]
    done = recipe.steps
    for n, (phase, rows, steps, lr, first, hard) in enumerate(later, start=1):
        if steps:
            bar = tqdm(total=steps, desc=phase)
            distill.fit(drafter, target, rows, steps=steps, k=recipe.k, batch=recipe.batch, lr=lr,
                        warmup=20, seed=recipe.seed + n, every=progress(phase, done),
                        checkpoint=out / f"{phase}.pt", first=first, hard=hard)
            bar.close()
            done += steps
    drafter.eval()
    full_agree = distill.agreement(target, drafter, data["val"], recipe.k, ordered=False)
    write({"kind": "eval", "head": "full", "agree": full_agree})
    print("held-out agreement, full head:", full_agree)

    # Stage 3: the centroid head (cheap: the drafter body is frozen).
    emb = drafter.masked_embedding
    emb.token_ordering.copy_(balanced_clusters(drafter.lm_head.weight, emb.num_centroids))
    emb.centroids.weight.requires_grad_(True)
    opt = torch.optim.AdamW(emb.centroids.parameters(), lr=1e-2)
    for step in tqdm(range(recipe.centroid_steps), desc="centroids"):
        g = torch.Generator().manual_seed(recipe.seed * 104729 + step)
        view = train_views[torch.randint(0, len(train_views), (recipe.batch,), generator=g)]
        loss, coverage = centroid_loss(drafter, view, recipe.k)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 10 == 0:
            write({"kind": "centroids", "step": step + 1, "loss": loss.item(), "coverage": coverage})
    drafter.eval()
    ordered_agree = distill.agreement(target, drafter, data["val"], recipe.k, ordered=True)
    write({"kind": "eval", "head": "centroid", "agree": ordered_agree})
    print("held-out agreement, centroid head:", ordered_agree)

    # Stage 4: the logit scale for sampled drafting (distill.logit_scale); argmaxes do not move.
    if "calib" not in data:
        data["calib"] = calib_rows(target, streams(), recipe, recipe.seed + 2000)
        torch.save(data, data_file)
    scale, table = distill.logit_scale(target, drafter, data["calib"], NUM_ASSISTANT_TOKENS,
                                       recipe.calib_temperature, ordered=True, first=recipe.prompt_len - 1)
    with torch.no_grad():
        drafter.lm_head.weight.mul_(scale)
    write({"kind": "calibration", "temperature": recipe.calib_temperature, "scale": scale, "table": table})
    print(f"logit scale {scale}: expected accepted drafts at T={recipe.calib_temperature}, k={NUM_ASSISTANT_TOKENS}: "
          f"{table.get(1.0)} at 1.0 -> {table[scale]}")
    drafter.save_pretrained(out / "final")
    print(f"saved {out / 'final'}")


if __name__ == "__main__":
    main()

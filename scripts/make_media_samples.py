"""Write the shipped media samples: data/media/scene_*.png, beeps_*.wav, clip_*.gif, page_*.png and samples.json.

    python scripts/make_media_samples.py

Drawn by `labkit.synthetic` from held-out seeds (never trained on), so the answers in
samples.json are the truth the pocket multimodal target is checked against in `06_multimodal`.
Deterministic: rerunning rewrites identical files.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import soundfile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit import media, synthetic  # noqa: E402

OUT = REPO / "data" / "media"
N = 4  # samples per modality: enough to pick from, small enough to ship


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(N):
        rng = random.Random(2 * (synthetic.HELD_OUT + 500_000 + i))
        scene = synthetic.random_scene(rng)
        name = f"scene_{i}.png"
        synthetic.draw_scene(scene, rng).save(OUT / name, optimize=True)
        rows.append({"file": name, "modality": "image",
                     "answers": {q: scene.answer(q) for q in synthetic.IMAGE_QUESTIONS}})
    for i in range(N):
        rng = random.Random(2 * (synthetic.HELD_OUT + 500_000 + i) + 1)
        beeps = synthetic.random_beeps(rng)
        name = f"beeps_{i}.wav"
        soundfile.write(OUT / name, synthetic.render_beeps(beeps, rng), synthetic.SAMPLE_RATE, subtype="PCM_16")
        rows.append({"file": name, "modality": "audio",
                     "answers": {q: beeps.answer(q) for q in synthetic.AUDIO_QUESTIONS}})
    for i in range(N):  # clips as animated GIFs, a frame a second (the timestamps the target reads)
        ex = synthetic.example(synthetic.HELD_OUT + 500_000 + i, "clip")
        name = f"clip_{i}.gif"
        first, *rest = ex.item
        first.save(OUT / name, save_all=True, append_images=rest, duration=1000, loop=0, optimize=True)
        # a GIF writer merges identical neighbouring frames (two empty ones): such a seed cannot ship
        assert len(media.load_video(OUT / name)) == len(ex.item), f"{name}: frames merged"
        rows.append({"file": name, "modality": "clip",
                     "answers": {q: ex.truth.answer(q) for q in ex.truth.questions}})
    for i in range(N):
        ex = synthetic.example(synthetic.HELD_OUT + 500_000 + i, "document")
        name = f"page_{i}.png"
        ex.item.save(OUT / name, optimize=True)
        rows.append({"file": name, "modality": "document",
                     "answers": {q: ex.truth.answer(q) for q in ex.truth.questions}})
    (OUT / "samples.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {len(rows)} samples to {OUT}")


if __name__ == "__main__":
    main()

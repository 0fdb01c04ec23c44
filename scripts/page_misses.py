"""Where a pocket multimodal target goes wrong on numbers read off a page: of its wrong answers to
"What number is on line n?" and "... in row r, column c?", how many are another line's or cell's
number on the same page (the digits read, the place not) and how many share a digit in its place.

    python scripts/page_misses.py runs/pocket-video-pages/target/final --digits-apart

The pages are the held-out documents `pocketbuild.multimodal.measure` asks (seeds from
`synthetic.HELD_OUT`); the target alone, greedy. Figures from these runs: docs/measured.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labkit import synthetic  # noqa: E402
from pocketbuild import multimodal  # noqa: E402


def cells(truth) -> list[str]:
    """Every line's or cell's text on a page or table, in reading order."""
    rows = getattr(truth, "rows", None) or truth.lines
    return [c for row in rows for c in (row if isinstance(row, tuple) else (row,))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path, help="a target folder (Gemma4ForConditionalGeneration)")
    parser.add_argument("--n", type=int, default=100, help="held-out documents to ask (default 100)")
    parser.add_argument("--digits-apart", action="store_true", help="the pair writes numbers a digit a token")
    args = parser.parse_args()
    from transformers import Gemma4ForConditionalGeneration

    torch.set_num_threads(2)
    target = Gemma4ForConditionalGeneration.from_pretrained(args.target).eval()
    processor = multimodal.multimodal_processor(Path(tempfile.mkdtemp()) / "processor", args.digits_apart)
    tally: dict[str, list[int]] = {}
    for i in range(args.n):
        ex = synthetic.example(synthetic.HELD_OUT + i, "document")
        kind = "table cell" if "row" in ex.question else "number on a line" if "line" in ex.question else None
        if kind is None:
            continue
        batch = multimodal.encode(processor, "document", [ex.item],
                                  [multimodal.prompt_text(processor, "document", ex.question)])
        with torch.no_grad():
            out = target.generate(**batch, max_new_tokens=8, do_sample=False, pad_token_id=0,
                                  eos_token_id=target.generation_config.eos_token_id)
        got = processor.tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        asked, wrong, elsewhere, a_digit = tally.setdefault(kind, [0, 0, 0, 0])
        miss = got != ex.answer
        tally[kind] = [asked + 1, wrong + miss, elsewhere + (miss and got in cells(ex.truth)),
                       a_digit + (miss and len(got) == len(ex.answer) and any(a == b for a, b in zip(got, ex.answer)))]
    print(f"{'':18s} {'asked':>6s} {'wrong':>6s} {'another line/cell':>18s} {'a digit in place':>17s}")
    for kind, (asked, wrong, elsewhere, a_digit) in tally.items():
        print(f"{kind:18s} {asked:6d} {wrong:6d} {elsewhere:18d} {a_digit:17d}")


if __name__ == "__main__":
    main()

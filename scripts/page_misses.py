"""Where a pocket multimodal target goes wrong on numbers read off a page: of its wrong answers to
"What number is on line n?" and "... in row r, column c?", how many are another line's or cell's
number on the same page (the digits read, the place not) and how many share a digit in its place.

    python scripts/page_misses.py runs/pocket-video-pages/target/final

The pages are the held-out documents `pocketbuild.multimodal.measure` asks (seeds from
`synthetic.HELD_OUT`); the target alone, greedy, with the processor saved beside it. Figures from
these runs: docs/measured.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labkit import media, synthetic  # noqa: E402
from pocketbuild import multimodal  # noqa: E402


def cells(truth) -> list[str]:
    """Every line's or cell's text on a page or table, in reading order."""
    rows = getattr(truth, "rows", None) or truth.lines
    return [c for row in rows for c in (row if isinstance(row, tuple) else (row,))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path, help="a target folder (Gemma4ForConditionalGeneration and its processor)")
    parser.add_argument("--n", type=int, default=100, help="held-out documents to ask (default 100)")
    args = parser.parse_args()
    from transformers import Gemma4ForConditionalGeneration

    torch.set_num_threads(2)
    target = Gemma4ForConditionalGeneration.from_pretrained(args.target).eval()
    processor = media.processor_from_folder(args.target)
    tally: dict[str, list[int]] = {}
    for i in range(args.n):
        ex = synthetic.example(synthetic.HELD_OUT + i, "document")
        if ex.question == synthetic.DOCUMENT_QUESTIONS[1]:  # the boxed word: not a number
            continue
        kind = synthetic.question_kind(ex.question)
        got = multimodal.greedy_answer(target, processor, "document", ex)
        asked, wrong, elsewhere, a_digit = tally.setdefault(kind, [0, 0, 0, 0])
        miss = got != ex.answer
        tally[kind] = [asked + 1, wrong + miss, elsewhere + (miss and got in cells(ex.truth)),
                       a_digit + (miss and len(got) == len(ex.answer) and any(a == b for a, b in zip(got, ex.answer)))]
    print(f"{'':44s} {'asked':>6s} {'wrong':>6s} {'another line/cell':>18s} {'a digit in place':>17s}")
    for kind, (asked, wrong, elsewhere, a_digit) in tally.items():
        print(f"{kind:44s} {asked:6d} {wrong:6d} {elsewhere:18d} {a_digit:17d}")


if __name__ == "__main__":
    main()

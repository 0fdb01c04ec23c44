"""Where a pocket multimodal target goes wrong on numbers read off a page: of its wrong answers to
"What number is on line n?" and "... in row r, column c?", how many are another line's or cell's
number on the same page (the digits read, the place not) and how many share a digit in its place.

    python scripts/page_misses.py runs/pocket-video-pages/target/final
    python scripts/page_misses.py runs/pocket-video-pages/target/final --tables 50

With --tables N it asks every cell of the first N held-out tables instead and says where each answer
came from: the cell asked, the same row's other column, the other row, or nowhere on the table.

The pages are the held-out documents `pocketbuild.multimodal.measure` asks (seeds from
`synthetic.HELD_OUT`); the target alone, greedy, with the processor saved beside it. Figures from
these runs: docs/measured.md.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
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
    parser.add_argument("--tables", type=int, default=0, help="ask every cell of this many held-out tables instead")
    args = parser.parse_args()
    from transformers import Gemma4ForConditionalGeneration

    torch.set_num_threads(2)
    target = Gemma4ForConditionalGeneration.from_pretrained(args.target).eval()
    processor = media.processor_from_folder(args.target)
    if args.tables:
        return table_cells(target, processor, args.tables)
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


def table_cells(target, processor, n: int) -> None:
    """Every cell of the first `n` held-out tables asked in turn: per question, where the answers came from."""
    seeds = [i for i in range(synthetic.HELD_OUT, synthetic.HELD_OUT + 40 * n) if synthetic.is_table(i)][:n]
    places = ("the cell asked", "same row, other column", "other row, same column", "other row, other column",
              "not on the table")
    tally = {q: dict.fromkeys(places, 0) for q in synthetic.TABLE_QUESTIONS}
    # TABLE_QUESTIONS row by row, column by column: each question's (row, column)
    cells_asked = [(r, c) for r in range(synthetic.TABLE_ROWS) for c in range(len(synthetic.TABLE_COLUMNS))]
    for i in seeds:
        ex = synthetic.example(i, "document")
        rows = ex.truth.rows
        for (r, c), q in zip(cells_asked, synthetic.TABLE_QUESTIONS):
            got = multimodal.greedy_answer(target, processor, "document", replace(ex, question=q))
            if got == rows[r][c]:
                tally[q]["the cell asked"] += 1
                continue
            found = [(a, b) for a in range(len(rows)) for b in range(len(rows[a])) if rows[a][b] == got]
            tally[q][next((places[1 + (a != r) + (a != r and b != c)] for a, b in found), places[-1])] += 1
    print(f"{len(seeds)} held-out tables, every cell asked, the target alone, greedy")
    print(f"{'':38s}" + "".join(f"{p:>24s}" for p in places))
    for q, row in tally.items():
        print(f"{q:38s}" + "".join(f"{row[p]:24d}" for p in places))


if __name__ == "__main__":
    main()

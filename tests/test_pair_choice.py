"""Chapters 00, 03, 04, 05, 07 and 08 on a pair labkit treats as real (issue 41).

`make executed-pair` (part of `make test`) executed them with LABKIT_PAIR at the pocket pair saved
as an ordinary Hub-layout folder pair (scripts/hub_pair.py: build/hub/gemma-4-pocket and its
-assistant sibling), as a learner on Colab chooses E2B. Each copy must have run every cell of the
notebook as it is now, without an error, loaded that pair (not the pocket shortcut) and named it in
what it printed or drew.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAIR_EXECUTED = Path(os.environ.get("LABKIT_PAIR_EXECUTED", ROOT / "build" / "executed-pair"))
CHAPTERS = ["00_tour", "03_verify_and_accept", "04_acceptance", "05_speed_and_cost", "07_train_a_drafter",
            "08_choosing_a_drafter"]
NAME = "gemma-4-pocket"  # the folder's name: how labkit labels the pair


def texts(nb) -> list[str]:
    """Every text a learner sees in the outputs: stdout, plain and HTML reprs, figure JSON (titles)."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                out.append(o.text)
            for mime, value in o.get("data", {}).items():
                if mime.startswith("text/") or mime.endswith("json"):
                    out.append(value if isinstance(value, str) else json.dumps(value))
    return out


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_on_a_folder_pair_and_names_it(chapter):
    source = ROOT / "notebooks" / f"{chapter}.ipynb"
    copy = PAIR_EXECUTED / "notebooks" / f"{chapter}.ipynb"
    if not copy.exists():
        pytest.fail(f"no copy at {copy}: run `make executed-pair` (`make test` does)", pytrace=False)
    status = json.loads(copy.with_suffix(".json").read_text())
    if not status["ok"]:
        pytest.fail(f"{chapter} failed on the folder pair:\n{status.get('error', '')[-4000:]}", pytrace=False)
    nb, ran = nbformat.read(source, as_version=4), nbformat.read(copy, as_version=4)
    code = [c.source.strip() for c in nb.cells if c.cell_type == "code"]
    assert [c.source.strip() for c in ran.cells if c.cell_type == "code"] == code, (
        f"{copy} is a copy of an older {chapter}: run `make executed-pair`")
    errors = [i for i, c in enumerate(ran.cells) if c.cell_type == "code"
              and any(o.output_type == "error" for o in c.get("outputs", []))]
    assert not errors, f"{chapter}: cells {errors} show an error"
    seen = "\n".join(texts(ran))
    assert "pair chosen: " in seen and "(LABKIT_PAIR)" in seen  # setup said which pair it would load
    assert f"Pair('{NAME}'" in seen or f"{NAME}:" in seen, f"{chapter} never shows the loaded pair"
    mentions = seen.count(NAME)
    assert mentions >= 3, f"{chapter} names {NAME} {mentions} times: figures and headline numbers must name it"

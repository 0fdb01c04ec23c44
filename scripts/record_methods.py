"""Record data/traces/methods.json: every drafting method on every task prompt, for `08_choosing_a_drafter`.

    python scripts/record_methods.py            # wall times: run it on an idle machine (~10 min on 2 cores)

Each of the 40 prompts of data/prompts/tasks.jsonl (five tasks) runs through the glass-box loop
with each method of labkit.methods: the pair's MTP drafter, the pocket draft model, prompt lookup
and none (the same loop, never drafting), greedy, k = 4, 48 new tokens; prompt by prompt, every
method in turn, so whatever else the machine does slows all methods of a prompt alike. The
prose prompts also run long (160 new tokens, across the 128-token sliding window) with the MTP
drafter's K/V exact and as transformers slices it (`kv="transformers"`, docs/stale-kv.md).
transformers' own path for each method is `labkit bench --method`; a test checks both paths
draft the same tokens.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from record_traces import machine  # noqa: E402

import labkit  # noqa: E402
from labkit import generation, methods  # noqa: E402
from labkit.trace import TRACES_DIR, save_traces  # noqa: E402

NEW_TOKENS = 48
LONG_TOKENS = 160  # prose prompts are 11-25 tokens: rounds run on past the 128-token window
K = 4


def main() -> None:
    import datetime
    import os

    import torch
    import transformers

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-task", type=int, default=8, help="prompts of each task (8 ship)")
    ap.add_argument("--out", type=Path, default=TRACES_DIR / "methods.json")
    args = ap.parse_args()
    labkit.setup(quiet=True)
    pair = labkit.load_pair()
    draft_model = methods.load_draft_model(pair)
    rows = methods.load_tasks(per_task=args.per_task)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start = time.perf_counter()
    generation.run(pair, rows[0]["text"], path="glassbox", max_new_tokens=8)  # warm-up, not kept
    groups: dict[str, list] = {}
    for i, row in enumerate(rows):
        t0 = time.perf_counter()
        runs = {f"{row['task']} · {m}": {"drafter": draft_model if m == "draft-model" else m}
                for m in methods.METHODS}
        if row["task"] == "prose":
            runs |= {f"long · mtp, kv {kv}": {"drafter": "mtp", "kv": kv, "max_new_tokens": LONG_TOKENS}
                     for kv in ("exact", "transformers")}
        for name, kw in runs.items():
            kw = {"max_new_tokens": NEW_TOKENS, **kw}
            trace = generation.run(pair, row["text"], path="glassbox", k=K, stop_at_eos=False, seed=i, **kw)
            groups.setdefault(name, []).append(trace)
        print(f"prompt {i + 1}/{len(rows)} ({row['task']}): {time.perf_counter() - t0:.1f} s", flush=True)
    save_traces(args.out, groups, command="python scripts/record_methods.py", pair=pair.label,
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                machine=machine(), load_average_at_start=round(load, 2), seconds=round(time.perf_counter() - start, 1),
                versions={"labkit": labkit.__version__, "torch": torch.__version__,
                          "transformers": transformers.__version__},
                new_tokens=NEW_TOKENS, long_tokens=LONG_TOKENS, k=K, prompts=[r["id"] for r in rows])
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

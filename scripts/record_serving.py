"""Record data/traces/serving.json: the measurements behind `09_serving`'s batch curve and int8 table.

    python scripts/record_serving.py     # wall times: run it on an idle machine (~6 min on 2 cores)

1. Batch costs (`labkit.batching.batch_costs`): one pocket target forward over B × 1 and
   B × (k + 1) tokens and one drafter step for B rows, after a 64-token cache, B = 1 … 64, k = 4.
2. Batched runs (`labkit.batching.batched_run`): B copies of one held-out code prompt decoded
   plain and speculatively, 48 new tokens, at B = 1, 4, 16, 64, three times each.
3. On-device (`labkit.ondevice.compare`): float32, int8 target, int8 target and drafter, each on
   8 prose + 8 code held-out prompts, 32 new tokens, greedy, k = 4, the glass-box loop.

The traces of (3) are saved as groups "<variant> · plain" / "<variant> · spec"; (1), (2) and
the summary of (3) go into the file's meta.
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
from labkit import batching, generation, ondevice  # noqa: E402
from labkit.trace import TRACES_DIR, save_traces  # noqa: E402

K = 4
BATCHES = (1, 2, 4, 8, 16, 32, 64)
RUN_BATCHES = (1, 4, 16, 64)
RUN_TOKENS = 48
NEW_TOKENS = 32


def main() -> None:
    import datetime
    import os

    import torch
    import transformers

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=8, help="held-out prompts of each kind for the int8 table")
    ap.add_argument("--repeats", type=int, default=7, help="samples per batch size for the forward costs")
    ap.add_argument("--out", type=Path, default=TRACES_DIR / "serving.json")
    args = ap.parse_args()
    labkit.setup(quiet=True)
    pair = labkit.load_pair()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start = time.perf_counter()

    costs = batching.batch_costs(pair, BATCHES, k=K, repeats=args.repeats)
    print("batch costs:", [(r["batch"], round(r["plain"], 4), round(r["verify"], 4), round(r["draft"], 4))
                           for r in costs], flush=True)
    code = generation.load_prompts("code", 1)[0]
    ids = generation.encode(pair, code)
    runs = [batching.batched_run(pair, ids, b, k=K, max_new_tokens=RUN_TOKENS) for _ in range(3) for b in RUN_BATCHES]
    print("batched runs:", [(r["batch"], round(r["decode_speedup"], 3), r["identical"]) for r in runs], flush=True)

    prompts = generation.load_prompts("prose", args.prompts) + generation.load_prompts("code", args.prompts)
    table = ondevice.compare(pair, prompts, k=K, max_new_tokens=NEW_TOKENS, path="glassbox")
    groups = {f"{row['variant']} · {side}": row["traces"][side] for row in table for side in ("plain", "spec")}
    summary = [{key: value for key, value in row.items() if key != "traces"} for row in table]
    for row in summary:
        print(row, flush=True)
    save_traces(args.out, groups, command="python scripts/record_serving.py", pair=pair.label,
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                machine=machine(), load_average_at_start=round(load, 2), seconds=round(time.perf_counter() - start, 1),
                versions={"labkit": labkit.__version__, "torch": torch.__version__,
                          "transformers": transformers.__version__},
                k=K, batch_costs=costs, batched_runs=runs, run_prompt=code, run_tokens=RUN_TOKENS,
                ondevice=summary, new_tokens=NEW_TOKENS, prompts=len(prompts))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

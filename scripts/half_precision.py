"""Does greedy speculative output still equal greedy plain output in half precision? Measured.

    python scripts/half_precision.py                       # the pocket pair, fp32 / bf16 / fp16
    python scripts/half_precision.py --pair /tmp/e2b-4     # a scripts/real_shape.py folder
    python scripts/half_precision.py --n 12 --new-tokens 96 --device cuda

For each precision, each shipped prompt (n prose + n code) is decoded greedily three ways: plain,
transformers' assisted generate and the glass box (k drafts per round). A prompt counts as
identical when all three emit the same tokens. Where they differ, the first differing position is
reported with the plain run's margin there: the gap between the target's two best logits at that
step, measured by one forward over prompt + plain output in the same precision. A verify pass
scores k + 1 positions in one matrix product while plain decoding scores one, and in half
precision the two can round a near-tie differently: the margin says how near it was.
Writes the figures to --json (default: runs/half_precision.json) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pair", default="pocket", help="pocket, or a folder holding target/ and drafter/")
    ap.add_argument("--dtypes", default="float32,bfloat16,float16")
    ap.add_argument("--device", default=None)
    ap.add_argument("--n", type=int, default=12, help="prompts per set (prose, code)")
    ap.add_argument("--new-tokens", type=int, default=96)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--json", type=Path, default=REPO / "runs" / "half_precision.json")
    args = ap.parse_args()

    import torch

    import labkit
    from labkit.generation import encode, first_difference, load_prompts, logit_gap, run

    prompts = load_prompts("prose", args.n) + load_prompts("code", args.n)
    results = []
    for name in args.dtypes.split(","):
        dtype = getattr(torch, name)
        if args.pair == "pocket":
            pair = labkit.load_pair(device=args.device, dtype=dtype)
        else:
            folder = Path(args.pair)
            pair = labkit.load_pair(folder / "target", folder / "drafter", device=args.device, dtype=dtype)
        t0 = time.perf_counter()
        rows = []
        for i, prompt in enumerate(prompts):
            ids = encode(pair, prompt)
            outs = {path: run(pair, ids, path=path, k=args.k, max_new_tokens=args.new_tokens).new_ids
                    for path in ("plain", "transformers", "glassbox")}
            row = {"prompt": i, "set": "prose" if i < args.n else "code", "tokens": len(outs["plain"])}
            gaps: dict[int, float] = {}  # both paths usually split at the same token: one forward
            for path in ("transformers", "glassbox"):
                first = first_difference(outs["plain"], outs[path])
                row[path] = first  # None: identical
                if first is not None:
                    if first not in gaps:
                        gaps[first] = round(logit_gap(pair, ids, outs["plain"][:first])[0], 4)
                    row[f"{path}_margin"] = gaps[first]
            rows.append(row)
        same = sum(r["transformers"] is None and r["glassbox"] is None for r in rows)
        results.append({"pair": pair.name, "device": str(pair.device), "dtype": name, "k": args.k,
                        "new_tokens": args.new_tokens, "prompts": len(rows), "identical": same,
                        "seconds": round(time.perf_counter() - t0, 1), "rows": rows})
        print(f"{pair.name} · {pair.device} · {name}: {same} of {len(rows)} prompts identical on all three "
              f"paths ({time.perf_counter() - t0:.0f} s)", flush=True)
        for r in rows:
            if r["transformers"] is not None or r["glassbox"] is not None:
                print(f"  prompt {r['prompt']} ({r['set']}): first difference at new token "
                      f"transformers {r['transformers']} (margin {r.get('transformers_margin', '—')}), "
                      f"glass box {r['glassbox']} (margin {r.get('glassbox_margin', '—')})", flush=True)
        del pair
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"transformers": labkit.env._version("transformers"),
                                     "torch": torch.__version__, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()

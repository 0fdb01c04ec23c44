"""Record the trace sets the notebooks ship with: data/traces/acceptance.json and speed.json.

A notebook's time budget pays for a few prompts; a conclusion needs many. This script measures the
pocket pair on every shipped held-out prompt of a kind and saves the traces, with the command,
date, machine and versions, so `04_acceptance` and `05_speed_and_cost` can draw their figures
with intervals from them and re-measure a small live slice against them.

    python scripts/record_traces.py acceptance   # timing-free: any machine, any load
    python scripts/record_traces.py speed        # wall times: run it on an idle machine

Left out: real Gemma 4 pairs (no weights here); `--pair` takes any `load_pair` argument for that.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import torch
import transformers

import labkit
from labkit import generation
from labkit.trace import TRACES_DIR, load_traces, save_traces

NEW_TOKENS = 64
# name -> (prompt kind, run() settings). Acceptance: what 04 compares. Speed: plain, then every k.
SETS = {
    "acceptance": {
        **{f"prose, k = {k}": ("prose", {"k": k}) for k in (4,)},
        **{f"code, k = {k}": ("code", {"k": k}) for k in (1, 2, 3, 4, 5, 6, 8)},
        "code, k = 4, T = 0.7": ("code", {"k": 4, "temperature": 0.7}),
        "code, k = 4, T = 1.0": ("code", {"k": 4, "temperature": 1.0}),
        "code, k = 4, heuristic schedule": ("code", {"k": 4, "schedule": "heuristic"}),
        # transformers' MTP candidate generator keeps k fixed whatever the schedule; the glass box applies it
        "code, k = 4, heuristic schedule, glass box": ("code", {"k": 4, "schedule": "heuristic", "path": "glassbox"}),
        "code, k = 4, chat template": ("code", {"k": 4, "chat": True}),
    },
    "speed": {
        "plain": ("code", {"path": "plain"}),
        **{f"k = {k}": ("code", {"k": k}) for k in (1, 2, 3, 4, 5, 6)},
    },
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=sorted(SETS))
    parser.add_argument("--pair", default=None, help="load_pair's first argument (default: the pocket pair)")
    parser.add_argument("--prompts", type=int, default=24, help="prompts of each kind (24 ship)")
    parser.add_argument("--out", type=Path, default=None, help="default: data/traces/<set>.json")
    parser.add_argument("--groups", nargs="+", default=None,
                        help="record only these groups and merge them into the existing file")
    args = parser.parse_args(argv)

    labkit.setup(quiet=True)
    pair = labkit.load_pair(args.pair)
    prompts = {kind: generation.load_prompts(kind, limit=args.prompts) for kind in ("prose", "code")}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start = time.perf_counter()
    # one warm-up call pays torch's lazy initialisation before anything is timed
    generation.run(pair, prompts["code"][0], k=4, max_new_tokens=8)
    sets = SETS[args.set]
    if args.groups:
        unknown = sorted(set(args.groups) - set(sets))
        if unknown:
            parser.error(f"no group {unknown} in {args.set}; it has {sorted(sets)}")
        sets = {name: sets[name] for name in args.groups}
    groups = {name: [] for name in sets}
    # Prompt by prompt, every setting in turn: whatever else the machine does at some moment slows
    # all settings of that prompt alike, and the paired ratios (speedups) stay fair.
    for i in range(args.prompts):
        t0 = time.perf_counter()
        for name, (kind, settings) in sets.items():
            groups[name].append(generation.run(pair, prompts[kind][i], max_new_tokens=NEW_TOKENS,
                                               stop_at_eos=False, seed=i, **settings))
        print(f"prompt {i + 1}/{args.prompts}: {len(sets)} settings in {time.perf_counter() - t0:.1f} s", flush=True)
    out = args.out or TRACES_DIR / f"{args.set}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_average_at_start": round(load, 2),
        "seconds": round(time.perf_counter() - start, 1),
        "pair": pair.label,
        "versions": {"labkit": labkit.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__},
        "new_tokens": NEW_TOKENS,
    }
    if args.groups and out.exists():  # merged: the file's meta stays, and says which groups came later
        old, old_meta = load_traces(out)
        later = [*old_meta.get("later", []), {**meta, "groups": args.groups}]
        groups, meta = {**old, **groups}, {**old_meta, "later": later}
    save_traces(out, groups, **meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

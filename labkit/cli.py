"""The `labkit` command: `labkit tour` (one coloured run), `labkit bench --json` (`--method`,
`--prompts FILE.jsonl`: any drafter on any prompts, per task; `--drafts`, `--verify`, `--stop-below`,
`--tree`: the glass box's strategy, chapter 11), `labkit plan` (will a pair fit a
GPU, and how) and `labkit doctor` (a preflight).

Both use the shipped pocket pair unless `--pair` names another (a Gemma 4 id or a folder).
"""

from __future__ import annotations

import argparse
import json
import sys

from labkit import metrics, style
from labkit.doctor import diagnose
from labkit.errors import BadInputError, LabkitError
from labkit.methods import METHODS, load_draft_model, load_tasks


def _load(args: argparse.Namespace):  # noqa: ANN202
    from labkit.loading import load_pair

    return load_pair(args.pair, args.drafter, device=args.device)


def tour(args: argparse.Namespace) -> int:
    from labkit.generation import load_prompts, run

    pair = _load(args)
    prompt = args.prompt or load_prompts("prose", 1)[0]
    run(pair, prompt, path="plain", max_new_tokens=8)  # warm-up, not shown
    run(pair, prompt, path="transformers", k=args.k, max_new_tokens=8)
    plain = run(pair, prompt, path="plain", max_new_tokens=args.max_new_tokens)
    spec = run(pair, prompt, path="transformers", k=args.k, max_new_tokens=args.max_new_tokens)
    color = sys.stdout.isatty() and not args.no_color
    kind = "pocket pair (trained in this repo)" if pair.is_pocket else "real Gemma 4 pair"
    print(f"{pair.name}: {kind}, device {pair.device}, k = {args.k}\n")
    print(spec.prompt_text, end="")
    print(style.ansi(spec, color=color))
    print()
    print(style.legend_ansi() if color else "accepted drafts and target tokens (use a colour terminal)")
    s = metrics.summarize(spec)
    print(f"\nsame text as the target alone: {spec.new_ids == plain.new_ids}")
    print(f"tokens per target forward (tau): {s.tau:.2f}   acceptance by position: "
          + " ".join(f"{a:.2f}" for a in s.acceptance))
    print(f"speedup over the target alone (measured now): {plain.wall / spec.wall:.2f}x "
          f"({plain.wall:.2f} s vs {spec.wall:.2f} s for {len(spec.new_ids)} tokens)")
    return 0


def read_prompts(spec: str, n: int) -> tuple[list[str], list[str] | None]:
    """(prompts, their tasks) from "prose", "code", "both" (the shipped held-out prompts, n of each)
    or a .jsonl file of {"text": ..., "task": ...} rows (every row; "task" optional)."""
    from pathlib import Path

    from labkit.generation import load_prompts

    if spec in ("prose", "code", "both"):
        kinds = ["prose", "code"] if spec == "both" else [spec]
        return [p for kind in kinds for p in load_prompts(kind, n)], None
    if not Path(spec).expanduser().is_file():
        raise BadInputError(f"--prompts {spec}: use prose, code, both, or a .jsonl file of "
                            '{"text": ..., "task": ...} rows')
    rows = load_tasks(path=spec)
    return [r["text"] for r in rows], [r["task"] for r in rows]


def bench(args: argparse.Namespace) -> int:
    from labkit.bench import bench as run_bench
    from labkit.loading import read_config

    prompts, tasks = read_prompts(args.prompts, args.n)
    if args.method == "draft-model" and args.draft_model is not None:
        read_config(args.draft_model)  # a wrong folder or id fails here, before the pair loads
    pair = _load(args)
    draft_model = load_draft_model(pair, args.draft_model) if args.method == "draft-model" else None
    result = run_bench(
        pair, prompts, method=args.method, tasks=tasks, draft_model=draft_model, k=args.k,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed,
        repeats=args.repeats, progress=not args.quiet,
        drafts=args.drafts, verify=args.verify, stop_below=args.stop_below, tree=args.tree,
        check_block=args.check_block,
    )
    result["prompt_set"] = args.prompts
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>32}: {value}")
    return 0


def doctor(args: argparse.Namespace) -> int:
    return diagnose()


def plan_cmd(args: argparse.Namespace) -> int:
    from labkit.plan import plan

    answer = plan(args.pair, device=args.device or "cuda", free_gb=args.free_gb, dtype=args.dtype,
                  quantization=args.quantization)
    if args.json:
        print(json.dumps(answer.as_dict()))
    else:
        for key, value in answer.as_dict().items():
            print(f"{key:>12}: {value}")
    return 0 if answer.fits else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit", description="MTP Lab: speculative decoding with Gemma 4 MTP drafters")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn in (("tour", tour), ("bench", bench)):
        p = sub.add_parser(name)
        p.set_defaults(fn=fn)
        p.add_argument("--pair", default="pocket", help="pocket (default), a Gemma 4 target id, or a folder")
        p.add_argument("--drafter", default=None, help="drafter id or folder (default: <target>-assistant)")
        p.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
        p.add_argument("--k", type=int, default=4, help="tokens drafted per round")
        p.add_argument("--max-new-tokens", type=int, default=128 if name == "bench" else 64)
    t = sub.choices["tour"]
    t.add_argument("--prompt", default=None)
    t.add_argument("--no-color", action="store_true")
    b = sub.choices["bench"]
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--method", choices=METHODS, default="mtp",
                   help="the drafter: the pair's MTP drafter, an independent draft model, prompt lookup, or none")
    b.add_argument("--draft-model", default=None,
                   help="with --method draft-model: a folder or hub id (default: the pocket draft model)")
    b.add_argument("--prompts", default="both",
                   help='prose, code, both (the shipped held-out prompts) or a .jsonl file of {"text", "task"} rows')
    b.add_argument("--n", type=int, default=8, help="prompts per set")
    b.add_argument("--temperature", type=float, default=0.0)
    b.add_argument("--top-p", type=float, default=1.0)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--repeats", type=int, default=3, help="runs per prompt and path; the fastest is kept")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    # the glass box's strategy (labkit.strategies, chapter 11); transformers' path runs as it ships
    b.add_argument("--drafts", choices=["sampled", "argmax"], default="sampled",
                   help="glass box: drafts drawn from q (min(1, p/q)) or q's argmax verified as a point mass")
    b.add_argument("--verify", choices=["token", "block"], default="token",
                   help="glass box: token-wise verification or block verification (Sun et al. 2024)")
    b.add_argument("--stop-below", type=float, default=0.0,
                   help="glass box: stop a round's drafting after a draft whose top probability is below P")
    b.add_argument("--tree", type=int, default=1,
                   help="glass box: W branches at the first draft position, one target pass (1: a chain)")
    b.add_argument("--check-block", action="store_true",
                   help="with --verify block, --k 2 and --temperature > 0: every round's exact TV (seconds a round)")
    pl = sub.add_parser("plan", help="will a pair fit on a device, and how (as stored, int8, 4-bit, offload)")
    pl.set_defaults(fn=plan_cmd)
    pl.add_argument("--pair", required=True, help="E2B, E4B, 26B-A4B, 31B, a Gemma 4 id or a folder")
    pl.add_argument("--device", default="cuda", help="cuda (default), cpu or mps")
    pl.add_argument("--free-gb", type=float, default=None, help="memory free on the device (Colab's T4: 15)")
    pl.add_argument("--dtype", default=None, help="float16 (default on a GPU), bfloat16 or float32")
    pl.add_argument("--quantization", default=None, choices=["int8", "4bit"], help="only this one")
    pl.add_argument("--json", action="store_true", help="print one JSON object")
    d = sub.add_parser("doctor", help="check this machine for the lab, and predict each chapter's run time")
    d.set_defaults(fn=doctor, command="doctor")
    args = parser.parse_args(argv)
    from labkit.env import quiet_torchao

    quiet_torchao()  # transformers imports torchao, whose CPU build logs missing CUDA kernels
    try:
        return args.fn(args)
    except LabkitError as e:
        print(f"labkit {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

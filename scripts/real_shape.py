"""Gemma 4 E2B at its real shapes, random weights, in the Hub layout: build it, load it, time it.

    python scripts/real_shape.py --out /tmp/e2b-4 --layers 4     # what tests/test_real_shape.py builds
    python scripts/real_shape.py --out /tmp/e2b --layers 35      # the full-depth pair (~10 GB in bf16)
    python scripts/real_shape.py --out /tmp/e2b --measure-only   # time an already built pair again

The pair is built by tests/fixtures/e2b_shapes.py (its docstring says what is real and what is not).
Measuring, in a fresh process so the peak belongs to this pair alone: load with
`labkit.load_pair(target, drafter)`, check its memory estimate against the measured peak (the
resident set's high-water mark on a CPU, allocated memory on a GPU), and time plain, transformers
(greedy), lossless (transformers' path at T = 1 with labkit's lossless hook) and glass-box decoding
of a prompt longer than the sliding window, then the multimodal path with an image and a sound.
Where a greedy path leaves plain's text, it records where and how near the target's two best logits
were there. It prints a table and writes the figures to <out>/measured.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from fixtures.e2b_shapes import build  # noqa: E402


def long_prompt(tokenizer, tokens: int = 600) -> str:
    """Shipped prose prompts joined until the text is `tokens` tokens long (past the 512 window)."""
    sys.path.insert(0, str(REPO))
    from labkit.generation import load_prompts

    text = ""
    for p in load_prompts("prose", 64) + load_prompts("code", 64):
        text += p + "\n\n"
        if len(tokenizer(text).input_ids) >= tokens:
            break
    return text


def peak_gb(device) -> float:
    """Peak memory of this process so far: GPU allocations, or the resident set's high-water mark
    on a CPU (VmHWM, which starts afresh at exec, unlike getrusage's ru_maxrss)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    status = Path("/proc/self/status")
    if status.exists():
        line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024 / 1e9
    import resource  # macOS: ru_maxrss in bytes

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e9


def _explain_difference(pair, ids, plain: dict, other: dict, **model_inputs) -> None:
    """Record in `other` where its greedy output first differs from plain's, the plain run's gap
    there between the target's two best logits, and how many tokens outscored `other`'s."""
    from labkit.generation import first_difference, next_logits

    a, b = plain["new_ids"], other["new_ids"]
    first = first_difference(a, b)
    if first is None or first >= min(len(a), len(b)):
        return
    logits = next_logits(pair, ids, a[:first], **model_inputs)
    top = logits.topk(2).values
    other.update(first_difference=first, margin=round(float(top[0] - top[1]), 5), plain_token=a[first],
                 other_token=b[first], other_token_rank=int((logits > logits[b[first]]).sum()))


def measure(out: Path, *, dtype: str | None, new_tokens: int, prompt_tokens: int, k: int,
            media_too: bool = True) -> dict:
    import torch

    import labkit
    from labkit import env, media
    from labkit.generation import encode, run

    device = torch.device(env.choose()[0])
    base = peak_gb(device)
    t0 = time.perf_counter()
    pair = labkit.load_pair(out / "target", out / "drafter", dtype=getattr(torch, dtype) if dtype else None)
    load_s = time.perf_counter() - t0
    loaded = peak_gb(device)
    weights = sum(p.numel() * p.element_size() for m in (pair.target, pair.drafter) for p in m.parameters())
    prompt = long_prompt(pair.tokenizer, prompt_tokens)
    ids = encode(pair, prompt)
    rows = {}

    def timed(name: str, prompt_ids, **settings) -> None:
        t0 = time.perf_counter()
        trace = run(pair, prompt_ids, max_new_tokens=new_tokens, stop_at_eos=False, **settings)
        rows[name] = {"seconds": round(time.perf_counter() - t0, 2), "new_ids": trace.new_ids,
                      "target_forwards": trace.target_forwards, "prompt_tokens": prompt_ids.shape[1]}

    timed("plain", ids, path="plain")
    timed("transformers", ids, path="transformers", k=k)
    timed("lossless", ids, path="transformers", k=k, temperature=1.0, seed=0)
    timed("glassbox", ids, path="glassbox", k=k)
    for name in ("transformers", "glassbox"):  # where greedy output differs: how near was the tie?
        _explain_difference(pair, ids, rows["plain"], rows[name])
    if media_too:
        scene, wave = media.MEDIA_DIR / "scene_0.png", media.MEDIA_DIR / "beeps_0.wav"
        inputs = media.media_inputs(pair, "What do you see and hear?", image=scene, audio=wave)
        mm_ids = inputs.pop("input_ids")
        inputs.pop("attention_mask", None)
        timed("media plain", mm_ids, path="plain", **inputs)
        timed("media transformers", mm_ids, path="transformers", k=k, **inputs)
        _explain_difference(pair, mm_ids, rows["media plain"], rows["media transformers"], **inputs)
    return {
        "device": str(device), "dtype": str(pair.dtype).removeprefix("torch."),
        "transformers": env._version("transformers"),
        "layers": pair.target.config.get_text_config().num_hidden_layers,
        "params_target": sum(p.numel() for p in pair.target.parameters()),
        "params_drafter": sum(p.numel() for p in pair.drafter.parameters()),
        "weights_gb": round(weights / 1e9, 3), "estimate_gb": pair.memory_gb,
        "peak_before_load_gb": round(base, 3), "peak_after_load_gb": round(loaded, 3),
        "peak_gb": round(peak_gb(device), 3), "peak_over_base_gb": round(peak_gb(device) - base, 3), "load_s": round(load_s, 1),
        "prompt_tokens": ids.shape[1], "new_tokens": new_tokens, "k": k, "paths": rows,
    }


def table(m: dict) -> str:
    plain = m["paths"]["plain"]["new_ids"]
    lines = [f"E2B shapes, {m['layers']} layers, random weights · {m['device']} {m['dtype']} · "
             f"target {m['params_target'] / 1e9:.2f}B + drafter {m['params_drafter'] / 1e6:.0f}M parameters",
             f"load_pair: {m['load_s']} s; memory estimate {m['estimate_gb']} GB; measured peak "
             f"{m['peak_over_base_gb']} GB over the {m['peak_before_load_gb']} GB the process held before loading "
             f"(after loading: {m['peak_after_load_gb'] - m['peak_before_load_gb']:.3f} GB; weights {m['weights_gb']} GB)",
             f"prompt {m['prompt_tokens']} tokens, {m['new_tokens']} new tokens, k = {m['k']}",
             "", "| path | seconds | target forwards | greedy output == plain |", "|---|---|---|---|"]
    for name, r in m["paths"].items():
        same = "—" if name in ("plain", "lossless", "media plain") else (
            r["new_ids"] == (m["paths"]["media plain"]["new_ids"] if name.startswith("media") else plain))
        if "first_difference" in r:
            same = (f"no: from new token {r['first_difference']}, where plain's best two logits were "
                    f"{r['margin']:g} apart (its token ranked {r['other_token_rank'] + 1})")
        lines.append(f"| {name} | {r['seconds']} | {r['target_forwards']} | {same} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for target/ and drafter/")
    ap.add_argument("--layers", type=int, default=35, help="35: E2B's full depth; an even number >= 4 for fewer")
    ap.add_argument("--dtype", default=None, help="bfloat16, float16, float32 (default: labkit.env.choose)")
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--prompt-tokens", type=int, default=600)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--no-media", action="store_true")
    ap.add_argument("--measure-only", action="store_true", help="the pair is built: measure it")
    ap.add_argument("--_measure", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._measure:  # the child process: its peak memory is this pair's alone
        m = measure(args.out, dtype=args.dtype, new_tokens=args.new_tokens, prompt_tokens=args.prompt_tokens,
                    k=args.k, media_too=not args.no_media)
        (args.out / "measured.json").write_text(json.dumps(m, indent=1) + "\n")
        return
    if not args.measure_only:
        t0 = time.perf_counter()
        build(args.out, args.layers)
        print(f"built {args.out} in {time.perf_counter() - t0:.0f} s", flush=True)
    child = [sys.executable, __file__, "--_measure", "--out", str(args.out), "--new-tokens", str(args.new_tokens),
             "--prompt-tokens", str(args.prompt_tokens), "--k", str(args.k)]
    child += ["--dtype", args.dtype] if args.dtype else []
    child += ["--no-media"] if args.no_media else []
    subprocess.run(child, check=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    print(table(json.loads((args.out / "measured.json").read_text())))


if __name__ == "__main__":
    main()

"""Gemma 4 E2B at its real shapes, random weights, in the Hub layout: build it, load it, time it.

    python scripts/real_shape.py --out /tmp/e2b-4 --layers 4     # what tests/test_real_shape.py builds
    python scripts/real_shape.py --out /tmp/e2b --layers 35      # the full-depth pair (~10 GB in bf16)
    python scripts/real_shape.py --out /tmp/e2b --measure-only   # time an already built pair again

The pair is built from the shipped E2B configs (data/configs/gemma-4-E2B-it{,-assistant}): the
target's width (1536), vocabulary (262,144), per-layer embeddings, sliding window (512), KV-shared
layers, real-width vision (768) and audio (1024) towers, and the assistant with its 2048-centroid
head; only the depth differs when --layers is below 35 (the towers keep 1 layer each unless
--layers is 35). Weights are random and saved in bfloat16, as the released ones are. The folders
hold what a Hub snapshot holds: config.json, generation_config.json, safetensors, tokenizer.json,
tokenizer_config.json, chat_template.jinja and processor_config.json.

The tokenizer is the pocket tokenizer's BPE, re-numbered into a 262,144-entry vocabulary with the
special tokens at Gemma 4's ids (the ones the E2B config names: <|image|> 258880, <|audio|> 258881,
<|image> 255999, <image|> 258882, <|audio> 256000, <audio|> 258883, <|video|> 258884, <eos> 1,
<turn|> 106); <|turn> at 105 and <|think|> at 98 are inferred (Gemma 3's numbering), and the other
entries are <unused…> fillers. Real Gemma 4 text tokenizes differently; the shapes are real.

Measuring (after building, in a fresh process so the peak belongs to this pair alone): load with
`labkit.load_pair(target, drafter)`, check its memory estimate against the measured peak (resident
set on a CPU, allocated memory on a GPU), and time plain, transformers (greedy), lossless
(transformers' path at T = 1 with labkit's lossless hook) and glass-box decoding of a prompt longer
than the sliding window, then the multimodal path with an image and a sound. It prints a table and
writes the figures to <out>/measured.json.
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
CONFIGS = REPO / "data" / "configs"
VOCAB = 262_144
# Gemma 4's ids for the tokens the lab's chat template and processor use. From the E2B config:
# media tokens and eos_token_id [1, 106]; the first five are Gemma's fixed low ids.
SPECIAL_IDS = {
    "<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4,
    "<|think|>": 98, "<|turn>": 105, "<turn|>": 106,  # 98 and 105: inferred from Gemma 3's numbering
    "<|image>": 255_999, "<|audio>": 256_000, "<|image|>": 258_880, "<|audio|>": 258_881,
    "<image|>": 258_882, "<audio|>": 258_883, "<|video|>": 258_884,
}
# Gemma 3's published generation_config.json holds these sampling defaults, and Gemma 4's model
# cards recommend the same (temperature 1.0, top_p 0.95, top_k 64): a real target ships do_sample on,
# which the lab's greedy runs must override.
GENERATION = {"bos_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0, "do_sample": True,
              "temperature": 1.0, "top_k": 64, "top_p": 0.95}
FIRST_REGULAR = 1_000  # the pocket tokenizer's ordinary tokens start here, clear of the special ids


def real_tokenizer_json(pocket_json: dict) -> dict:
    """The pocket tokenizer.json re-numbered into Gemma 4's vocabulary size and special ids."""
    model = dict(pocket_json["model"])
    specials = {a["content"] for a in pocket_json["added_tokens"]}
    regular = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]) if t not in specials]
    vocab = dict(SPECIAL_IDS)
    for i, token in enumerate(regular):
        vocab[token] = FIRST_REGULAR + i
    taken = set(vocab.values())
    free = (i for i in range(VOCAB) if i not in taken)
    for n, i in enumerate(free):
        vocab[f"<unused{n}>"] = i
    assert len(vocab) == VOCAB and max(vocab.values()) == VOCAB - 1
    model["vocab"] = vocab
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t, i in sorted(SPECIAL_IDS.items(), key=lambda kv: kv[1])]
    out = dict(pocket_json, model=model, added_tokens=added)
    post = json.loads(json.dumps(out["post_processor"]).replace('"ids": [2]', f'"ids": [{SPECIAL_IDS["<bos>"]}]'))
    return dict(out, post_processor=post)


def write_processor(folder: Path) -> None:
    """tokenizer.json, tokenizer_config.json, chat_template.jinja and processor_config.json."""
    sys.path.insert(0, str(REPO))
    from labkit import media, pocket

    folder.mkdir(parents=True, exist_ok=True)
    pocket_json = json.loads((pocket.TOKENIZER_DIR / "tokenizer.json").read_text())
    (folder / "tokenizer.json").write_text(json.dumps(real_tokenizer_json(pocket_json), ensure_ascii=False))
    config = json.loads((pocket.TOKENIZER_DIR / "tokenizer_config.json").read_text())
    config["extra_special_tokens"] = ["<|turn>", "<turn|>", "<|think|>"]
    config["model_max_length"] = 131_072
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    media.write_processor(folder, soft_tokens_per_image=280)  # E2B's vision_soft_tokens_per_image


def configs(layers: int):
    """(target Gemma4Config, assistant config): E2B's, `layers` deep (even, >= 4, or 35)."""
    from transformers import Gemma4AssistantConfig, Gemma4Config

    target = json.loads((CONFIGS / "gemma-4-E2B-it" / "config.json").read_text())
    drafter = json.loads((CONFIGS / "gemma-4-E2B-it-assistant" / "config.json").read_text())
    text = target["text_config"]
    if layers != text["num_hidden_layers"]:
        if layers < 4 or layers % 2:
            raise SystemExit(f"--layers {layers}: use an even number >= 4, or 35 for E2B's full depth")
        # half own K/V, half reusing it, each half alternating sliding and full and ending full,
        # as E2B's 15 own and 20 shared layers do; the towers keep one layer each
        text.update(layer_types=["sliding_attention", "full_attention"] * (layers // 2),
                    num_hidden_layers=layers, num_kv_shared_layers=layers // 2)
        target["vision_config"]["num_hidden_layers"] = 1
        target["audio_config"]["num_hidden_layers"] = 1
    return Gemma4Config.from_dict(target), Gemma4AssistantConfig.from_dict(drafter)


def build(out: Path, layers: int = 4, seed: int = 0) -> Path:
    """out/target and out/drafter, as Hub snapshots of a random-weight E2B pair at real widths."""
    import torch
    from transformers import Gemma4AssistantForCausalLM, Gemma4ForConditionalGeneration, GenerationConfig

    if (out / "drafter" / "config.json").exists():
        return out
    t_cfg, d_cfg = configs(layers)
    torch.manual_seed(seed)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # built in the released precision: half the memory of fp32
    try:
        target = Gemma4ForConditionalGeneration(t_cfg)
        target.generation_config = GenerationConfig(**GENERATION)
        target.save_pretrained(out / "target")
        del target
        drafter = Gemma4AssistantForCausalLM(d_cfg)
        drafter.masked_embedding.token_ordering.copy_(torch.randperm(VOCAB))  # a real permutation
        drafter.generation_config = GenerationConfig(num_assistant_tokens=6, **{
            k: GENERATION[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")})
        drafter.save_pretrained(out / "drafter")
    finally:
        torch.set_default_dtype(before)
    write_processor(out / "target")
    return out


# ---------------------------------------------------------------- measuring


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


def _status_gb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / 1e9
    return float("nan")


class AnonPeak:
    """The peak of this process's anonymous resident memory (RssAnon: heap, tensors), sampled
    every few milliseconds while active. Unlike the resident set's high-water mark (VmHWM) it
    leaves out the checkpoint's memory-mapped file pages, which the OS can drop at will."""

    def __init__(self) -> None:
        import threading

        self.peak = _status_gb("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _status_gb("RssAnon"))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _status_gb("RssAnon"))


def peak_gb(device) -> float:
    """Peak memory of this process so far: GPU allocations, or the resident set's high-water mark
    on a CPU (VmHWM, which starts afresh at exec, unlike getrusage's ru_maxrss)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    return _status_gb("VmHWM")


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

    sys.path.insert(0, str(REPO))
    import labkit
    from labkit import env, media
    from labkit.generation import encode, run

    device = torch.device(env.choose()[0])
    base, anon = peak_gb(device), AnonPeak()
    anon_base = anon.peak
    t0 = time.perf_counter()
    pair = labkit.load_pair(out / "target", out / "drafter", dtype=getattr(torch, dtype) if dtype else None)
    load_s = time.perf_counter() - t0
    loaded = peak_gb(device)
    weights = sum(p.numel() * p.element_size() for m in (pair.target, pair.drafter) for p in m.parameters())
    prompt = long_prompt(pair.tokenizer, prompt_tokens)
    ids = encode(pair, prompt)
    rows = {}
    runs = {"plain": dict(path="plain"), "transformers": dict(path="transformers", k=k),
            "lossless": dict(path="transformers", k=k, temperature=1.0, seed=0),
            "glassbox": dict(path="glassbox", k=k)}
    for name, settings in runs.items():
        t0 = time.perf_counter()
        trace = run(pair, ids, max_new_tokens=new_tokens, stop_at_eos=False, **settings)
        rows[name] = {"seconds": round(time.perf_counter() - t0, 2), "new_ids": trace.new_ids,
                      "target_forwards": trace.target_forwards}
    for name in ("transformers", "glassbox"):  # where greedy output differs: how near was the tie?
        _explain_difference(pair, ids, rows["plain"], rows[name])
    if media_too:
        scene, wave = media.MEDIA_DIR / "scene_0.png", media.MEDIA_DIR / "beeps_0.wav"
        inputs = media.media_inputs(pair, "What do you see and hear?", image=scene, audio=wave)
        mm_ids = inputs.pop("input_ids")
        inputs.pop("attention_mask", None)
        for name, settings in (("media plain", dict(path="plain")), ("media transformers", dict(path="transformers", k=k))):
            t0 = time.perf_counter()
            trace = run(pair, mm_ids, max_new_tokens=new_tokens, stop_at_eos=False, **settings, **inputs)
            rows[name] = {"seconds": round(time.perf_counter() - t0, 2), "new_ids": trace.new_ids,
                          "target_forwards": trace.target_forwards, "prompt_tokens": mm_ids.shape[1]}
        _explain_difference(pair, mm_ids, rows["media plain"], rows["media transformers"], **inputs)
    anon_peak = anon.stop()
    return {
        "device": str(device), "dtype": str(pair.dtype).removeprefix("torch."),
        "transformers": env._version("transformers"),
        "layers": pair.target.config.get_text_config().num_hidden_layers,
        "params_target": sum(p.numel() for p in pair.target.parameters()),
        "params_drafter": sum(p.numel() for p in pair.drafter.parameters()),
        "weights_gb": round(weights / 1e9, 3), "estimate_gb": pair.memory_gb,
        "peak_before_load_gb": round(base, 3), "peak_after_load_gb": round(loaded, 3),
        "peak_gb": round(peak_gb(device), 3), "peak_over_base_gb": round(peak_gb(device) - base, 3),
        "anon_peak_over_base_gb": round(anon_peak - anon_base, 3) if device.type == "cpu" else None, "load_s": round(load_s, 1),
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

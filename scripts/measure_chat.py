"""Measure the pocket chat pair against its bars; write metrics.json and MODEL_CARD.md from the run.

    .venv/bin/python scripts/measure_chat.py --phase plain      # the target alone (cached by its weights)
    .venv/bin/python scripts/measure_chat.py --card             # + assisted generate, metrics, card
    .venv/bin/python scripts/measure_chat.py --target data/pocket-chat/target --drafter data/pocket-chat/drafter --card

Held-out questions: `pocketbuild.chat.dialogues(n, seed=1000, split="eval")`, a seed training never
used and only the held-out phrasings (question templates, prefixes, suffixes). Each is asked twice,
thinking on and off, greedy, to the target alone and through transformers' assisted `generate` with
the drafter (k drafts per round, constant schedule). Bars (the card says why these):
- thinking on: final answers right >= 80 %;
- thinking off: no reply opens the thought channel (0 of all);
- greedy output with the drafter identical to the target's own, on every question, both modes;
- weights (both safetensors files) <= 40 MB.
Intervals are Wilson score intervals at 95 % (labkit.metrics.wilson). tau = new tokens per target
forward pass, prefill included (the lab's definition), pooled over all questions. Times are wall
clock on this (shared) CPU, one torch thread, and only indicative.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labkit.metrics import wilson  # noqa: E402
from pocketbuild import chat  # noqa: E402

RUNS = REPO / "runs" / "pocket-chat"
EOS_IDS = [6, 1]
LEVEL = 0.95
BARS = {
    "accuracy_thinking_on": (">=", 0.8),
    "thought_share_thinking_off": ("==", 0.0),
    "identical_greedy": ("==", True),
    "weights_mb": ("<=", 40.0),
}


def passes(value, rule) -> bool:
    op, bar = rule
    return {">=": value >= bar, "<=": value <= bar, "==": value == bar}[op]


def fingerprint(folder: Path) -> str:
    return hashlib.sha256((Path(folder) / "model.safetensors").read_bytes()).hexdigest()[:16]


def generate(target, ids: list[int], max_new: int, drafter=None, k: int = 4) -> tuple[list[int], int, float]:
    """(new tokens, target forward passes, seconds): greedy, stopping at <turn|> or <eos>."""
    calls = [0]
    handle = target.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    x = torch.tensor([ids])
    extra = {}
    if drafter is not None:
        drafter.generation_config.num_assistant_tokens = k
        drafter.generation_config.num_assistant_tokens_schedule = "constant"
        extra["assistant_model"] = drafter
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            out = target.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new, do_sample=False,
                                  top_k=50, top_p=1.0, temperature=1.0, eos_token_id=EOS_IDS, pad_token_id=0,
                                  **extra)
    finally:
        handle.remove()
    return out[0, len(ids):].tolist(), calls[0], time.perf_counter() - t0


def rate(hits: int, n: int) -> dict:
    lo, hi = wilson(hits, n, LEVEL)
    return {"value": round(hits / n, 4) if n else float("nan"), "hits": hits, "n": n,
            "interval": [round(lo, 4), round(hi, 4)]}


def load(folder: Path, cls):
    return cls.from_pretrained(folder, dtype=torch.float32).eval()


def plain_phase(a, tok, target, items) -> list[dict]:
    """The target alone on every (question, mode): cached under runs/ by the target's weights."""
    cache = RUNS / "measure" / f"plain-{fingerprint(a.target)}-{a.n}-{a.seed}-{a.max_new}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    rows = []
    t0 = time.time()
    for i, d in enumerate(items):
        for thinking in (True, False):
            ids = chat.prompt_ids(tok, d.messages, thinking)
            new, calls, secs = generate(target, ids, a.max_new)
            text = tok.decode(new, skip_special_tokens=False)
            thought, answer = chat.split_reply(text)
            rows.append({"i": i, "task": d.task, "thinking": thinking, "turns": sum(m["role"] == "user" for m in d.messages),
                         "prompt": len(ids), "new": new, "text": text, "answer": answer,
                         "has_thought": chat.CHANNEL_OPEN in text, "closed": bool(new) and new[-1] in EOS_IDS,
                         "correct": chat.correct(d, answer), "seconds": secs,
                         "expected": chat.answer_text(d.task, d.value)})
        if i % 10 == 9:
            print(f"plain {i + 1}/{len(items)} ({time.time() - t0:.0f} s)", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(rows))
    return rows


def assisted_phase(a, tok, target, drafter, items, rows) -> None:
    t0 = time.time()
    for n, r in enumerate(rows):
        d = items[r["i"]]
        ids = chat.prompt_ids(tok, d.messages, r["thinking"])
        new, calls, secs = generate(target, ids, a.max_new, drafter, a.k)
        r.update(assisted=new, identical=new == r["new"], forwards=calls, assisted_seconds=secs)
        if n % 20 == 19:
            print(f"assisted {n + 1}/{len(rows)} ({time.time() - t0:.0f} s)", flush=True)


def summary(rows: list[dict], weights_mb: float, assisted: bool) -> dict:
    on = [r for r in rows if r["thinking"]]
    off = [r for r in rows if not r["thinking"]]
    tasks = sorted({r["task"] for r in rows})
    m = {
        "accuracy_thinking_on": rate(sum(r["correct"] for r in on), len(on)),
        "accuracy_thinking_off": rate(sum(r["correct"] for r in off), len(off)),
        "thought_share_thinking_on": rate(sum(r["has_thought"] for r in on), len(on)),
        "thought_share_thinking_off": rate(sum(r["has_thought"] for r in off), len(off)),
        "turn_closed": rate(sum(r["closed"] for r in rows), len(rows)),
        "by_task_thinking_on": {t: rate(sum(r["correct"] for r in on if r["task"] == t),
                                        sum(r["task"] == t for r in on)) for t in tasks},
        "by_task_thinking_off": {t: rate(sum(r["correct"] for r in off if r["task"] == t),
                                         sum(r["task"] == t for r in off)) for t in tasks},
        "multi_turn_thinking_on": rate(sum(r["correct"] for r in on if r["turns"] > 1),
                                       sum(r["turns"] > 1 for r in on)),
        "mean_new_tokens": {"thinking_on": round(sum(len(r["new"]) for r in on) / len(on), 1),
                            "thinking_off": round(sum(len(r["new"]) for r in off) / len(off), 1)},
        "weights_mb": round(weights_mb, 2),
    }
    if assisted:
        m["identical_share"] = rate(sum(r["identical"] for r in rows), len(rows))
        m["identical_greedy"] = all(r["identical"] for r in rows)
        for name, part in (("all", rows), ("thinking_on", on), ("thinking_off", off)):
            m[f"tau_{name}"] = round(sum(len(r["assisted"]) for r in part) / sum(r["forwards"] for r in part), 3)
            m[f"speedup_{name}"] = round(sum(r["seconds"] for r in part) / sum(r["assisted_seconds"] for r in part), 3)
    return m


def samples(rows: list[dict], items) -> list[dict]:
    """A few dialogues as the user sees them: one per kind, thinking on and off."""
    picked, seen = [], set()
    for r in rows:
        d = items[r["i"]]
        kind = (r["task"] if r["turns"] == 1 else "multi-turn", r["thinking"])
        if kind in seen or kind[0] == "greet":
            continue
        seen.add(kind)
        picked.append({"task": kind[0], "thinking": r["thinking"], "messages": d.messages, "reply": r["text"],
                       "correct": r["correct"]})
    order = ["add", "sub", "multi-turn", "sort", "count"]
    picked.sort(key=lambda s: (order.index(s["task"]) if s["task"] in order else 9, not s["thinking"]))
    return picked


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", type=Path, default=RUNS / "target" / "final")
    p.add_argument("--drafter", type=Path, default=RUNS / "drafter" / "final")
    p.add_argument("--tokenizer", type=Path, default=REPO / "data" / "pocket-chat" / "tokenizer")
    p.add_argument("--n", type=int, default=100, help="held-out questions (each asked thinking on and off)")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--max-new", type=int, default=200)
    p.add_argument("--runs", type=Path, default=RUNS, help="where the training records are")
    p.add_argument("--earlier", type=Path, default=None,
                   help="the runs folder of the target stage the run in --runs continued (its card section)")
    p.add_argument("--phase", choices=["plain", "all"], default="all")
    p.add_argument("--card", action="store_true", help="write metrics.json and MODEL_CARD.md to --out")
    p.add_argument("--out", type=Path, default=REPO / "data" / "pocket-chat")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--install", action="store_true",
                   help="when every bar passes, copy the target and drafter into --out (with --card)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from transformers import AutoTokenizer, Gemma4AssistantForCausalLM, Gemma4ForCausalLM

    tok = AutoTokenizer.from_pretrained(a.tokenizer)
    target = load(a.target, Gemma4ForCausalLM)
    items = chat.dialogues(a.n, a.seed, "eval")
    rows = plain_phase(a, tok, target, items)
    weights_mb = ((a.target / "model.safetensors").stat().st_size
                  + ((a.drafter / "model.safetensors").stat().st_size if (a.drafter / "model.safetensors").exists() else 0)) / 1e6
    if a.phase == "plain":
        print(json.dumps(summary(rows, weights_mb, False), indent=1))
        return
    drafter = load(a.drafter, Gemma4AssistantForCausalLM)
    assisted_phase(a, tok, target, drafter, items, rows)
    m = summary(rows, weights_mb, True)
    values = {"accuracy_thinking_on": m["accuracy_thinking_on"]["value"],
              "thought_share_thinking_off": m["thought_share_thinking_off"]["value"],
              "identical_greedy": m["identical_greedy"], "weights_mb": m["weights_mb"]}
    bars = [{"measure": k, "bar": f"{op} {bar}", "value": values[k], "pass": passes(values[k], (op, bar))}
            for k, (op, bar) in BARS.items()]
    m.update(bars=bars, all_pass=all(b["pass"] for b in bars), k=a.k, n_questions=a.n, seed=a.seed, level=LEVEL,
             target=str(a.target), drafter=str(a.drafter), target_sha=fingerprint(a.target),
             drafter_sha=fingerprint(a.drafter))
    print(json.dumps({k: v for k, v in m.items()}, indent=1))
    (a.runs / "measure").mkdir(parents=True, exist_ok=True)
    (a.runs / "measure" / "metrics.json").write_text(json.dumps(m, indent=1) + "\n")
    (a.runs / "measure" / "rows.json").write_text(json.dumps(rows) + "\n")
    if a.card:
        write_card(a, m, rows, items, target, drafter)
    if a.install and a.card and m["all_pass"]:
        install(a)
    elif a.install:
        print("not installed: " + ("a bar failed" if not m["all_pass"] else "--install needs --card"))


def install(a) -> None:
    """The measured weights into data/pocket-chat/{target,drafter}, beside the tokenizer and the card."""
    import shutil

    for part, src in (("target", a.target), ("drafter", a.drafter)):
        dst = a.out / part
        if Path(src).resolve() == dst.resolve():
            continue
        dst.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "generation_config.json", "model.safetensors"):
            shutil.copyfile(Path(src) / name, dst / name)
    (a.out / "BUILD.json").write_text(json.dumps({"recipe": "chat", "built_by": "scripts/train_chat.py",
                                                  "measured_by": "scripts/measure_chat.py"}, indent=1) + "\n")
    print(f"installed the pair in {a.out}")


def write_card(a, m: dict, rows: list[dict], items, target, drafter) -> None:
    import transformers

    from pocketbuild.cards import model_facts, render

    def record(name: str) -> dict:
        path = a.runs / name / "record.json"
        return json.loads(path.read_text()) if path.exists() else {}

    t_rec, d_rec = record("target"), record("drafter")
    t0_rec = json.loads((a.earlier / "target" / "record.json").read_text()) if a.earlier else {}

    def curve(rec: dict) -> list[tuple]:
        """(step, held-out loss, token accuracy) of a target record's evaluations."""
        return [(e["step"], round(e["val_loss"], 4), round(e["val_token_acc"], 4))
                for e in rec.get("stages", {}).get("target", {}).get("evals", [])]

    def wall(name: str) -> float:
        """Seconds from a run's first log line to its last (its records count only the last resume)."""
        path = a.runs / name / "log.jsonl"
        times = [json.loads(line)["time"] for line in path.read_text().splitlines()] if path.exists() else [0.0]
        return max(times) - min(times)

    for rec, name in ((t_rec, "target"), (d_rec, "drafter")):
        if rec:
            rec["wall_seconds"] = wall(name)
            lines = [json.loads(x) for x in (a.runs / name / "log.jsonl").read_text().splitlines()]
            rec["resumes"] = [x["step"] for x in lines if x["kind"] == "resume"]
            rec["schedules"] = [x["steps"] for x in lines if x["kind"] == "config"]
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "metrics.json").write_text(json.dumps(m, indent=1) + "\n")
    card = render("chat.md.jinja", m=m, t=t_rec, d=d_rec, curve=curve(t_rec), t0=t0_rec, curve0=curve(t0_rec), samples=samples(rows, items),
                  target=model_facts(target), drafter=model_facts(drafter), today=date.today().isoformat(),
                  torch=torch.__version__, transformers=transformers.__version__, machine=platform.machine(),
                  chat_template=chat.CHAT_TEMPLATE, words=len(chat.WORDS))
    (a.out / "MODEL_CARD.md").write_text(card)
    print(f"wrote {a.out / 'metrics.json'} and {a.out / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()

"""Write data/pocket/MODEL_CARD.md from measurements (called by scripts/measure_pocket.py --card).

Nothing in the card is typed by hand: configs and parameter counts come from the models, data from
build/pocket_data/manifest.json, losses from the training logs (beside each model's `final/`
folder, else in runs/), figures from the measurement dict `m` of the run that writes the card.
"""

from __future__ import annotations

import json
import platform
from datetime import date
from pathlib import Path

import torch
import transformers

REPO = Path(__file__).resolve().parents[1]


def _read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _last(log: list[dict], kind: str, **fields) -> dict | None:
    """The last record of `kind` (with those field values) in a log; a resumed run appends, so the
    last one is what ran."""
    return next((r for r in reversed(log) if r.get("kind") == kind
                 and all(r.get(k) == v for k, v in fields.items())), None)


def _training_minutes(records: list[dict]) -> float | None:
    """Minutes of training in a log's "train" records, leaving out the gaps a paused or resumed run
    leaves between two records (any interval over 5x the median one)."""
    times = [r["time"] for r in records if r.get("kind") == "train" and "time" in r]
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    if not gaps:
        return None
    typical = gaps[len(gaps) // 2]
    return sum(g if g <= 5 * typical else typical for g in gaps) / 60


def _phase(folder: Path) -> tuple[list[dict], dict, list[dict], dict]:
    """One pocketbuild.train run in `folder`: (log records, its config record, the evaluations logged
    during training, the final every-window evaluation); empty where it did not run."""
    log = _read_log(folder / "log.jsonl")
    final = folder / "final_eval.json"
    final = json.loads(final.read_text()) if final.exists() else {}
    evals = [r for r in log if r.get("kind") == "eval"]
    if final and len(evals) > 1:
        evals = evals[:-1]  # the last one is the final pass
    return log, next((r for r in log if r.get("kind") == "config"), {}), evals, final


def _run_dir(final: Path, name: str) -> Path:
    """Where a model's training logs are: beside its folder (final/, shipped/), else `runs/<name>`."""
    parent = Path(final).resolve().parent
    return parent if (parent / "log.jsonl").exists() else REPO / "runs" / name


def _trained_on(t_cfg: dict, d_cfg: dict) -> str:
    """"target on cuda (NVIDIA H200), drafter on cpu, then cuda (NVIDIA H100)", from the runs' config
    records, a drafter's earlier runs (`--init`) included (logs written before they named a device: a CPU)."""
    t = t_cfg.get("device", "cpu")
    d = list(dict.fromkeys([cfg.get("device", "cpu") for _, _, cfg in _drafter_chain(d_cfg)]
                           + [d_cfg.get("device", "cpu")]))
    return f"on {t}" if [t] == d else f"target on {t}, drafter on {', then '.join(d)}"


def _drafter_stages(d_log: list[dict]) -> str:
    """What a train_drafter run's distillation did, from its log: "1100 steps of 16 sequences, ...;
    then 1000 more ...; " (the config record is the last one: a resumed run's; a run resumed from
    one begun before a stage existed has no lr for it there)."""
    d_cfg = _last(d_log, "config") or {}
    d_train = [r for r in d_log if r.get("kind") == "train"]
    text = (f"{d_cfg.get('steps')} steps of {d_cfg.get('batch')} sequences, {d_cfg.get('k')} draft steps each, "
            f"AdamW lr {d_cfg.get('lr')} cosine; ")
    done = d_cfg.get("steps", 0)
    focus = "on the target's continuations only, rounds from the prompt's last token on (cosine"
    focus_ran = any(r.get("phase") == "focus" for r in d_train)
    for phase, what in (("polish", "from those weights (a warm restart, cosine"),
                        ("focus", focus),
                        ("focus2", "of the same (cosine" if focus_ran else focus),
                        ("short", "with greedy continuations of short prompts added, rounds from their 16th "
                                  "token on (cosine")):
        rows = [r for r in d_train if r.get("phase") == phase]
        if rows:
            lr = f" from lr {d_cfg[phase + '_lr']}" if phase + "_lr" in d_cfg else ""
            hard = d_cfg.get(phase + "_hard")
            hard = f"; a cross-entropy on the target's argmax added to the KL, weight {hard}" if hard else ""
            text += f"then {rows[-1]['step'] - done} more {what}{lr}{hard}); "
            done = rows[-1]["step"]
    return text


def _drafter_chain(d_cfg: dict) -> list[tuple[Path, list[dict], dict]]:
    """The runs a `train_drafter.py --init` run went on from, oldest first: (checkpoint, that run's
    log, its last config record)."""
    chain, cfg = [], d_cfg
    while cfg.get("init") and len(chain) < 16:  # an --init names a file in an earlier run's folder
        ckpt = Path(cfg["init"])
        ckpt = ckpt if ckpt.is_absolute() else REPO / ckpt
        log = _read_log(ckpt.parent / "log.jsonl")
        cfg = _last(log, "config") or {}
        chain.insert(0, (ckpt, log, cfg))
    return chain


def _drafter_init(d_cfg: dict) -> str:
    """The runs a `train_drafter.py --init` run went on from, oldest first, as a sentence ("" for none):
    each run's checkpoint, prompts, device, stages and held-out agreement, from its log."""
    chain = _drafter_chain(d_cfg)
    if not chain:
        return ""
    runs = "; ".join(
        f"`{ckpt.parent.name}/{ckpt.name}` ({cfg.get('prompts')} prompts, on {cfg.get('device', 'cpu')}: "
        f"{_drafter_stages(log)}held-out agreement of its "
        f"full head {full['agree'] if (full := _last(log, 'eval', head='full')) else '-'})"
        for ckpt, log, cfg in chain)
    earlier = "an earlier run's weights" if len(chain) == 1 else "earlier runs' weights, each from the one before"
    return (f"It went on from {earlier}: {runs}. This run, on {d_cfg.get('device', 'cpu')}, had the target's "
            f"continuations of {d_cfg.get('prompts')} prompts (those rows and new ones): ")


def _stored_dtype(folder: Path) -> str:
    cfg = json.loads((Path(folder) / "config.json").read_text())
    return cfg.get("dtype") or cfg.get("torch_dtype") or "float32"


def _head_dims(text) -> str:
    """Head sizes of a sliding and a full layer; transformers keeps them per layer, not globally."""
    dims = {t: text.per_layer_config[i].head_dim for i, t in enumerate(text.layer_types)}
    return f"{dims.get('sliding_attention', '-')} / {dims.get('full_attention', '-')}"


def _config_table(cfg) -> str:
    text = cfg.get_text_config()
    rows = [("hidden size", text.hidden_size), ("intermediate size", text.intermediate_size),
            ("layers", text.num_hidden_layers), ("layer types", ", ".join(
                t.replace("_attention", "") for t in text.layer_types)),
            ("attention heads / KV heads", f"{text.num_attention_heads} / {text.num_key_value_heads}"),
            ("head dim (sliding / full)", _head_dims(text)),
            ("sliding window", text.sliding_window), ("vocabulary", text.vocab_size),
            ("final logit softcap", text.final_logit_softcapping)]
    if cfg.model_type == "gemma4_assistant":
        rows += [("backbone hidden size", cfg.backbone_hidden_size),
                 ("ordered embeddings (centroid head)", cfg.use_ordered_embeddings),
                 ("centroids / top-k scored", f"{cfg.num_centroids} / {cfg.centroid_intermediate_top_k}")]
    return "| | |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def write_card(path: Path, m: dict, target, drafter, args) -> None:
    manifest_file = Path(args.data) / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
    t_run, d_run = _run_dir(args.target, "target"), _run_dir(args.drafter, "drafter")
    t_log, t_cfg, t_shown, t_final = _phase(t_run)
    d_log = _read_log(d_run / "log.jsonl")
    d_cfg = _last(d_log, "config") or {}
    d_evals = list({r["head"]: r for r in d_log if r.get("kind") == "eval"}.values())  # the last per head
    d_train = [r for r in d_log if r.get("kind") == "train"]
    calib = _last(d_log, "calibration")
    init = _drafter_init(d_cfg)
    t_minutes = _training_minutes(t_log)
    p_log, p_cfg, p_evals, p_final = _phase(t_run / "polish")  # phase 1b, a second cosine (if it ran)
    p_minutes = _training_minutes(p_log)
    polish = [] if not p_cfg else [
        "",
        f"Then {p_cfg['steps']} more steps of the same batches under a second cosine (`<out>/polish/`, a "
        f"fresh AdamW from lr {p_cfg['lr']}, batches phase 1 never drew)"
        + (f", {p_minutes:.0f} min" if p_minutes else "") + ". Held-out bits per byte: "
        + "; ".join(f"step {r['step']} {r['prose_bpb']:.3f} / {r['code_bpb']:.3f}"
                    for r in p_evals)
        + (f"; after it, every validation window: {p_final['prose_bpb']:.3f} / {p_final['code_bpb']:.3f}."
           if p_final else "."),
    ]
    u_log, u_cfg, _, u_final = _phase(t_run / "derepeat")  # phase 2, against loops (if it ran)
    u_train = [r for r in u_log if r.get("kind") == "train"]
    derepeat = [] if not u_cfg else [
        "",
        f"Then {u_cfg['steps']} steps against greedy loops (`<out>/derepeat/`, AdamW lr {u_cfg['lr']}, "
        "no weight decay): each step makes an MLE update on a batch whose windows start with `<bos>`, as "
        "the lab's prompts do, then one on the unlikelihood (Welleck et al. 2019) of the tokens of "
        "repeated 4-grams in the model's own greedy continuations of training prefixes. "
        "Share of repeated tokens in those continuations, first and last logged steps: "
        + (f"{u_train[0].get('repeated', float('nan')):.2f} -> {u_train[-1].get('repeated', float('nan')):.2f}."
           if u_train else "-.")
        + (f" Held-out bits per byte after it, every validation window: {u_final['prose_bpb']:.3f} / "
           f"{u_final['code_bpb']:.3f}." if u_final else ""),
    ]

    bars = "\n".join(f"| {name} | {b['rule']} | {b['value']} | {'pass' if b['pass'] else '**FAIL**'} |"
                     for name, b in m["bars"].items())
    sources = manifest.get("sources", {})
    data_lines = "\n".join(
        f"- **{kind}**: {s.get('what', '')} — from {s.get('from', '')}; licence: {s.get('licence', '')}"
        for kind, s in sources.items())
    split_lines = "\n".join(f"- {name}: {v}" for name, v in manifest.items()
                            if name not in ("sources",) and not isinstance(v, (dict, list)))
    lines = [
        "# Pocket Gemma 4 pair: model card",
        "",
        "A small Gemma 4 target (`Gemma4ForCausalLM`) and its MTP drafter (`Gemma4AssistantForCausalLM`),",
        f"trained in this repository ({_trained_on(t_cfg, d_cfg)}) so the lab runs offline. Built from the real transformers",
        "classes: the code path that runs them runs the real Gemma 4 pairs too. For teaching only.",
        "",
        f"Written by `scripts/measure_pocket.py --card` on {date.today().isoformat()}; every figure below",
        f"was measured by that run (torch {torch.__version__}, transformers {transformers.__version__},",
        f"{platform.machine()}, {m['threads']} CPU threads; weights stored as {_stored_dtype(args.target)}, "
        "run in float32).",
        "",
        "## Bars",
        "",
        "| measure | bar | measured | |",
        "|---|---|---|---|",
        bars,
        "",
        "## Figures",
        "",
        f"- Parameters: target {m['params_target']:,}, drafter {m['params_drafter']:,}.",
        f"- Held-out bits per byte: prose {m['bpb_prose']}, code {m['bpb_code']} "
        f"(nats per token {m['nats_per_token_prose']} / {m['nats_per_token_code']}).",
        f"- Greedy {args.new_tokens}-token continuations of {args.n} prose + {args.n} code held-out prompts: "
        f"median distinct-4-gram ratio {m['distinct4_median']} (prose {m['distinct4_median_prose']}, "
        f"code {m['distinct4_median_code']}); prose continuations that turned into Python: "
        f"{m.get('prose_turned_code', '-')} of {args.n}.",
        f"- k = 4, greedy, transformers' assisted generate: output identical to the target's on every "
        f"prompt: {m['identical_greedy']}; tau {m['tau_greedy']} (prose {m['tau_greedy_prose']}, "
        f"code {m['tau_greedy_code']}); acceptance by position {m['acceptance_by_position_greedy']}.",
        f"- k = 4, temperature 0.8, lossless sampling (labkit's glass-box loop): tau {m['tau_sample_0.8']} "
        f"(prose {m['tau_sample_0.8_prose']}, code {m['tau_sample_0.8_code']}); acceptance by position "
        f"{m['acceptance_by_position_sample_0.8']}. transformers' path with labkit's lossless verification: "
        f"tau {m['tau_sample_0.8_transformers_lossless']} (lower by design: transformers drafts by argmax, so "
        "its lossless check sees a point-mass q and accepts a draft x with probability p(x)).",
        f"- Wall clock, greedy k = 4, {m['threads']} CPU threads: {m['speedup_greedy']}x the target alone, "
        "same tokens.",
        f"- Loading both models: {m['load_seconds']} s.",
        "",
        "## Target",
        "",
        _config_table(target.config),
        "",
        f"Trained by `scripts/train_target.py`: {t_cfg.get('steps')} steps of {t_cfg.get('batch')} x "
        f"{t_cfg.get('seq_len')} tokens (half prose, half code), AdamW lr {t_cfg.get('lr')} cosine, "
        f"seed {t_cfg.get('seed')}" + (f", {t_minutes:.0f} min of training on {t_cfg.get('device', 'this CPU')}."
                                       if t_minutes else "."),
        "Held-out evaluation during training (bits per byte, prose / code):",
        "",
        "\n".join(f"- step {r['step']}: {r['prose_bpb']:.3f} / {r['code_bpb']:.3f}" for r in t_shown
                  if r["step"] % 400 == 0 or r is t_shown[-1]),
        (f"- final, every validation window: {t_final['prose_bpb']:.3f} / {t_final['code_bpb']:.3f}"
         if t_final else ""),
        *polish,
        *derepeat,
        "",
        "## Drafter",
        "",
        _config_table(drafter.config),
        "",
        "Distilled by `scripts/train_drafter.py` against the frozen target, run exactly as at inference",
        "(concat(embedding, last hidden state) -> the target's K/V -> constant position -> post_projection",
        f"fed back), on target continuations (greedy and temperature 0.8) and training text. {init}"
        f"{_drafter_stages(d_log)}then the centroid head ({d_cfg.get('centroid_steps')} steps)"
        + (f"; last, its logits scaled by {calib['scale']} (fitted on fresh samples at temperature "
           f"{calib['temperature']}: expected drafts kept per round of 4 "
           f"{calib['table'].get('1.0')} unscaled -> {calib['table'][str(calib['scale'])]}; argmaxes unchanged)."
           if calib else "."),
        (f"Final distillation KL (train batch): {d_train[-1]['kl']:.3f}." if d_train else ""),
        "Held-out agreement of the drafter's argmax with the target's, per draft step:",
        "",
        "\n".join(f"- {r['head']} head: {r['agree']}" for r in d_evals),
        "",
        "## Data",
        "",
        data_lines,
        split_lines,
        "",
        "Held-out split by work (prose) and by file (code); the lab's prompts in `data/prompts/` come",
        "from the held-out part. Tokenizer: byte-level BPE trained by `scripts/train_tokenizer.py`,",
        "with Gemma-style specials (`<pad>`, `<eos>`, `<bos>`, turn markers, image/audio placeholders).",
        "",
        "## Example (greedy, target alone)",
        "",
        "```",
        m["example_prose"].strip(),
        "```",
        "",
        "```python",
        m["example_code"].strip(),
        "```",
        "",
        "## Limits",
        "",
        f"A {m['params_target'] / 1e6:.0f}M-parameter model writes Shakespeare-flavoured and stdlib-flavoured text, "
        "not sense. Its",
        "acceptance rates and speedups are properties of this pair on this hardware; real Gemma 4 pairs",
        "differ (see notebook 05 for the cost model).",
        "",
    ]
    Path(path).write_text("\n".join(lines))
    print(f"wrote {path}")

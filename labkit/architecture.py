"""The real Gemma 4 pairs without their weights: shapes, parameter counts, and what a forward costs.

The public `config.json` files of the four targets and their assistants are shipped in
`data/configs/` (their provenance is in `data/configs/SOURCES.md`). `load_config` reads them,
`build_on_meta` builds the real transformers classes on the meta device (shapes, no memory), and
`param_counts`, `sizes`, `layer_table` and `assistant_summary` read the anatomy off them;
`assistant_layers` and `assistant_logits` hand out an assistant's middle and its head, so a
learner can assemble a drafting round from the parts. `Table` shows rows as a real table.
`scaled_text_decoder` builds a random-weight text decoder with the per-layer geometry of a real
one but fewer layers and a truncated vocabulary, and `forward_cost_curve` times one forward over
n new tokens: timing needs the shapes, not trained weights; `knee` reads where a measured curve
stops being flat.

Introduced in `01_one_token_at_a_time` (cost curve) and `02_inside_the_mtp_drafter` (anatomy).
Left out: the weights themselves, FLOP counting, quantized and bf16 timings (the scaled decoder
runs in float32, the CPU's fast path), the MoE experts in the scaled decoder (they would make the
26B-A4B timing depend on routing), and the vision and audio towers' compute.
"""

from __future__ import annotations

import contextlib
import copy
import re
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    DynamicCache,
    Gemma4AssistantConfig,
    Gemma4AssistantForCausalLM,
    Gemma4ForCausalLM,
    Gemma4ForConditionalGeneration,
    Gemma4TextConfig,
    PretrainedConfig,
)
from transformers.initialization import no_init_weights

from labkit.glassbox import cache_kwargs
from labkit.paths import CONFIG_DIR
MODELS = {  # short name -> hub id of the target; the assistant is "<id>-assistant"
    "E2B": "google/gemma-4-E2B-it",
    "E4B": "google/gemma-4-E4B-it",
    "26B-A4B": "google/gemma-4-26B-A4B-it",
    "31B": "google/gemma-4-31B-it",
}


def _folder(name: str) -> Path:
    """'E2B', 'E2B-assistant', 'google/gemma-4-E2B-it' or 'gemma-4-E2B-it-assistant' -> folder."""
    key = name.split("/")[-1]
    assistant = key.endswith("-assistant")
    key = key.removesuffix("-assistant")
    short = {hub.split("/")[-1].lower(): s for s, hub in MODELS.items()}
    short.update({s.lower(): s for s in MODELS})
    if key.lower() not in short:
        known = ", ".join(MODELS)
        raise KeyError(f"no shipped config for {name!r}; known: {known} (add '-assistant' for drafters)")
    folder = MODELS[short[key.lower()]].split("/")[-1] + ("-assistant" if assistant else "")
    return CONFIG_DIR / folder


def load_config(name: str) -> PretrainedConfig:
    """The shipped public config of a target ("E2B", a hub id) or its assistant ("E2B-assistant")."""
    return AutoConfig.from_pretrained(_folder(name))


def build_on_meta(config: PretrainedConfig) -> torch.nn.Module:
    """The real transformers model for `config` on the meta device: every shape, no memory."""
    with torch.device("meta"):
        if isinstance(config, Gemma4AssistantConfig):
            return Gemma4AssistantForCausalLM(config)
        if isinstance(config, Gemma4TextConfig):
            return Gemma4ForCausalLM(config)
        return Gemma4ForConditionalGeneration(config)


_COMPONENTS = [  # (component, substrings of the parameter name), first match wins
    ("vision tower", ("vision_tower", "embed_vision")),
    ("audio tower", ("audio_tower", "embed_audio")),
    ("per-layer embeddings", ("embed_tokens_per_layer",)),  # the lookup table "effective" leaves out
    ("per-layer input projections", ("per_layer",)),  # multiplied per token: compute, so "effective"
    ("drafter pre/post projection", ("pre_projection", "post_projection")),
    ("centroid head", ("masked_embedding",)),
    ("embeddings", ("embed_tokens", "lm_head")),
    ("attention", ("self_attn",)),
    ("MoE experts + router", ("experts", "router")),
    ("MLP", ("mlp",)),
]


def param_counts(model: torch.nn.Module) -> dict[str, int]:
    """Parameters by component, largest first, plus "total". Tied weights are counted once."""
    counts: Counter[str] = Counter()
    for name, p in model.named_parameters():
        part = next((c for c, keys in _COMPONENTS if any(k in name for k in keys)), "norms and scalars")
        counts[part] += p.numel()
    out = dict(counts.most_common())
    out["total"] = sum(counts.values())
    return out


# Google's published sizes, each with the kind of count it is. "effective" leaves out the per-layer
# embedding table and the vision and audio encoders; 26B-A4B's and 31B's are text-model counts.
# Sources: the model cards at huggingface.co/google/<id> (linked in `PUBLISHED_SOURCES`).
PUBLISHED_SIZES = {
    "E2B": {"effective": 2.3e9, "total": 5.1e9},
    "E4B": {"effective": 4.5e9, "total": 8.0e9},
    "26B-A4B": {"text": 25.2e9},
    "31B": {"text": 30.7e9},
}
PUBLISHED_SOURCES = {short: f"https://huggingface.co/{hub}" for short, hub in MODELS.items()}
_TOWERS = ("vision tower", "audio tower")


def sizes(counts: dict[str, int]) -> dict[str, int]:
    """The three counts a model card may mean, from `param_counts`. Introduced in 02.

    total: every parameter (towers included); text: without the vision and audio towers;
    effective: text without the per-layer embedding table (looked up, never multiplied).
    """
    total = counts["total"]
    text = total - sum(counts.get(t, 0) for t in _TOWERS)
    return {"total": total, "text": text, "effective": text - counts.get("per-layer embeddings", 0)}


def _kv_sources(cfg: Gemma4TextConfig) -> list[int | None]:
    """For every layer, the layer whose K/V it reuses (None: it computes its own)."""
    first_shared = cfg.num_hidden_layers - (cfg.num_kv_shared_layers or 0)
    types = cfg.layer_types
    return [
        None if i < first_shared else max(j for j in range(first_shared) if types[j] == types[i])
        for i in range(cfg.num_hidden_layers)
    ]


def layer_table(config: PretrainedConfig) -> list[dict]:
    """One row per decoder layer: attention type, head dims, heads, KV heads, MLP width, K/V source.

    For an assistant every layer reads the target's K/V ("target"); for a target with KV-shared
    layers (E2B, E4B) the later layers reuse an earlier layer's K/V. Introduced in 02.
    """
    cfg = config.get_text_config()
    assistant = isinstance(config, Gemma4AssistantConfig)
    sources = [None] * cfg.num_hidden_layers if assistant else _kv_sources(cfg)
    first_shared = cfg.num_hidden_layers - (cfg.num_kv_shared_layers or 0)
    rows = []
    for i, kind in enumerate(cfg.layer_types):
        per = cfg.per_layer_config[i]
        double = cfg.use_double_wide_mlp and 0 < first_shared <= i
        rows.append(
            {
                "layer": i,
                "type": kind.removesuffix("_attention"),  # "sliding" or "full"
                "head_dim": per.head_dim,
                "heads": cfg.num_attention_heads,
                "kv_heads": per.num_key_value_heads,
                "k_eq_v": bool(cfg.attention_k_eq_v and kind == "full_attention"),
                "mlp": cfg.intermediate_size * (2 if double else 1),
                "kv": "target" if assistant else ("own" if sources[i] is None else f"layer {sources[i]}"),
            }
        )
    return rows


def layer_pattern(config: PretrainedConfig) -> list[dict]:
    """`layer_table` grouped: one row per distinct kind of layer, with its count and layer indices."""
    groups: dict[tuple, dict] = {}
    for row in layer_table(config):
        key = tuple((k, v) for k, v in row.items() if k != "layer")
        group = groups.setdefault(key, {"count": 0, **dict(key), "layers": []})
        group["count"] += 1
        group["layers"].append(row["layer"])
    for group in groups.values():
        group["layers"] = _ranges(group["layers"])
    return list(groups.values())


def _ranges(ids: list[int]) -> str:
    """[0, 1, 2, 3, 5, 6] -> "0-3, 5-6"."""
    spans: list[list[int]] = []
    for i in ids:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def assistant_summary(target_cfg: PretrainedConfig, assistant_cfg: Gemma4AssistantConfig) -> dict:
    """What the assistant reads from its target and what it scores per draft step. Introduced in 02.

    rows_scored: vocabulary rows whose logits are computed per step; with the centroid head
    ("ordered embeddings") only top_k clusters of vocab / num_centroids rows each.
    """
    t, a = target_cfg.get_text_config(), assistant_cfg.get_text_config()
    sources = _kv_sources(t)
    non_shared = [i for i, s in enumerate(sources) if s is None]
    read = {kind: max(i for i in non_shared if t.layer_types[i] == kind) for kind in set(t.layer_types)}
    ordered = assistant_cfg.use_ordered_embeddings
    per_centroid = a.vocab_size // assistant_cfg.num_centroids
    rows = assistant_cfg.centroid_intermediate_top_k * per_centroid if ordered else a.vocab_size
    geometry_ok = all(
        (t.per_layer_config[read[kind]].head_dim, t.per_layer_config[read[kind]].num_key_value_heads)
        == (a.per_layer_config[i].head_dim, a.per_layer_config[i].num_key_value_heads)
        for i, kind in enumerate(a.layer_types)
    )
    return {
        "target_hidden": t.hidden_size,
        "backbone_hidden_size": assistant_cfg.backbone_hidden_size,  # must equal target_hidden
        "drafter_hidden": a.hidden_size,
        "drafter_layers": a.num_hidden_layers,
        "drafter_layer_types": [k.removesuffix("_attention") for k in a.layer_types],
        "pre_projection": (2 * assistant_cfg.backbone_hidden_size, a.hidden_size),  # (in, out)
        "post_projection": (a.hidden_size, assistant_cfg.backbone_hidden_size),
        "reads_kv_of_target_layers": {k.removesuffix("_attention"): v for k, v in sorted(read.items())},
        "kv_geometry_matches": geometry_ok,  # head dims and KV heads equal on both sides
        "centroid_head": ordered,
        "num_centroids": assistant_cfg.num_centroids if ordered else None,
        "centroids_kept": assistant_cfg.centroid_intermediate_top_k if ordered else None,
        "rows_per_centroid": per_centroid if ordered else None,
        "vocab_size": a.vocab_size,
        "rows_scored": rows,
        "fraction_scored": rows / a.vocab_size,
    }


def scaled_text_decoder(
    name: str = "E2B",
    layers: int | None = None,
    max_params: float = 3e8,
    vocab_size: int = 16_384,
    seed: int = 0,
) -> Gemma4ForCausalLM:
    """A RANDOM-weight text decoder shaped like a real target's, for timing only. Introduced in 01.

    Kept from the real config: hidden width, heads, KV heads, head dims (sliding and full), MLP
    width, sliding window, Per-Layer Embeddings, and the real layer pattern (its first `layers`
    layers, the last one forced to full attention like every Gemma). Changed: fewer layers (by
    default the most that fit `max_params`), a `vocab_size`-row vocabulary (a 262,144-row table
    would dominate memory), no MoE experts, and KV sharing only once two attention periods fit.
    Float32 weights drawn uniformly in ±1/sqrt(fan_in), eval mode.
    """
    real = load_config(name).get_text_config()
    period = real.layer_types.index("full_attention") + 1  # layers per sliding/full cycle

    def make(n: int) -> Gemma4TextConfig:
        shared = 0
        if real.num_kv_shared_layers and n >= 2 * period:  # the unshared prefix needs both types
            frac = real.num_kv_shared_layers / real.num_hidden_layers
            shared = min(round(n * frac), n - period)
        types = list(real.layer_types[:n])
        types[-1] = "full_attention"
        return Gemma4TextConfig(
            vocab_size=vocab_size,
            hidden_size=real.hidden_size,
            intermediate_size=real.intermediate_size,
            num_hidden_layers=n,
            num_attention_heads=real.num_attention_heads,
            num_key_value_heads=real.per_layer_config[0].num_key_value_heads,
            head_dim=real.per_layer_config[0].head_dim,
            global_head_dim=real.per_layer_config[period - 1].head_dim,
            num_global_key_value_heads=real.per_layer_config[period - 1].num_key_value_heads,
            attention_k_eq_v=real.attention_k_eq_v,
            layer_types=types,
            sliding_window=real.sliding_window,
            max_position_embeddings=real.max_position_embeddings,
            hidden_size_per_layer_input=real.hidden_size_per_layer_input,
            vocab_size_per_layer_input=vocab_size if real.hidden_size_per_layer_input else 0,
            num_kv_shared_layers=shared,
            use_double_wide_mlp=real.use_double_wide_mlp,
            final_logit_softcapping=real.final_logit_softcapping,
            rope_parameters=real.rope_parameters,
            tie_word_embeddings=True,
        )

    if layers is None:
        layers = 1
        while layers < real.num_hidden_layers:
            if param_counts(build_on_meta(make(layers + 1)))["total"] > max_params:
                break
            layers += 1
    with no_init_weights():  # transformers' init is slow on a CPU; uniform values time the same
        model = Gemma4ForCausalLM(make(layers)).eval()
    model.tie_weights()  # skipped along with the init: the output head is the input embedding
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:  # norms stay at their constructor's ones
                bound = p.shape[-1] ** -0.5
                p.copy_(torch.rand(p.shape, generator=gen).mul_(2 * bound).sub_(bound))
    return model


@torch.inference_mode()
def forward_cost_curve(
    model: torch.nn.Module,
    ns: Sequence[int] = (1, 2, 4, 8, 16),
    context: int = 128,
    repeats: int = 5,
    seed: int = 0,
    threads: int | None = None,
) -> list[tuple[int, float]]:
    """Median wall time of one forward over n new tokens after `context` cached ones: rows (n, seconds).
    Every sample: `forward_cost_samples`."""
    samples = forward_cost_samples(model, ns, context, repeats, seed, threads)
    return [(n, statistics.median(samples[n])) for n in ns]


@torch.inference_mode()
def forward_cost_samples(
    model: torch.nn.Module,
    ns: Sequence[int] = (1, 2, 4, 8, 16),
    context: int = 128,
    repeats: int = 5,
    seed: int = 0,
    threads: int | None = None,
) -> dict[int, list[float]]:
    """Wall times of one forward over n new tokens after `context` cached ones: {n: [seconds, ...]}.

    What a verification pass costs: the target reads k drafts plus one token in a single forward
    over a KV cache. Each sample starts from a copy of the same prefilled cache; `repeats` samples
    per n, after one warm-up per n, with the n's interleaved so that a noisy
    neighbour slows all of them alike. `threads` sets torch's CPU threads for the measurement (on
    a busy machine one thread is steadier: two must both be scheduled at every matmul).
    Introduced in 01.
    """
    if threads is not None:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return forward_cost_samples(model, ns, context, repeats, seed)
        finally:
            torch.set_num_threads(before)
    device = next(model.parameters()).device
    vocab = model.config.get_text_config().vocab_size
    gen = torch.Generator().manual_seed(seed)
    prompt = torch.randint(vocab, (1, context), generator=gen).to(device)
    cache = DynamicCache(config=model.config.get_text_config())
    model(input_ids=prompt, **cache_kwargs(model, cache), use_cache=True)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def once(n: int) -> float:
        ids = torch.randint(vocab, (1, n), generator=gen).to(device)
        kv = copy.deepcopy(cache)  # same context for every sample
        sync()
        t0 = time.perf_counter()
        model(
            input_ids=ids,
            **cache_kwargs(model, kv),
            use_cache=True,
            position_ids=torch.arange(context, context + n, device=device)[None],
            attention_mask=torch.ones(1, context + n, dtype=torch.long, device=device),
        )
        sync()
        return time.perf_counter() - t0

    samples: dict[int, list[float]] = {n: [] for n in ns}
    for n in ns:
        once(n)  # warm-up: first-call allocations and kernel selection
    for _ in range(repeats):
        for n in ns:
            samples[n].append(once(n))
    return samples


def assistant_layers(drafter: torch.nn.Module, x: torch.Tensor, shared_kv: dict, position_ids: torch.Tensor,
                     attention_mask: torch.Tensor) -> torch.Tensor:
    """An assistant's decoder layers and final norm: x (1, 1, drafter width) → same shape (02).

    Every layer's queries come from x; its keys and values are the target's (`shared_kv`), so
    the layers write no K/V of their own. This is the middle of the assistant's forward, between
    `pre_projection` and `post_projection`, with the mask built the way the assistant builds it.
    """
    masks = drafter.create_attention_masks(x, attention_mask, shared_kv)
    out = drafter.model(inputs_embeds=x, attention_mask=masks, position_ids=position_ids,
                        shared_kv_states=shared_kv, use_cache=False)
    return out.last_hidden_state


def assistant_logits(drafter: torch.nn.Module, h: torch.Tensor) -> torch.Tensor:
    """An assistant's output head on the layers' output h (1, 1, drafter width) → (1, 1, vocab) (02).

    E2B/E4B-style assistants score only the rows of the top clusters (the centroid head; every
    other row gets a fill value below them); the others score the whole vocabulary.
    """
    if drafter.config.use_ordered_embeddings:
        return drafter.masked_embedding(h, drafter.lm_head.weight)
    return drafter.lm_head(h)


@contextlib.contextmanager
def record_shapes(model: torch.nn.Module, names: Sequence[str]) -> Iterator[list[tuple[str, tuple]]]:
    """Record (module name, output shape) for the named submodules while the block runs. Used in 02."""
    log: list[tuple[str, tuple]] = []
    modules = dict(model.named_modules())
    hooks = []
    for name in names:

        def hook(_module, _inputs, output, name=name):
            out = output[0] if isinstance(output, tuple) else output
            log.append((name, tuple(out.shape)))

        hooks.append(modules[name].register_forward_hook(hook))
    try:
        yield log
    finally:
        for h in hooks:
            h.remove()


class Table:
    """Rows of dicts shown as an HTML table in a notebook and as plain text in a terminal (02).

    Cells never wrap inside a value; a wide table scrolls sideways instead.
    """

    def __init__(self, rows: Sequence[dict], columns: Sequence[str] | None = None, caption: str = "",
                 note: str = ""):
        self.rows, self.columns = list(rows), list(columns or rows[0].keys())
        self.caption, self.note = caption, note

    def __str__(self) -> str:
        head = f"{self.caption}\n" if self.caption else ""
        return head + text_table(self.rows, self.columns) + (f"\n{self.note}" if self.note else "")

    def _repr_html_(self) -> str:
        import html

        def cell(v, tag: str = "td") -> str:
            num = (isinstance(v, (int, float)) and not isinstance(v, bool)) or (
                tag == "td" and isinstance(v, str) and re.fullmatch(r"[+-]?[\d,.]+ ?[BMk%×]?", v) is not None)
            align = "right" if num else "left"
            return (f"<{tag} style='text-align:{align};white-space:nowrap;padding:2px 10px'>"
                    f"{html.escape(_fmt(v))}</{tag}>")

        head = "".join(cell(c, "th") for c in self.columns)
        body = "".join("<tr>" + "".join(cell(r.get(c)) for c in self.columns) + "</tr>" for r in self.rows)
        caption = (f"<caption style='caption-side:top;text-align:left;font-weight:bold;padding:4px 0'>"
                   f"{html.escape(self.caption)}</caption>") if self.caption else ""
        note = f"<div style='font-size:0.85em;opacity:0.8;margin-top:2px'>{self.note}</div>" if self.note else ""
        return (f"<div style='overflow-x:auto;margin:4px 0'><table style='border-collapse:collapse'>{caption}"
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}</div>")


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return "–" if v is None else ("yes" if v else "no")
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return f"{v[0]:,} → {v[1]:,}"  # a projection's (in, out)
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def text_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as a plain-text table (numbers right-aligned, thousands separated)."""
    columns = list(columns or rows[0].keys())

    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    numeric = [all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows) for c in columns]
    line = lambda vals: "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(row) for row in cells])


def knee(rows: Sequence[tuple[int, float]]) -> float:
    """Where extra tokens in a forward stop being nearly free, from a measured cost curve (01).

    Fits t(n) = a + b·n by least squares over rows (n, seconds): `a` is what every forward pays
    (reading the weights, per-layer overhead), `b` what each token adds. The knee is n = a / b,
    where the tokens' own cost has grown as large as the fixed part: below it a forward over n
    tokens costs less than twice its fixed part. `inf` when the curve does not rise at all.
    """
    ns, ts = [float(n) for n, _ in rows], [float(t) for _, t in rows]
    if len(ns) < 2:
        raise ValueError("a knee needs a curve: at least two (n, seconds) rows")
    mean_n, mean_t = sum(ns) / len(ns), sum(ts) / len(ts)
    var = sum((n - mean_n) ** 2 for n in ns)
    b = sum((n - mean_n) * (t - mean_t) for n, t in zip(ns, ts)) / var
    a = mean_t - b * mean_n
    if b <= 0:
        return float("inf")
    return max(a, 0.0) / b

"""Model cards rendered from run records (`pocketbuild.runs`) by Jinja templates in `cards/`.

A card says nothing a record does not hold: the recipe, what each stage did, and the figures the
run measured. `model_facts` puts what a card says of a model (parameters, layer shapes) into the
record while the model is at hand.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

TEMPLATES = Path(__file__).resolve().parent / "cards"


def params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def text_facts(config) -> dict[str, Any]:
    """A decoder's shape, from its (text) config."""
    text = config.get_text_config()
    dims = {t: text.per_layer_config[i].head_dim for i, t in enumerate(text.layer_types)} \
        if getattr(text, "per_layer_config", None) else {}
    facts = {"hidden_size": text.hidden_size, "intermediate_size": text.intermediate_size,
             "layers": text.num_hidden_layers, "layer_types": [t.split("_")[0] for t in text.layer_types],
             "heads": text.num_attention_heads, "kv_heads": text.num_key_value_heads,
             "head_dim": f"{dims.get('sliding_attention', '-')} / {dims.get('full_attention', '-')}",
             "sliding_window": text.sliding_window, "vocab_size": text.vocab_size,
             "final_logit_softcapping": text.final_logit_softcapping}
    if config.model_type == "gemma4_assistant":
        facts.update(backbone_hidden_size=config.backbone_hidden_size,
                     ordered_embeddings=config.use_ordered_embeddings, centroids=config.num_centroids,
                     centroid_top_k=config.centroid_intermediate_top_k)
    return facts


def model_facts(model: torch.nn.Module) -> dict[str, Any]:
    """Parameters and shape of a target or drafter; a multimodal target's towers too."""
    facts = {"class": type(model).__name__, "params": params(model), **text_facts(model.config)}
    if hasattr(model.config, "vision_config"):
        vision, audio = model.config.vision_config, model.config.audio_config
        facts.update(text_params=params(model.model.language_model),
                     vision={"params": params(model.model.vision_tower), "layers": vision.num_hidden_layers,
                             "hidden_size": vision.hidden_size, "patch_size": vision.patch_size,
                             "pooling": vision.pooling_kernel_size},
                     audio={"params": params(model.model.audio_tower), "layers": audio.num_hidden_layers,
                            "hidden_size": audio.hidden_size})
    return facts


def _wilson(rate_and_n: tuple[float, int]) -> str:
    """"[lo-hi]" in percent: the 90 % Wilson interval of a rate measured on n samples."""
    from labkit.metrics import wilson

    rate, n = rate_and_n
    lo, hi = wilson(round(rate * n), n)
    return f"[{lo:.1%}-{hi:.1%}]"


def render(template: str, **context: Any) -> str:
    """`cards/<template>` rendered with `context` (a record and anything measured beside it)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["millions"] = lambda n: f"{n / 1e6:.2f}M"
    env.filters["pct"] = lambda x, digits=1: f"{x:.{digits}%}"
    env.filters["wilson"] = _wilson
    env.filters["positions"] = lambda rates: ", ".join("–" if math.isnan(r) else f"{r:.2f}" for r in rates)
    return env.get_template(template).render(**context)

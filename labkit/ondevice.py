"""On-device (`09_serving`): an int8 target and drafter on this CPU, against the float32 pair.

Phones and laptops run quantized weights: int8 halves bfloat16's bytes and quarters float32's, and
decoding reads every weight once per forward, so fewer bytes mean faster steps. Two questions
decide whether speculation survives it: does the int8 drafter still guess what the int8 target
says (acceptance), and does the int8 target still say what the float32 one said (equality)?
`quantized` makes the int8 models with torchao's `Int8WeightOnlyConfig` (PyTorch's maintained
quantization library; `torch.ao.quantization` is deprecated): every `nn.Linear` but the tied
output head gets int8 weights with one scale per output row; activations stay float32. `compare` measures the variants.

Left out: int4 and activation quantization (on this CPU torchao's int8 dynamic-activation path
ran slower than float32), calibration, and LiteRT's own runtime (its published figures are
quoted in the chapter, labelled as published).
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from labkit import metrics
from labkit.env import quiet_torchao
from labkit.errors import LabkitError
from labkit.generation import run
from labkit.loading import Pair


def _torchao() -> Any:
    """torchao's quantize_ and its int8 weight-only config, or a LabkitError saying how to install it."""
    quiet_torchao()
    try:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_
    except ImportError as err:
        raise LabkitError(f"int8 needs torchao ({err}): `pip install torchao`, or `make setup`, which "
                          "installs it with the lab") from None
    return quantize_, Int8WeightOnlyConfig


def quantized(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` with int8 weights in every `nn.Linear` but the output head.

    The head shares its weights with the input embeddings (Gemma ties them): an int8 head would
    untie them and store the table twice, once float32 for the embedding and once int8, which
    made a model *larger*. So the embedding table, and with it the head, stays float32."""
    quantize_, config = _torchao()
    model = copy.deepcopy(model)
    quantize_(model, config(), filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and fqn != "lm_head")
    return model


def stored_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's state as `torch.save` writes it: what a device must hold."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def variants(pair: Pair) -> dict[str, Any]:
    """The pair three ways: float32; the target int8 with the float32 drafter; both int8."""
    target8 = quantized(pair.target)
    return {"float32": pair,
            "int8 target": replace(pair, target=target8),
            "int8 target + drafter": replace(pair, target=target8, drafter=quantized(pair.drafter))}


def compare(pair: Pair, prompts: Sequence[str], k: int = 4, max_new_tokens: int = 32,
            path: str = "transformers") -> list[dict[str, Any]]:
    """Per variant: bytes, plain and speculative greedy decoding of every prompt (tokens per
    second, `tau`, speedup), and how many prompts' plain output equals the float32 target's.
    Prompt by prompt, every variant in turn, so whatever else the machine does slows all variants
    of a prompt alike. Traces are returned too (`traces`), for intervals over prompts."""
    kinds = variants(pair)
    for variant in kinds.values():  # a first call pays one-off costs (kernel selection, int8 packing)
        run(variant, prompts[0], path="plain", max_new_tokens=4)
        run(variant, prompts[0], path=path, k=k, max_new_tokens=4)
    traces: dict[str, dict[str, list]] = {name: {"plain": [], "spec": []} for name in kinds}
    for prompt in prompts:
        for name, variant in kinds.items():
            traces[name]["plain"].append(run(variant, prompt, path="plain", max_new_tokens=max_new_tokens,
                                             stop_at_eos=False))
            traces[name]["spec"].append(run(variant, prompt, path=path, k=k, max_new_tokens=max_new_tokens,
                                            stop_at_eos=False))
    reference = [t.new_ids for t in traces["float32"]["plain"]]
    rows = []
    for name, variant in kinds.items():
        plain, spec = traces[name]["plain"], traces[name]["spec"]
        rows.append({
            "variant": name,
            "target_mb": stored_bytes(variant.target) / 1e6,
            "drafter_mb": stored_bytes(variant.drafter) / 1e6,
            "plain_tokens_per_s": sum(len(t.new_ids) for t in plain) / sum(t.wall for t in plain),
            "spec_tokens_per_s": sum(len(t.new_ids) for t in spec) / sum(t.wall for t in spec),
            "tau": metrics.tau(spec),
            "speedup": sum(t.wall for t in plain) / sum(t.wall for t in spec),
            "same_as_float32": sum(t.new_ids == ref for t, ref in zip(plain, reference)),
            "spec_same_as_plain": sum(s.new_ids == p.new_ids for s, p in zip(spec, plain)),
            "prompts": len(prompts),
            "traces": {"plain": plain, "spec": spec},
        })
    return rows

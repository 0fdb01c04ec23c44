"""Will a pair fit, and how: `labkit plan --pair E4B --device cuda --free-gb 15 --json`.

Answers from config files alone (the shipped real configs in data/configs, or any folder or cached
hub id), so it runs before a single weight is downloaded:

    plan("google/gemma-4-E2B-it", device="cuda", free_gb=15)   # fp16 fits a T4
    plan("E4B", device="cuda", free_gb=15)                     # fits only quantized, or with its
                                                               # per-layer embeddings off the GPU

Every parameter is counted on the meta device and priced by what would hold it: a quantized
`nn.Linear` weight costs 1 byte (int8) or half a byte plus a scale per 64 (4-bit); everything else
(embeddings, norms, a Mixture-of-Experts target's fused 3-D expert weights, which bitsandbytes does
not quantize) stays in the pair's dtype. `labkit.load_pair` asks the same estimate, so a pair this
module says fits is never refused. Introduced in `00_tour` (choosing a pair). Left out: KV-cache
growth with very long contexts (the 1.2 overhead covers the lab's few hundred tokens), tensor
parallelism, GGUF/AWQ/GPTQ checkpoints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labkit.errors import BadInputError
from labkit.paths import CONFIG_DIR

OVERHEAD = 1.2  # activations, KV cache and allocator slack on top of the weights
QUANTIZATIONS = (None, "int8", "4bit")
QUANT_BITS = {"int8": 8.0, "4bit": 4.0 + 16 / 64}  # nf4 + one 16-bit scale per block of 64
PER_LAYER_EMBEDDINGS = "embed_tokens_per_layer"  # E2B/E4B: a lookup table, fine to keep in CPU memory
SHORT_NAMES = {  # what the chooser accepts besides full ids and folders
    "E2B": "google/gemma-4-E2B-it", "E4B": "google/gemma-4-E4B-it",
    "26B-A4B": "google/gemma-4-26B-A4B-it", "31B": "google/gemma-4-31B-it",
}


@dataclass(frozen=True)
class Plan:
    """One answer of `plan()`: what to load, in what form, and whether it fits."""

    pair: str  # the target id or folder (its drafter: <target>-assistant)
    device: str  # "cuda", "cpu", ...
    free_gb: float | None  # memory free on that device (None: unknown, assumed enough)
    dtype: str  # "float16", "bfloat16" or "float32": what unquantized weights are held in
    quantization: str | None  # None, "int8" or "4bit" (bitsandbytes, CUDA only)
    offload: str | None  # "per-layer embeddings" when only keeping them in CPU memory would fit (labkit: not yet)
    estimate_gb: float  # target + drafter on the device, overhead included
    fits: bool  # estimate_gb <= free_gb
    advice: str  # one sentence a learner can act on

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve(name: str) -> str:
    """A chooser value as load_pair takes it: "E2B" -> "google/gemma-4-E2B-it"; ids and folders as given."""
    return SHORT_NAMES.get(name.strip(), name.strip())


def config_of(ref: str | Path, role: str = "target"):
    """The config of a folder, of a shipped real config (data/configs/<name>), or of the hub cache."""
    from labkit.loading import read_config

    ref = str(ref)
    shipped = CONFIG_DIR / ref.split("/")[-1]
    if not Path(ref).expanduser().exists() and (shipped / "config.json").exists():
        return read_config(shipped)
    return read_config(ref, local_files_only=True)


_COUNTED: dict[tuple[str, str], tuple[int, int, int]] = {}  # (role, config JSON) -> counts


def _counts(config, role: str) -> tuple[int, int, int]:
    """(quantizable linear, per-layer embedding, other) parameters, counted once on the meta device."""
    key = (role, config.to_json_string(use_diff=False))
    if key not in _COUNTED:
        _COUNTED[key] = _count(config, role)
    return _COUNTED[key]


def _count(config, role: str) -> tuple[int, int, int]:
    import torch

    from labkit.loading import model_class

    cls = model_class(config, role)
    with torch.device("meta"):
        model = cls.from_config(config) if hasattr(cls, "from_config") else cls._from_config(config)
    linear = ple = other = 0
    seen: set[int] = set()
    for name, module in model.named_modules():
        for p in module.parameters(recurse=False):
            if id(p) in seen:  # tied weights (the LM head is the embedding) are held once
                continue
            seen.add(id(p))
            if isinstance(module, torch.nn.Linear) and p.dim() == 2:
                linear += p.numel()
            elif name.endswith(PER_LAYER_EMBEDDINGS):
                ple += p.numel()
            else:
                other += p.numel()
    return linear, ple, other


def weight_bytes(config, role: str, dtype_bits: int, quantization: str | None = None) -> dict[str, float]:
    """{"linear", "per_layer_embeddings", "other"}: bytes each part of the model would hold."""
    linear, ple, other = _counts(config, role)
    linear_bits = QUANT_BITS[quantization] if quantization is not None else dtype_bits
    return {"linear": linear * linear_bits / 8, "per_layer_embeddings": ple * dtype_bits / 8,
            "other": other * dtype_bits / 8}


def estimate_gb(target_cfg, drafter_cfg, dtype_bits: int = 16, quantization: str | None = None,
                offload: str | None = None, device: str = "cuda") -> float:
    """Target + drafter on the device in GB (the drafter is never quantized: ~0.1-1 GB). On a CPU,
    `labkit.loading.estimate_memory_gb`'s rule (measured there: a conversion copy while loading)."""
    if device == "cpu":
        import torch

        from labkit.loading import estimate_memory_gb

        dtype = {16: torch.float16, 32: torch.float32}[dtype_bits]
        return round(estimate_memory_gb(target_cfg, dtype) + estimate_memory_gb(drafter_cfg, dtype, "drafter"), 2)
    t = weight_bytes(target_cfg, "target", dtype_bits, quantization)
    if offload:
        t["per_layer_embeddings"] = 0.0
    d = weight_bytes(drafter_cfg, "drafter", dtype_bits)
    return round(OVERHEAD * (sum(t.values()) + sum(d.values())) / 1e9, 2)


def plan(pair: str, device: str = "cuda", free_gb: float | None = None, dtype: str | None = None,
         quantization: str | None = None, drafter: str | None = None) -> Plan:
    """The first way `pair` fits in `free_gb` on `device` that labkit can load: as stored, then int8,
    then 4-bit (CUDA only); or the smallest it gets and what to do instead. `quantization` given:
    only that one is considered. Keeping E2B/E4B's per-layer embeddings in CPU memory is priced in
    the advice (and named in `offload` when only it would fit) but not done by labkit."""
    target = resolve(pair)
    if quantization not in QUANTIZATIONS:
        raise BadInputError(f"quantization={quantization!r}: use None, 'int8' or '4bit'")
    if dtype is None:  # fp16 on a GPU: a T4 has no bf16 (same size on GPUs that do); fp32 on a CPU
        dtype = "float16" if device.startswith(("cuda", "mps")) else "float32"
    bits = {"float16": 16, "bfloat16": 16, "float32": 32}.get(dtype)
    if bits is None:
        raise BadInputError(f"dtype={dtype!r}: use float16, bfloat16 or float32")
    t_cfg = config_of(target)
    d_cfg = config_of(drafter or f"{target}-assistant", "drafter")
    parts = weight_bytes(t_cfg, "target", bits)
    has_ple = parts["per_layer_embeddings"] > 0
    cuda = device.startswith("cuda")
    if quantization is not None and not cuda:
        raise BadInputError(f"quantization={quantization!r} needs a CUDA GPU (bitsandbytes); "
                            f"on {device} load the pair unquantized")
    kinds = [quantization] if quantization is not None else [None, *(("int8", "4bit") if cuda else ())]
    sized = [(q, estimate_gb(t_cfg, d_cfg, bits, q, None, device.split(":")[0])) for q in kinds]
    fitting = [s for s in sized if free_gb is None or s[1] <= free_gb]
    q, gb = fitting[0] if fitting else min(sized, key=lambda s: s[1])
    # What labkit does not do (yet): keep E2B/E4B's per-layer embeddings, a lookup table, in CPU memory.
    offload_gb = estimate_gb(t_cfg, d_cfg, bits, None, "per-layer embeddings") if has_ple and cuda else None
    offload = "per-layer embeddings" if not fitting and offload_gb and free_gb and offload_gb <= free_gb else None
    moe = parts["other"] > parts["linear"]  # fused 3-D expert weights, which bitsandbytes leaves alone
    return Plan(pair=target, device=device, free_gb=free_gb, dtype=dtype, quantization=q, offload=offload,
                estimate_gb=gb, fits=bool(fitting),
                advice=_advice(target, device, free_gb, dtype, sized, fitting, moe, offload_gb))


def _advice(target: str, device: str, free_gb: float | None, dtype: str, sized: list[tuple[str | None, float]],
            fitting: list, moe: bool, offload_gb: float | None) -> str:
    name = target.split("/")[-1]
    as_stored = sized[0][1]
    room = "" if free_gb is None else f" in {free_gb:g} GB"
    off = (f"; with its per-layer embeddings (a lookup table) kept in CPU memory it would need {offload_gb:g} GB "
           "on the GPU, which labkit does not do yet") if offload_gb else ""
    if fitting and fitting[0] is sized[0]:
        how = f"quantization={sized[0][0]!r}" if sized[0][0] else dtype
        return f"{name} fits{room} in {how} (about {as_stored:g} GB): labkit.load_pair({target!r})"
    if fitting:
        q, gb = fitting[0]
        others = "".join(f"; {qq} also fits ({g:g} GB)" for qq, g in fitting[1:])
        return (f"{name} needs about {as_stored:g} GB in {dtype}, more than the {free_gb:g} GB free: "
                f"labkit.load_pair({target!r}, quantization={q!r}) ({gb:g} GB){others}{off}")
    q, smallest = min(sized, key=lambda s: s[1])
    if not device.startswith("cuda"):
        return (f"{name} needs about {as_stored:g} GB in {dtype} on {device}, more than the {free_gb:g} GB "
                "free: use a CUDA GPU (Colab: Runtime > Change runtime type > GPU) or a smaller pair")
    why = (f" (bitsandbytes quantizes linear layers only; this Mixture-of-Experts target keeps its experts "
           f"in {dtype})" if moe else "")
    return (f"{name} needs about {as_stored:g} GB in {dtype} and still {smallest:g} GB quantized ({q}){why}, "
            f"more than the {free_gb:g} GB free: use a GPU with at least {smallest:.0f} GB free for {q}, "
            f"{as_stored:.0f} GB for {dtype}, or a smaller pair (E2B fits a 15 GB T4 in float16){off}")

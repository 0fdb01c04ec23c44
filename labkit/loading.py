"""Load a target + drafter pair: the shipped pocket pair by default, a real Gemma 4 pair by hub id.

    pair = load_pair()                              # the chosen pair: LABKIT_PAIR, setup(pair=...), else pocket
    pair = load_pair("pocket")                      # the pocket pair in data/pocket, offline
    pair = load_pair("google/gemma-4-E2B-it")       # drafter id derived: <target>-assistant
    pair = load_pair("path/to/target", "path/to/drafter")
    pair = load_pair("pocket-multimodal")           # the pocket pair that sees pictures and hears beeps
    pair = load_pair("pocket-chat")                 # the pocket pair that speaks Gemma 4's turns (10)

Everything that can be checked from `config.json` alone is checked *before* any weights load:
the transformers version, that the ids exist (or that the hub is unreachable: then the message
names the pocket pair), that the drafter was built for this target (widths, vocabulary, attention
geometry), and that the pair fits in the device's memory. Each failure is a `labkit.errors` error.

Which pair: `LABKIT_PAIR=TARGET[,DRAFTER]` or `labkit.setup(pair=...)` (Colab's form field) choose
what `load_pair()` loads; `labkit.plan` says whether it fits and whether it needs quantizing.
Introduced in `00_tour`. Left out: offloading per-layer embeddings, tensor parallelism, `trust_remote_code`
(never: Gemma 4 lives in transformers itself), batching.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import torch

from labkit import env, media, plan, pocket
from labkit.errors import (
    BadInputError, ModelNotFoundError, NotEnoughMemoryError, OfflineError, PairError,
)
from labkit.paths import DRAFTER_DIR, MULTIMODAL_DIR, POCKET_CHAT_DIR, POCKET_DIR, TARGET_DIR, TOKENIZER_DIR

KNOWN_TARGETS = ("google/gemma-4-E2B-it", "google/gemma-4-E4B-it", "google/gemma-4-26B-A4B-it",
                 "google/gemma-4-31B-it")
HUB_HOST = "huggingface.co"


@dataclass
class Pair:
    """A target, its drafter and what turns text into ids, ready on one device."""

    target: Any  # Gemma4ForCausalLM, or Gemma4ForConditionalGeneration for a multimodal target
    drafter: Any  # Gemma4AssistantForCausalLM
    tokenizer: Any  # the text tokenizer (for a multimodal target: the processor's tokenizer)
    device: torch.device
    dtype: torch.dtype
    name: str  # "pocket" or the target's id / folder name
    target_id: str
    drafter_id: str
    is_pocket: bool
    processor: Any = None  # image/audio + text processor of a multimodal target, else None
    multimodal: bool = False
    # why a multimodal target runs text-only (its processor could not be loaded), else ""
    media_unavailable: str = ""
    memory_gb: float | None = field(default=None, repr=False)  # the estimate checked before loading

    @property
    def label(self) -> str:
        """How notebooks, widgets and the CLI tag a figure: "pocket pair", "pocket pair (quick build)"
        or the target's id, so a number is never mistaken for another pair's."""
        return self.name.replace("pocket", "pocket pair", 1) if self.is_pocket else self.name

    def __repr__(self) -> str:
        kind = "pocket pair, trained in this repo" if self.is_pocket else (
            "real Gemma 4 pair" if self.target_id.startswith("google/") else "Gemma 4 pair")
        n_t = sum(p.numel() for p in self.target.parameters()) / 1e6
        n_d = sum(p.numel() for p in self.drafter.parameters()) / 1e6
        return (f"Pair({self.name!r}: {kind}; target {n_t:,.1f}M + drafter {n_d:,.1f}M parameters, "
                f"{str(self.dtype).removeprefix('torch.')} on {self.device}"
                f"{', multimodal' if self.multimodal else ''}"
                f"{' (text only: ' + self.media_unavailable + ')' if self.media_unavailable else ''})")


# ---------------------------------------------------------------- checks before loading


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        return False
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def read_config(ref: str | Path, local_files_only: bool | None = None):
    """The model's config from a folder or the hub (cache first), or a labkit error saying why not."""
    from transformers import AutoConfig

    path = Path(ref).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(f"{path} is a folder without a config.json: not a saved model")
        return AutoConfig.from_pretrained(path)
    ref = str(ref)
    if ref.startswith("google/gemma-4") and ref.removesuffix("-assistant") not in KNOWN_TARGETS:
        raise ModelNotFoundError(f"unknown Gemma 4 id {ref!r}; the targets are {', '.join(KNOWN_TARGETS)} "
                                 "(their drafters add '-assistant')")
    if ref.count("/") != 1:
        raise ModelNotFoundError(f"{ref!r} is neither a folder nor a hub id like 'google/gemma-4-E2B-it'")
    try:
        return AutoConfig.from_pretrained(ref, local_files_only=True)  # the cache: fast, offline
    except OSError:
        pass
    if local_files_only or not _hub_reachable():
        raise OfflineError(
            f"{ref} is not in the local cache and the Hugging Face hub is unreachable from here. "
            "The lab's pocket pair works offline: `labkit.load_pair(\"pocket\")`. On a "
            "machine with network (and, for Gemma, an accepted licence), `hf download "
            f"{ref}` fills the cache.")
    try:
        return AutoConfig.from_pretrained(ref)
    except OSError as e:
        raise ModelNotFoundError(f"could not load {ref!r} from the hub: {str(e).splitlines()[0]}") from None


def _text(config):
    return config.get_text_config()


def _attention_geometry(text_cfg) -> dict[str, tuple[int, int]]:
    """{layer type: (head dim, KV heads)}: what the drafter's queries must match in the target's K/V."""
    per_layer = getattr(text_cfg, "per_layer_config", None)
    out = {}
    for i, kind in enumerate(text_cfg.layer_types):
        layer = per_layer[i] if per_layer is not None else text_cfg
        out[kind] = (layer.head_dim, layer.num_key_value_heads)  # the last layer of each type wins
    return out


def check_pair(target_cfg, drafter_cfg) -> None:
    """The drafter reads the target's last hidden state and its K/V cache: shapes must agree."""
    if getattr(drafter_cfg, "model_type", None) != "gemma4_assistant":
        raise PairError(f"the drafter is a {drafter_cfg.model_type!r} model, not a Gemma 4 assistant "
                        "(model_type 'gemma4_assistant', ids ending in '-assistant')")
    t, d = _text(target_cfg), _text(drafter_cfg)
    checks = [
        ("target hidden size vs the drafter's backbone_hidden_size", t.hidden_size,
         drafter_cfg.backbone_hidden_size),
        ("vocabulary size", t.vocab_size, d.vocab_size),
        ("sliding window", t.sliding_window, d.sliding_window),
    ]
    tg, dg = _attention_geometry(t), _attention_geometry(d)
    for kind in sorted(dg):
        for i, what in enumerate(("head dim", "KV heads")):
            checks.append((f"{what} of {kind.replace('_', ' ')} layers",
                           tg.get(kind, (None, None))[i], dg[kind][i]))
    for what, a, b in checks:
        if a != b:
            raise PairError(f"target and drafter do not belong together: {what} is {a} in the target "
                            f"but {b} in the drafter. Use the drafter made for this target "
                            "('<target id>-assistant').")


def model_class(config, role: str):
    from transformers import AutoModelForImageTextToText, Gemma4AssistantForCausalLM, Gemma4ForCausalLM

    if role == "drafter":
        return Gemma4AssistantForCausalLM
    if getattr(config, "model_type", None) == "gemma4" and getattr(config, "vision_config", None):
        return AutoModelForImageTextToText  # Gemma4ForConditionalGeneration
    return Gemma4ForCausalLM


def count_parameters(config, role: str = "target") -> int:
    """Parameters of the model a config describes, counted on the meta device (no memory used)."""
    cls = model_class(config, role)
    with torch.device("meta"):
        model = cls.from_config(config) if hasattr(cls, "from_config") else cls._from_config(config)
    return sum(p.numel() for p in model.parameters())


def stored_dtype(config) -> torch.dtype | None:
    """The precision a checkpoint's weights are stored in, as its config.json names it."""
    stored = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(stored, str):
        stored = getattr(torch, stored, None)
    return stored if isinstance(stored, torch.dtype) else None


def estimate_memory_gb(config, dtype: torch.dtype, role: str = "target", overhead: float = 1.2) -> float:
    """Peak memory of loading and running a model in `dtype`, in GB: the larger of

    - its weights x `overhead` (activations, KV cache, allocator slack), and
    - its weights plus the checkpoint's own copy, when the checkpoint is stored in another
      precision: loading bfloat16 files into float32 holds both for a while.

    scripts/real_shape.py measures the peak for Gemma 4 E2B shapes (tests/test_real_shape.py).
    """
    n = count_parameters(config, role)
    weights = n * torch.finfo(dtype).bits / 8
    stored = stored_dtype(config)
    converting = n * torch.finfo(stored).bits / 8 if stored not in (None, dtype) else 0.0
    return max(weights * overhead, weights + converting) / 1e9


def available_memory_gb(device: torch.device) -> float | None:
    """Free memory on the device in GB, or None when it cannot be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] / 1e9
    try:
        return psutil.virtual_memory().available / 1e9
    except OSError:  # e.g. no /proc in a sandbox
        return None


# ---------------------------------------------------------------- loading


def _pocket_recipe(folder: Path = POCKET_DIR) -> str:
    """"full" for a shipped pocket pair; "quick" for a placeholder built on this machine
    (scripts/build_pocket.py, scripts/train_multimodal.py), which says so in its BUILD.json."""
    build = folder / "BUILD.json"
    return json.loads(build.read_text()).get("recipe", "full") if build.exists() else "full"


@contextmanager
def _quiet_progress(quiet: bool) -> Iterator[None]:
    """transformers' progress bars off inside the block (if `quiet`), as they were after it."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and was_on:
            hf_logging.enable_progress_bar()


def load_pair(
    target: str | Path | None = None,
    drafter: str | Path | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    device_map: str | dict | None = None,
    check_memory: bool = True,
    local_files_only: bool | None = None,
    quantization: str | None = None,
) -> Pair:
    """The chosen pair (no arguments: `LABKIT_PAIR`, else `labkit.setup(pair=...)`, else the pocket
    pair), "pocket", or a target id/folder with its drafter (`<target>-assistant` if omitted).

    device, dtype: where and in what precision; by default what `labkit.setup()` chose, with
    float32 for a pocket pair on every device (`labkit.env.choose` has the rule).
    quantization: "int8" or "4bit" loads the target's linear layers quantized (bitsandbytes, CUDA
    only); `labkit plan` says when a pair needs it. The drafter is small and stays unquantized.
    """
    env.check_transformers()  # refuses what cannot work; setup() names the tested range
    if target is None:
        target, drafter = chosen_pair(drafter)
    is_pocket = target in (None, "pocket", "pocket-multimodal", "pocket-chat")
    pocket_media, pocket_chat = target == "pocket-multimodal", target == "pocket-chat"
    if pocket_chat:
        target, drafter = POCKET_CHAT_DIR / "target", drafter or POCKET_CHAT_DIR / "drafter"
        for folder in (target, drafter, POCKET_CHAT_DIR / "tokenizer"):
            if not any((Path(folder) / name).exists() for name in ("config.json", "tokenizer.json")):
                raise ModelNotFoundError(
                    f"the pocket chat pair's weights are missing ({folder}). Train them with "
                    "`python scripts/train_chat.py target`, then `drafter` (see that script's docstring); "
                    "until then the pocket pair, `labkit.load_pair('pocket')`, continues text but does not chat.")
    elif pocket_media:
        target, drafter = MULTIMODAL_DIR / "target", drafter or MULTIMODAL_DIR / "drafter"
        for folder in (target, drafter):
            if not (Path(folder) / "config.json").exists():
                raise ModelNotFoundError(
                    f"the pocket multimodal pair's weights are missing ({folder}). Build them with "
                    "`make pocket` or `python scripts/train_multimodal.py --quick --install` (a placeholder "
                    "pair, ~7 min on 2 CPU cores).")
    elif is_pocket:
        target, drafter = TARGET_DIR, drafter or DRAFTER_DIR
        for folder in (TARGET_DIR, DRAFTER_DIR):
            if not (Path(folder) / "config.json").exists():
                raise ModelNotFoundError(
                    f"the pocket pair's weights are missing ({folder}). Build them with "
                    "`make pocket` or `python scripts/build_pocket.py --quick` (a placeholder pair, "
                    "~7 min on 2 CPU cores); the full recipe is `python scripts/build_pocket.py`.")
    else:
        target = plan.resolve(str(target)) if not isinstance(target, Path) else target
        drafter = drafter or _drafter_of(target)
    chosen, dtype = env.choose(device, dtype, pocket=is_pocket)  # setup()'s device unless told otherwise
    dev = torch.device(chosen)
    if quantization is not None and (quantization not in plan.QUANTIZATIONS or dev.type != "cuda"):
        raise BadInputError(f"quantization={quantization!r}: use 'int8' or '4bit', on a CUDA GPU "
                            f"(bitsandbytes); this pair would load on {dev}. `labkit plan --pair ... "
                            "--device cuda --free-gb N` says whether a pair needs it.")

    t_cfg = read_config(target, local_files_only)
    d_cfg = read_config(drafter, local_files_only)
    check_pair(t_cfg, d_cfg)
    if dev.type == "cpu":  # measured on E2B's shapes (scripts/real_shape.py): the conversion copy is real
        need = estimate_memory_gb(t_cfg, dtype) + estimate_memory_gb(d_cfg, dtype, "drafter")
    else:  # the checkpoint's copy is read tensor by tensor in host memory: only the weights land here
        need = plan.estimate_gb(t_cfg, d_cfg, torch.finfo(dtype).bits, quantization)
    have = available_memory_gb(dev)
    if check_memory and have is not None and need > have:
        advice = plan.plan(str(target), dev.type, round(have, 1), str(dtype).removeprefix("torch."),
                           drafter=str(drafter)).advice if not is_pocket else ""
        raise NotEnoughMemoryError(
            f"{target} + its drafter need about {need:.1f} GB in {str(dtype).removeprefix('torch.')}"
            f"{' (' + quantization + ')' if quantization else ''} but {dev} has {have:.1f} GB free. "
            + (f"`labkit plan`: {advice}. " if advice else
               "Pick a smaller target (e.g. google/gemma-4-E2B-it) or another device. ")
            + ("On a CPU the estimate is an upper bound (weights stored in the precision asked for are "
               "paged in as used): " if dev.type == "cpu" else "")
            + "load_pair(..., check_memory=False) tries anyway.")

    from transformers import AutoTokenizer

    if device_map is None and dev.type == "cuda" and need > 0.8 * (have or need):
        device_map = "auto"  # let accelerate spread a large target over GPU and CPU memory
    common = {"dtype": dtype, "local_files_only": local_files_only or is_pocket}
    if quantization is not None:
        common["quantization_config"] = quantization_config(quantization, dtype)
        device_map = device_map or {"": dev.index or 0}  # bitsandbytes places weights as it loads them
    t_cls = model_class(t_cfg, "target")
    # A pocket pair loads in well under a second: transformers' "Loading weights" bars would only
    # clutter every chapter. A real pair keeps them (its load takes minutes).
    with _quiet_progress(is_pocket):
        if device_map is not None:
            target_model = t_cls.from_pretrained(target, device_map=device_map, **common)
        else:
            target_model = t_cls.from_pretrained(target, **common).to(dev)
        common.pop("quantization_config", None)
        drafter_model = model_class(d_cfg, "drafter").from_pretrained(drafter, **common).to(dev)
    target_model.eval()
    drafter_model.eval()
    multimodal = t_cls is not model_class(_text(t_cfg), "target")
    processor, media_unavailable = None, ""
    if pocket_media:  # built by labkit, never by AutoProcessor: the same on every install
        processor = media.processor_from_folder(target)
    elif multimodal:
        processor, media_unavailable = _load_processor(target, local_files_only)
    if is_pocket and not pocket_media:
        tokenizer = AutoTokenizer.from_pretrained(POCKET_CHAT_DIR / "tokenizer" if pocket_chat else TOKENIZER_DIR)
    elif processor is not None:
        tokenizer = processor.tokenizer
    else:
        tokenizer = _tokenizer(target, local_files_only)
    if getattr(drafter_model.generation_config, "num_assistant_tokens", None) is None:
        drafter_model.generation_config.num_assistant_tokens = pocket.NUM_ASSISTANT_TOKENS
    if pocket_chat:
        name = "pocket (chat)" if _pocket_recipe(POCKET_CHAT_DIR) != "quick" else "pocket (chat, quick build)"
    elif pocket_media:
        quick = _pocket_recipe(MULTIMODAL_DIR) == "quick"
        name = "pocket (multimodal, quick build)" if quick else "pocket (multimodal)"
    elif is_pocket:
        name = "pocket" if _pocket_recipe() != "quick" else "pocket (quick build)"
    else:
        name = Path(str(target)).name if Path(str(target)).exists() else str(target)
    return Pair(target=target_model, drafter=drafter_model, tokenizer=tokenizer, processor=processor,
                device=dev, dtype=dtype, name=name,
                target_id=str(target), drafter_id=str(drafter), is_pocket=is_pocket,
                multimodal=multimodal, media_unavailable=media_unavailable, memory_gb=round(need, 3))


def _tokenizer(target: str | Path, local_files_only: bool | None) -> Any:
    """The target's tokenizer, or a labkit error naming what is missing (a folder saved without one)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(target, local_files_only=local_files_only)
    except (OSError, ValueError) as e:
        raise ModelNotFoundError(
            f"no usable tokenizer with the target {target}: a Gemma 4 checkpoint carries tokenizer.json "
            "and tokenizer_config.json beside its weights. Save the tokenizer into that folder "
            f"(tokenizer.save_pretrained(folder)). ({type(e).__name__}: {str(e).splitlines()[0]})") from None


def chosen_pair(drafter: str | Path | None = None) -> tuple[str | None, str | Path | None]:
    """(target, drafter) that `load_pair()` loads when given no target: `LABKIT_PAIR=TARGET[,DRAFTER]`
    (a short name E2B/E4B/26B-A4B/31B, a hub id or a folder), else the pair `labkit.setup(pair=...)`
    was told (Colab's form field), else (None, None): the pocket pair."""
    text = os.environ.get("LABKIT_PAIR", "").strip() or (getattr(env.active(), "choice", "") or "")
    if text.strip() in ("", "pocket"):
        return None, drafter
    first, _, second = text.partition(",")
    return plan.resolve(first), drafter or (second.strip() or None)


def _drafter_of(target: str | Path) -> str | Path:
    """`<target>-assistant`: the hub's naming, and a folder's sibling named the same way."""
    folder = Path(str(target)).expanduser()
    if folder.exists():
        sibling = folder.with_name(folder.name + "-assistant")
        if not (sibling / "config.json").exists():
            raise PairError(f"{target} is a local folder and {sibling} holds no drafter: name its drafter "
                            "too, load_pair(target_folder, drafter_folder), or LABKIT_PAIR=TARGET,DRAFTER")
        return sibling
    return f"{target}-assistant"


def quantization_config(quantization: str, dtype: torch.dtype) -> Any:
    """bitsandbytes' config for "int8" (LLM.int8) or "4bit" (NF4, computing in `dtype`), or a clear
    error when bitsandbytes is missing (Colab: `pip install bitsandbytes`, then restart)."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise BadInputError(f"quantization={quantization!r} needs bitsandbytes: pip install bitsandbytes "
                            "(Colab: then Runtime > Restart session)") from None
    from transformers import BitsAndBytesConfig

    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)


def _load_processor(target: str | Path, local_files_only: bool | None) -> tuple[Any, str]:
    """(processor, "") for a multimodal target, or (None, why) when only its text can be used.

    Gemma 4's processor bundles a video processor that needs torchvision, which a CPU-only install
    may lack: then images and audio go through `labkit.media`'s processor, built from the same
    `processor_config.json` without the video part. A folder may also hold no processor files.
    Text-only speculative decoding needs neither, so the pair still loads, and `media_unavailable`
    says what to do for images and audio.
    """
    from transformers import AutoProcessor
    from transformers.utils import cached_file

    try:
        return AutoProcessor.from_pretrained(target, local_files_only=local_files_only), ""
    except (ImportError, OSError, ValueError) as e:
        failure = e
    try:  # the same processor minus video, which needs torchvision (and its own config file)
        config = cached_file(str(target), "processor_config.json", local_files_only=local_files_only)
        if config is not None:
            return media.processor_from_folder(Path(config).parent), ""
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if isinstance(failure, ImportError):
        if "torchvision" in str(failure).lower():
            return None, "its image/audio processor needs torchvision: pip install torchvision"
        return None, f"its image/audio processor could not be imported: {str(failure).strip()}"
    return None, f"no image/audio processor could be loaded from {target} ({type(failure).__name__})"

"""The setup cell every notebook starts with: `env = labkit.setup()`.

One call seeds python, numpy and torch, picks the device (cuda → mps → cpu) and precision that
every later `load_pair` uses unless told otherwise (`choose`), sets torch's CPU threads, picks a
plotly renderer for the frontend, checks the transformers version, and prints the versions a bug
report needs. In Colab it first installs the lab's package and its missing
dependencies (never torch or jupyterlab: Colab brings its own). Introduced in `00_tour`.

In Colab, `import labkit` needs the lab's checkout first; the notebooks' first cell clones it:

    import sys
    if "google.colab" in sys.modules:  # Colab: fetch the lab, then labkit.setup() installs it
        !git clone -q --depth 1 https://github.com/mtp-lab/mtp-lab /content/mtp-lab
        sys.path.insert(0, "/content/mtp-lab")

This module imports only the standard library at the top, so it works before anything is installed.
Left out: full determinism (`torch.use_deterministic_algorithms`; seeds make runs repeatable on one
machine, not bitwise across hardware), multi-GPU placement, and mixed precision within a model.
"""

from __future__ import annotations

import html
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkit import __version__, book
from labkit.errors import UnsupportedVersionError
from labkit.paths import REPO_ROOT

if TYPE_CHECKING:  # for annotations only: loading imports env, and env only the standard library
    from labkit.loading import Pair

REPO_URL = "https://github.com/mtp-lab/mtp-lab"  # the lab's home; Colab installs from here

# What pyproject.toml asks for: from the lowest release the version matrix passes (5.8 is the first
# that knows `gemma4_assistant`, but 5.8.1 and 5.15.1 fail the lab's tests); 5.23.x cannot construct
# Gemma4AssistantForCausalLM; the ceiling is the newest release scripts/version_matrix.py has passed
# (raise it only after a matrix run; tests/test_env.py checks the two agree).
TRANSFORMERS_PIN = "transformers>=5.22,!=5.23.*,<5.26"
TRANSFORMERS_TOO_OLD = "<5.8"  # no gemma4_assistant: nothing works (5.8 to 5.21 get a note instead)
TRANSFORMERS_BROKEN = "==5.23.*"  # cannot construct Gemma4AssistantForCausalLM
# The releases whose unit tests passed in scripts/version_matrix.py (README, "Tested with"; 5.8.1
# and 5.15.1 were run too and fail some). The pin spans them, so installing labkit (Colab too)
# brings a tested release.
TRANSFORMERS_TESTED = ("5.22.0", "5.22.2", "5.24.0", "5.25.0")
COLAB_SKIP = ("torch", "jupyterlab", "ipywidgets")  # Colab's own builds stay (ipywidgets 7.7 works)
MAX_CPU_THREADS = 8  # beyond this, small-batch decoding only pays more synchronisation
SHOWN_PACKAGES = ("torch", "transformers", "ipywidgets", "plotly")
_ACTIVE: LabEnv | None = None  # what the last setup() chose: choose() and load_pair() follow it


@dataclass(frozen=True)
class LabEnv:
    """What `setup()` chose; notebooks read `env.device` and `env.dtype` from it."""

    device: str  # "cuda", "mps" or "cpu": where models and tensors go
    dtype: Any  # torch.dtype for real Gemma 4 pairs on this device (pocket pairs: always float32)
    seed: int  # seeds python's random, numpy and torch
    colab: bool  # running in Google Colab
    renderer: str  # plotly's default renderer, chosen for the frontend
    versions: dict[str, str] = field(default_factory=dict, hash=False)  # package -> version
    threads: int = 0  # torch CPU threads (0: left as torch set them)
    testing: bool = False  # LABKIT_TEST=1: the test suite is executing the notebook (workloads unchanged)
    pair: str | None = None  # the loaded pair, as setup() described it, if one was passed
    choice: str = "pocket"  # the pair load_pair() loads: LABKIT_PAIR, else setup(pair="..."), else pocket
    note: str = ""  # a warning worth a line, e.g. a transformers release outside the tested range

    def __repr__(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        where = "Colab" if self.colab else "local"
        return f"LabEnv({self.device}, {dtype}, seed={self.seed}, {where}, plotly={self.renderer!r})"

    def _repr_html_(self) -> str:
        rows = {
            "device": f"{self.device} ({str(self.dtype).removeprefix('torch.')})",
            "seed": str(self.seed),
            "where": "Google Colab" if self.colab else "local",
            "plotly renderer": self.renderer,
            **({"pair": self.pair} if self.pair else {}),
            **self.versions,
            **({"note": self.note} if self.note else {}),
        }
        cells = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in rows.items()
        )
        return f"<table class='labkit-env'>{cells}</table>"


def in_colab() -> bool:
    return "google.colab" in sys.modules


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def tested_range() -> str:
    """'5.22.0 to 5.25.0': the transformers releases whose tests passed in the version matrix."""
    return f"{TRANSFORMERS_TESTED[0]} to {TRANSFORMERS_TESTED[-1]}"


def check_transformers(version: str | None = None) -> str:
    """Raise `UnsupportedVersionError` unless this transformers version can run the lab; return a
    one-line note (else "") when it can but lies outside the tested range.

    version: a version string; None reads the installed one (and raises if there is none).
    """
    fix = f"Run `pip install '{TRANSFORMERS_PIN}'` (then restart the kernel), or `make setup` in the repo."
    if version is None:
        version = _version("transformers")
    if version is None:
        raise UnsupportedVersionError(f"transformers is not installed. {fix}")
    from packaging.specifiers import SpecifierSet  # transformers depends on packaging
    from packaging.version import InvalidVersion, Version

    try:
        parsed = Version(version)
    except InvalidVersion:
        return f"transformers {version}: not a version labkit can read; the lab is tested with {tested_range()}."
    release = Version(parsed.base_version)  # 5.25.0.dev0 is judged as 5.25.0
    if release in SpecifierSet(TRANSFORMERS_TOO_OLD):
        raise UnsupportedVersionError(
            f"transformers {version} is too old: the Gemma 4 MTP drafter (gemma4_assistant) arrived in "
            f"5.8. The lab is tested with {tested_range()}. {fix}"
        )
    if release in SpecifierSet(TRANSFORMERS_BROKEN):
        raise UnsupportedVersionError(
            f"transformers {version} cannot construct Gemma4AssistantForCausalLM, the MTP drafter this lab "
            f"is about (its kv_sharing_modes check rejects the assistant). {fix}"
        )
    if release not in SpecifierSet(TRANSFORMERS_PIN.removeprefix("transformers")):
        where = "newer" if release > Version(TRANSFORMERS_TESTED[-1]) else "older"
        known = "; 5.8.1 and 5.15.1 fail some of its tests, docs/version-matrix.md" if where == "older" else ""
        return (f"transformers {version} is {where} than the releases the lab is tested with "
                f"({tested_range()}{known}); if something breaks, `pip install '{TRANSFORMERS_PIN}'` "
                "and restart the kernel.")
    return ""


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], check=True)


def _requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0).lower().replace("_", "-")


def colab_install() -> bool:
    """Install labkit and its missing dependencies into this runtime; False if it already was."""
    if _version("labkit") is not None:
        return False
    checkout = REPO_ROOT if (REPO_ROOT / "pyproject.toml").exists() else None
    # --no-deps first: pip must not replace Colab's torch, jupyter stack or widget manager.
    _pip("--no-deps", *(["-e", str(checkout)] if checkout else [f"git+{REPO_URL}"]))
    wanted = [
        r.split(";")[0].strip()
        for r in importlib.metadata.requires("labkit") or []
        if "extra ==" not in r and _requirement_name(r) not in COLAB_SKIP
    ]
    if wanted:
        _pip(*wanted)
    return True


def choose(device: Any = None, dtype: Any = None, *, pocket: bool = False) -> tuple[str, Any]:
    """The lab's one decision of where models run and in what precision: (device, torch dtype).

    device: used if given; else the one `setup()` chose, if it ran; else cuda → mps → cpu.
    dtype: used if given; else float32 for a pocket pair on every device (its models are tiny, so
    exact arithmetic costs nothing, and greedy speculative text then equals plain decoding's on a
    GPU too) and on a CPU (bf16 matmuls are many times slower on CPUs without AMX); on a GPU that
    computes bfloat16 natively (CUDA compute capability 8.0+, ROCm), bfloat16 like the released
    weights; float16 on older GPUs (Colab's T4, where bf16 is only emulated) and on Apple's mps.
    `load_pair` and `setup` both ask this function. Introduced in `00_tour`.
    """
    import torch

    if device is None and _ACTIVE is not None:
        device = _ACTIVE.device
    if device is None:
        mps = getattr(torch.backends, "mps", None)
        device = "cuda" if torch.cuda.is_available() else "mps" if mps is not None and mps.is_available() else "cpu"
    device = str(device)
    if dtype is not None:
        return device, dtype
    if pocket or device == "cpu":
        return device, torch.float32
    if device.startswith("cuda"):
        return device, torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    return device, torch.float16 if device.startswith("mps") else torch.float32


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS has one, else the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _cpu_threads() -> int:
    """All free cores up to MAX_CPU_THREADS. Cores another job keeps busy are left out: an OpenMP
    thread that has to wait for a busy core stalls every kernel (measured here: a 2-core machine
    running a training job decoded 10-30x slower with 2 torch threads than with 1)."""
    for var in ("LABKIT_THREADS", "OMP_NUM_THREADS"):  # the user decided already
        if os.environ.get(var, "").isdigit() and int(os.environ[var]) > 0:
            return int(os.environ[var])
    cores = usable_cores()
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores - int(busy), cores, MAX_CPU_THREADS))


def quiet_torchao() -> None:
    """transformers imports torchao whenever it is installed (`09_serving` quantizes with it). On a
    CPU build torchao then logs that its CUDA kernels did not load, and torch logs a deprecation
    inside torchao: neither concerns the lab, and both would print under every chapter's first model."""
    import logging

    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _pick_renderer(colab: bool) -> str:
    """Colab needs its own renderer; JupyterLab, VS Code and nbclient all render the plotly mimetype,
    which stores the figure as JSON only (deterministic, and no 4.8 MB of plotly.js per figure)."""
    import plotly.io as pio

    if colab:
        pio.renderers.default = "colab"
    elif book.in_book():
        book.use_book_renderer()
    else:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and getattr(shell, "kernel", None) is not None:  # a Jupyter kernel
            pio.renderers.default = "plotly_mimetype"
    return str(pio.renderers.default) or "(plotly default)"  # a terminal or script keeps plotly's choice


def describe_pair(pair: Pair) -> str:
    """'pocket (…)' or 'real Gemma 4 pair', from a Pair-like object's `name` and `is_pocket`."""
    name = getattr(pair, "name", str(pair))
    if getattr(pair, "is_pocket", False):
        return f"{name}: the pocket pair (trained in this repo, runs offline)"
    return f"{name}: a real Gemma 4 pair"


def setup(seed: int = 0, pair: Pair | str | None = None, quiet: bool = False, device: str | None = None) -> LabEnv:
    """Seed, pick device and display, check versions, print them; returns what was chosen.

    `pair`: which pair `labkit.load_pair()` loads ("pocket", "E2B", "E4B", "26B-A4B", "31B", a hub id
    or a folder, "TARGET,DRAFTER"; Colab's form field passes it). The environment variable
    `LABKIT_PAIR` wins over it, so a shell or the test suite can choose for every chapter. A real
    Gemma 4 pair also gets: a line when the runtime has no GPU, and (Colab, no token yet) Hugging
    Face's login box. A loaded pair (anything with `name` and `is_pocket`) is described instead.
    `device`: force one ("cpu", "cuda:1", ...) instead of cuda → mps → cpu.
    """
    colab = in_colab()
    if colab:
        colab_install()
    version_note = check_transformers()
    quiet_torchao()

    import torch
    from transformers import set_seed

    set_seed(seed)  # python's random, numpy and torch, every CUDA device included

    global _ACTIVE
    _ACTIVE = None  # a new setup decides afresh
    chosen, dtype = choose(device)
    threads = 0
    if chosen == "cpu":
        threads = _cpu_threads()
        torch.set_num_threads(threads)

    versions = {"python": platform.python_version()}
    versions.update({p: _version(p) or "not installed" for p in SHOWN_PACKAGES})
    versions["torch"] = torch.__version__
    versions["labkit"] = __version__
    loaded = pair if pair is not None and not isinstance(pair, str) else None
    choice = (os.environ.get("LABKIT_PAIR", "").strip() or (pair if isinstance(pair, str) else "")
              or "pocket")
    env = LabEnv(
        device=chosen,
        dtype=dtype,
        seed=seed,
        colab=colab,
        renderer=_pick_renderer(colab),
        versions=versions,
        threads=threads,
        testing=os.environ.get("LABKIT_TEST") == "1",
        pair=describe_pair(loaded) if loaded is not None else None,
        choice=choice,
        note=version_note,
    )
    _ACTIVE = env
    if not quiet:
        print(summary(env))
    if is_hub_pair(choice):
        if chosen == "cpu" and not quiet:
            print(no_gpu_line(choice, colab))
        hub_login(colab, quiet)
    return env


def is_hub_pair(choice: str) -> bool:
    """A real Gemma 4 pair by hub id or short name (E2B, ...), as opposed to the pocket pair or a folder."""
    target = choice.split(",")[0].strip()
    return target.upper() in ("E2B", "E4B", "26B-A4B", "31B") or target.startswith("google/gemma-4")


def no_gpu_line(choice: str, colab: bool) -> str:
    where = "Runtime > Change runtime type > T4 GPU, then run this cell again" if colab else "a CUDA GPU"
    return (f"You chose {choice}, but this runtime has no GPU: use {where}. On a CPU the real pair loads "
            "in float32 (E2B: about 25 GB) and decodes a token every few seconds; the pocket pair "
            "(pair='pocket') runs every chapter here.")


def hub_login(colab: bool, quiet: bool = False) -> None:
    """Hugging Face's login box, shown only where it is needed: a real pair chosen, no token yet, and a
    notebook to show it in (Colab). Gemma 4's weights also need its licence accepted on the model page."""
    try:
        from huggingface_hub import get_token
    except ImportError:
        return
    if get_token() is not None:
        return
    if colab:
        from huggingface_hub import notebook_login

        print("Gemma 4's weights need a Hugging Face token (and the licence accepted on the model's page):")
        notebook_login()
    elif not quiet:
        print("No Hugging Face token found: `hf auth login` (or HF_TOKEN=...) before loading Gemma 4's weights, "
              "and accept the licence on the model's page.")


def active() -> LabEnv | None:
    """What the last `setup()` chose, or None if it has not run in this process."""
    return _ACTIVE


def summary(env: LabEnv) -> str:
    """The lines `setup()` prints."""
    dtype = str(env.dtype).removeprefix("torch.")
    threads = f", {env.threads} thread{'s' if env.threads > 1 else ''}" if env.threads else ""
    pocket = "; pocket pairs float32" if dtype != "float32" else ""
    lines = [
        f"MTP Lab · labkit {env.versions.get('labkit', '?')} · seed {env.seed}"
        + (" · Google Colab" if env.colab else ""),
        f"device {env.device} ({dtype}{threads}{pocket}) · plotly renderer {env.renderer}",
        " · ".join(f"{k} {v}" for k, v in env.versions.items() if k != "labkit"),
    ]
    if env.pair:
        lines.append(f"pair {env.pair}")
    elif env.choice != "pocket":
        source = "LABKIT_PAIR" if os.environ.get("LABKIT_PAIR", "").strip() else "setup(pair=...)"
        lines.append(f"pair chosen: {env.choice} ({source}); labkit.load_pair() loads it")
    if env.note:
        lines.append(env.note)
    if env.testing:
        lines.append("LABKIT_TEST=1: executed by the test suite (the same workloads as a learner's run)")
    return "\n".join(lines)

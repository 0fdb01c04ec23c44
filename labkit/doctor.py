"""`labkit doctor`: the preflight a workshop participant runs on their own machine (docs/instructors.md).

Checks, each a line with what to do when it fails: Python, torch, transformers, ipywidgets and
JupyterLab against the tested ranges; the device and threads the lab will use; the pocket models
load; then a few-second speed check (the pocket target decoding 32 tokens alone and with its
drafter) that predicts each chapter's Run All time here, by scaling the times measured on the
reference machine (data/doctor_reference.json) by how much slower or faster this machine ran the
same check. Exit code 1 when something blocks the lab. Left out: GPUs' own checks (`make gpu-check`).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from typing import TYPE_CHECKING, Any

from labkit import env
from labkit.errors import LabkitError
from labkit.paths import DATA_DIR

if TYPE_CHECKING:  # for annotations only: loading imports transformers, which doctor checks first
    from labkit.loading import Pair

REFERENCE = DATA_DIR / "doctor_reference.json"
CHECKED = ("torch", "ipywidgets", "jupyterlab")  # beside python and transformers, which have their own checks


def tested_ranges() -> dict[str, str]:
    """{package: version range} for CHECKED, as labkit's installed metadata (pyproject.toml) pins them."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    try:
        wanted = [Requirement(r) for r in requires("labkit") or []]
    except PackageNotFoundError:  # a source tree on sys.path, never installed: nothing to compare with
        return {}
    return {r.name: str(r.specifier) for r in wanted if r.name in CHECKED and r.marker is None}


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def speed_check(pair: Pair, repeats: int = 3) -> float:
    """Seconds for the pocket target to decode 32 tokens alone and then with its drafter (k = 4),
    the fastest of `repeats` (after one warm-up), on one CPU thread: the workload every chapter is
    made of. One thread, because the chapters' time follows one core's speed (Python and small
    matrices), not the thread count (docs/instructors.md has the measurement)."""
    import torch

    from labkit.generation import load_prompts, run

    prompt = load_prompts("prose", 1)[0]
    kw = {"max_new_tokens": 32, "stop_at_eos": False}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run(pair, prompt, path="plain", max_new_tokens=4)  # warm-up, not timed
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            run(pair, prompt, path="plain", **kw)
            run(pair, prompt, k=4, **kw)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return best


def diagnose(print_line: Any = print) -> int:
    """Run every check, print one line each; 0 if the lab can run here, 1 if something blocks it."""
    from packaging.specifiers import SpecifierSet

    blockers = 0
    env.quiet_torchao()  # loading a model imports torchao, whose CPU build logs missing CUDA kernels

    def line(ok: bool, text: str, fix: str = "") -> None:
        nonlocal blockers
        blockers += not ok
        print_line(f"{'ok ' if ok else 'FIX'} {text}" + (f"\n    → {fix}" if fix and not ok else ""))

    py = platform.python_version()
    line(sys.version_info[:2] >= (3, 10) and sys.version_info[:2] < (3, 14), f"python {py}",
         "use Python 3.10 to 3.13 (`make setup` makes a venv with the python it finds)")
    try:
        note = env.check_transformers()
        line(True, f"transformers {_version('transformers')}" + (f" ({note})" if note else ""))
    except LabkitError as e:
        line(False, f"transformers {_version('transformers')}", str(e))
    for name, wanted in tested_ranges().items():
        have = _version(name)
        ok = have is not None and have.split("+")[0] in SpecifierSet(wanted)
        line(ok, f"{name} {have or 'missing'} (tested {wanted})", f"pip install '{name}{wanted}', or `make setup`")
    device, dtype = env.choose()
    import torch

    line(True, f"device {device} ({str(dtype).removeprefix('torch.')}), {torch.get_num_threads()} CPU threads")
    try:
        from labkit import loading, methods  # after the checks above: these import transformers

        pair = loading.load_pair("pocket")
        loading.load_pair("pocket-multimodal")
        methods.load_draft_model(pair)
        loading.load_pair("pocket-chat")  # chapter 10's
        line(True, f"the pocket models load ({pair.label}, pocket multimodal, pocket draft model, pocket chat)")
    except LabkitError as e:
        line(False, "the pocket models", str(e))
        return 1
    seconds = speed_check(pair)
    reference = json.loads(REFERENCE.read_text())
    scale = seconds / reference["speed_check_seconds"]
    line(True, f"speed check: {seconds:.2f} s ({scale:.2f}x the reference machine's "
         f"{reference['speed_check_seconds']:.2f} s, {reference['machine']})")
    predicted = {name: t * scale for name, t in reference["run_all_seconds"].items()}
    print_line("    predicted Run All per chapter here: " + ", ".join(f"{n} {t:.0f} s" for n, t in predicted.items()))
    return 1 if blockers else 0

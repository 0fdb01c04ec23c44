"""Execute notebooks once, into build/executed/: the one execution that `make test` pays for.

Each notebook runs top to bottom in a fresh kernel of this interpreter (the venv's ipykernel), in its
own folder as JupyterLab would run it, offline on the pocket models, with

- LABKIT_TEST=1 (changes no workload: the suite runs what a learner runs),
- LABKIT_BOOK=1 (`labkit.book`: every figure and labkit widget carries a static HTML copy beside its
  live form, so the book renders these copies without executing again, and JupyterLab still shows
  the live figure and, once its cells re-run, the live widget),
- a 120 s limit per cell (the suite's promise that every cell runs on a laptop CPU).

Writes build/executed/<path>.ipynb (the executed copy; up to the failing cell when one fails) and
build/executed/<path>.json (ok, seconds, threads, the error), and appends a line per notebook to
build/executed/log.txt. Everything else reads the copies: the book (docs/book/conf.py), the output
checks (tests/test_notebooks.py, tests/test_audit.py), the browser tests (tests/test_browser.py).
`make executed` calls this once per notebook whose inputs changed, two at a time (see the Makefile).

    python scripts/execute_notebooks.py notebooks/00_tour.ipynb [more.ipynb ...] [--threads 1]

Exit status 1 when any notebook failed; the failing cell's error is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("LABKIT_EXECUTED", ROOT / "build" / "executed"))
CELL_TIMEOUT = 120  # seconds


def kernel_dirs(tmp: Path) -> list[str]:
    """A kernelspec for this interpreter, so the notebooks import the labkit of this checkout."""
    spec = tmp / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "labkit", "language": "python"}))
    return [str(tmp)]


def kernel_env(threads: int | None = None, book: bool = True) -> dict[str, str]:
    """The kernel's environment: offline, seeded hashing, LABKIT_TEST=1 (and LABKIT_BOOK=1 for the build)."""
    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", LABKIT_TEST="1", PYTHONHASHSEED="0",
               PYDEVD_DISABLE_FILE_VALIDATION="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if book:
        env["LABKIT_BOOK"] = "1"
    if threads:
        env["LABKIT_THREADS"] = str(threads)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def copy_path(notebook: Path) -> Path:
    """Where the executed copy of `notebook` goes: build/executed/<its path in the repo>."""
    return OUT / notebook.resolve().relative_to(ROOT)


def live_cells(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Only the code cells tagged `live`: what the chapter's live widgets need, in order (the
    browser test re-runs these in JupyterLab; tests/test_colab_versions.py runs them under Colab's
    widget versions)."""
    keep = [c for c in nb.cells if c.cell_type == "code" and "live" in c.metadata.get("tags", [])]
    return nbformat.v4.new_notebook(cells=keep, metadata=nb.metadata)


def run(nb: nbformat.NotebookNode, folder: Path, env: dict[str, str]) -> dict:
    """Execute `nb` in place, in `folder`, in a fresh kernel of this interpreter; returns
    {"ok", "seconds", "error"} (the error text when a cell failed)."""
    status: dict = {"ok": False}
    with tempfile.TemporaryDirectory() as tmp:
        km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(Path(tmp) / "ipc"),  # local sockets, no TCP warning
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs(Path(tmp))))
        client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, startup_timeout=180,  # a busy machine starts kernels slowly
                                resources={"metadata": {"path": str(folder)}})
        start = time.perf_counter()
        try:
            client.execute(env=env)
            status["ok"] = True
        except CellExecutionError as err:
            status["error"] = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # the traceback without its colours
        except Exception as err:  # a kernel that died or a timeout: say so
            status["error"] = f"{type(err).__name__}: {err}"
        status["seconds"] = round(time.perf_counter() - start, 1)
    return status


def execute(notebook: Path, threads: int | None = None) -> dict:
    """Run `notebook` once; write its executed copy and status; return the status."""
    name = str(notebook.resolve().relative_to(ROOT))
    nb = nbformat.read(notebook, as_version=4)
    target = copy_path(notebook)
    target.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    status = {"notebook": name, "threads": threads or 0, "started": started,
              **run(nb, notebook.resolve().parent, kernel_env(threads))}
    nbformat.write(nb, target)
    target.with_suffix(".json").write_text(json.dumps(status, indent=1) + "\n")
    if not status["ok"]:  # kept for reading, but older than its sources: the next `make` runs it again
        os.utime(target, (0, 0))
    line = (f"{started}  executed {name} in {status['seconds']:.1f} s"
            f" ({threads or 'default'} threads){'' if status['ok'] else '  FAILED'}")
    with open(OUT / "log.txt", "a") as log:
        log.write(line + "\n")
    print(line, flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads per notebook (LABKIT_THREADS); default: labkit.setup's choice")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    for notebook in args.notebooks:
        status = execute(notebook, args.threads)
        if not status["ok"]:
            failed.append(status)
    for status in failed:
        print(f"\n{status['notebook']} failed:\n{status['error'][-6000:]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

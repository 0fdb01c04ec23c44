"""Every notebook ran top to bottom, is committed without outputs, and has its jupytext twin.

`make executed` (scripts/execute_notebooks.py) runs each chapter and solution once, in a fresh kernel
of this interpreter, in the notebook's own folder (as JupyterLab would), with a 120 s limit per cell
and LABKIT_TEST=1 (which changes no workload: the suite runs what a learner runs), into
build/executed/ (LABKIT_EXECUTED elsewhere). The tests here read those copies: each is there, ran
every cell without an error, and is a copy of the notebook as it is now. Wall times go to
tests/artifacts/notebook_times.json.
There is no exclude list: a notebook that cannot run in the suite is a failing notebook.
"""

import json
import os
import sys
from datetime import datetime
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import execute_notebooks  # noqa: E402  (the build's executor: its kernelspec and environment)
NOTEBOOKS = Path(os.environ.get("LABKIT_NOTEBOOKS", ROOT / "notebooks"))  # another folder: for trying the suite
ARTIFACTS = Path(os.environ.get("LABKIT_ARTIFACTS", Path(__file__).resolve().parent / "artifacts"))
EXECUTED = Path(os.environ.get("LABKIT_EXECUTED", ROOT / "build" / "executed"))
CELL_TIMEOUT = 120  # seconds; the suite's promise that every cell runs on a laptop CPU


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb")) + sorted(NOTEBOOKS.glob("solutions/*.ipynb"))


def params() -> list:
    found = notebooks()
    if not found:  # an empty parametrize would skip; a lab without notebooks must fail
        return [pytest.param(None, id="no-notebooks")]
    return [pytest.param(p, id=str(p.relative_to(NOTEBOOKS))) for p in found]


def require(path: Path | None) -> Path:
    if path is None:
        pytest.fail(f"no notebooks found in {NOTEBOOKS} or its solutions/ folder")
    return path


@pytest.fixture(scope="session")
def kernel_dirs(tmp_path_factory) -> list[str]:
    """A kernelspec for this interpreter, so the notebook imports the labkit under test."""
    return execute_notebooks.kernel_dirs(tmp_path_factory.mktemp("kernels"))


def record_time(name: str, seconds: float, ok: bool) -> None:
    path = ARTIFACTS / "notebook_times.json"
    times = json.loads(path.read_text()) if path.exists() else {}
    times[name] = {"seconds": round(seconds, 1), "ok": ok}
    path.write_text(json.dumps(dict(sorted(times.items())), indent=1) + "\n")


def executed_copy(path: Path) -> Path:
    """Where `make executed` put the executed copy of `path` (same path under build/executed/)."""
    return EXECUTED / path.resolve().relative_to(ROOT)


def code_sources(nb) -> list[str]:
    return [c.source.strip() for c in nb.cells if c.cell_type == "code"]


@pytest.mark.notebooks
@pytest.mark.parametrize("path", params())
def test_notebook_runs(path):
    """The notebook's executed copy ran every cell, without an error, from the notebook as it is now."""
    path = require(path)
    name = str(path.relative_to(NOTEBOOKS))
    copy = executed_copy(path)
    if not copy.exists():
        pytest.fail(f"{name} has no executed copy at {copy}: run `make executed` (`make test` does)", pytrace=False)
    status = json.loads(copy.with_suffix(".json").read_text())
    ARTIFACTS.mkdir(exist_ok=True)
    record_time(name, status.get("seconds", 0.0), status["ok"])
    if not status["ok"]:
        pytest.fail(f"{name} failed in a cell (executed copy: {copy}):\n{status.get('error', '')[-4000:]}",
                    pytrace=False)
    nb, ran = nbformat.read(path, as_version=4), nbformat.read(copy, as_version=4)
    assert code_sources(ran) == code_sources(nb), (
        f"{copy} is a copy of an older {name}: run `make executed`")
    unrun = [i for i, c in enumerate(ran.cells) if c.cell_type == "code" and c.execution_count is None
             and c.source.strip()]
    errors = [i for i, c in enumerate(ran.cells) if c.cell_type == "code"
              and any(o.output_type == "error" for o in c.get("outputs", []))]
    assert not unrun and not errors, f"{name}: cells {unrun} never ran, cells {errors} show an error"


@pytest.mark.parametrize("path", params())
def test_committed_without_outputs(path):
    path = require(path)
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"
    assert "widgets" not in nb.metadata, f"{path.name} stores widget state; clear it before committing"


def cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells if c.cell_type in ("code", "markdown")]


@pytest.mark.parametrize("path", params())
def test_jupytext_twin_in_sync(path):
    path = require(path)
    twin = path.with_suffix(".py")
    assert twin.exists(), f"{twin.name} is missing; run: jupytext --sync {path.relative_to(ROOT)}"
    assert cells(jupytext.read(path)) == cells(jupytext.read(twin)), (
        f"{path.name} and {twin.name} differ; run: jupytext --sync {path.relative_to(ROOT)}")


def test_every_text_notebook_has_an_ipynb():
    """A .py without its .ipynb would never be executed by the suite."""
    texts = sorted(NOTEBOOKS.glob("*.py")) + sorted(NOTEBOOKS.glob("solutions/*.py"))
    orphans = [str(p.relative_to(ROOT)) for p in texts if not p.with_suffix(".ipynb").exists()]
    assert not orphans, f"no .ipynb for {orphans}; run: jupytext --sync <file.py>"


class _RecordingClient(NotebookClient):
    """A NotebookClient that notes every message it sends the kernel on the shell channel."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        send = kc.shell_channel.send

        def recording(msg):
            self.sent.append(msg["msg_type"])
            send(msg)

        kc.shell_channel.send = recording
        return kc


@pytest.mark.notebooks
def test_widget_cells_do_not_stall_nbclient(kernel_dirs, tmp_path):
    """Issue 27.7: 04 sat ~120 s (CELL_TIMEOUT) after its SweepExplorer cell.

    The explorer drew its figures with `with out: display(...)` while its cell ran. nbclient mimics
    the Output widget: for each captured output it sends a comm_msg on the shell socket, a plain
    synchronous zmq send, while it awaits the cell's execute_reply on that socket. When the reply
    has just arrived, the send swallows the socket's edge-triggered wake-up and the reply is read
    only when the wait times out (120 s here, never under `jupyter nbconvert --execute`). Here a few
    explorer cells run with a 10 s timeout (the imports before them with the usual one): nbclient
    must send the kernel nothing but requests, no cell may wait, and each explorer's Output must
    hold its figures.
    """
    cells, timeout = 6, 10
    setup = ("import sys\n"
             f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
             "from test_plots_widgets import make_trace\n"
             "import plotly.io as pio\n"
             "from labkit.widgets import SweepExplorer\n"
             "pio.renderers.default = 'plotly_mimetype'  # labkit.setup()'s choice in a kernel\n"
             "def run(k, temperature):\n"
             "    return [make_trace(accepted=[min(k, a) for a in (0, 1, 2, 3, 1)], k=k, temperature=temperature)]")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup)]
                                  + [nbformat.v4.new_code_cell("SweepExplorer(run, k=2)") for _ in range(cells)])
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs))
    client = _RecordingClient(nb, km=km, resources={"metadata": {"path": str(tmp_path)}},
                              timeout_func=lambda cell: CELL_TIMEOUT if cell is nb.cells[0] else timeout)
    client.execute(env=execute_notebooks.kernel_env(book=False))
    assert set(client.sent) <= {"kernel_info_request", "execute_request"}, (
        f"nbclient answered the kernel on the shell socket ({sorted(set(client.sent))}): an Output "
        "captured output while its cell ran; draw with labkit.widgets.show_in")
    stamps = [c.metadata["execution"] for c in nb.cells]
    waits = [(datetime.fromisoformat(b["iopub.execute_input"].replace("Z", "+00:00"))
              - datetime.fromisoformat(a["shell.execute_reply"].replace("Z", "+00:00"))).total_seconds()
             for a, b in zip(stamps, stamps[1:])]
    assert max(waits) < timeout / 2, f"seconds between a cell's reply and the next cell's start: {waits}"
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    drawn = [[sorted(o["data"]) for o in w["state"]["outputs"]] for w in state.values()
             if w["model_name"] == "OutputModel"]
    assert len(drawn) == cells and all(len(figs) == 2 for figs in drawn), drawn
    assert all("application/vnd.plotly.v1+json" in mimes for figs in drawn for mimes in figs), drawn

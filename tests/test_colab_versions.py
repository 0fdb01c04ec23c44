"""The widgets, and the chapters' live widgets, under Colab's versions: ipywidgets 7.7.1, plotly 5.24.

The venv has ipywidgets 8 and a newer plotly; Colab ships 7.7.1 and 5.24. `make test` installs
Colab's versions into .venv/colab-widgets (beside the venv, not in it). This test runs the widget
unit tests in a child pytest with that folder first on PYTHONPATH, then, in kernels that inherit it,
each widget chapter's `live` cells: the cells its widgets need (scripts/execute_notebooks.live_cells),
as a learner's Colab would run them; the rest of each chapter ran once in `make executed`. It checks
the Python side; Colab's browser half cannot run here.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
OVERLAY = ROOT / ".venv" / "colab-widgets"
# TourPanel, RoundStepper, SweepExplorer, MediaPanel, DrafterRace
WIDGET_NOTEBOOKS = ("00_tour", "03_verify_and_accept", "04_acceptance", "06_multimodal", "08_choosing_a_drafter")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]


@pytest.fixture(scope="module")
def overlay_env() -> dict[str, str]:
    if not (OVERLAY / ".installed").exists():
        pytest.fail(f"{OVERLAY} is missing: `make test` installs it (or: make {OVERLAY.relative_to(ROOT)}/.installed)")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(OVERLAY), os.environ.get("PYTHONPATH")])))


def test_widget_unit_tests_under_colab_versions(tmp_path, overlay_env):
    env = dict(overlay_env, LABKIT_ARTIFACTS=str(tmp_path / "artifacts"))
    probe = subprocess.run([sys.executable, "-c", "import ipywidgets, plotly; print(ipywidgets.__version__, plotly.__version__)"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert probe.stdout.split() == ["7.7.1", "5.24.1"], probe.stderr[-2000:]
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_plots_widgets.py",
         "tests/test_media.py", "-k", "test_plots_widgets or test_media_panel or test_uploads"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    summary = child.stdout.strip().splitlines()[-1] if child.stdout.strip() else ""
    assert child.returncode == 0, f"under ipywidgets 7.7.1 / plotly 5.24.1: {summary}\n{child.stdout[-4000:]}"
    assert "passed" in summary and "failed" not in summary


@pytest.mark.parametrize("name", WIDGET_NOTEBOOKS)
def test_live_cells_under_colab_versions(name, overlay_env):
    sys.path.insert(0, str(ROOT / "scripts"))
    from execute_notebooks import kernel_env, live_cells, run

    path = ROOT / "notebooks" / f"{name}.ipynb"
    nb = live_cells(nbformat.read(path, as_version=4))
    assert nb.cells, f"{path.name} tags no cell `live`: tag the cells its widget needs (# %% tags=[\"live\"])"
    versions = "import ipywidgets, plotly; print(ipywidgets.__version__, plotly.__version__)"
    nb.cells.insert(0, nbformat.v4.new_code_cell(versions))
    env = dict(kernel_env(book=False), PYTHONPATH=overlay_env["PYTHONPATH"])
    status = run(nb, path.parent, env)
    assert status["ok"], f"{name}'s live cells under ipywidgets 7.7.1:\n{status.get('error', '')[-4000:]}"
    assert nb.cells[0].outputs[0]["text"].split() == ["7.7.1", "5.24.1"]
    shown = [o for c in nb.cells for o in c.outputs if WIDGET_VIEW in o.get("data", {})]
    assert shown, f"{name}'s live cells showed no widget"

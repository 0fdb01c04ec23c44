"""The widgets, and the notebooks that use them, under Colab's versions: ipywidgets 7.7.1, plotly 5.24.

The venv has ipywidgets 8 and a newer plotly; Colab ships 7.7.1 and 5.24. `make test` installs
Colab's versions into .venv/colab-widgets (beside the venv, not in it), and this test runs the widget
unit tests and the widget notebooks in a child pytest with that folder first on PYTHONPATH, which the
notebooks' kernels inherit. It checks the Python side; Colab's browser half cannot run here.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OVERLAY = ROOT / ".venv" / "colab-widgets"
# TourPanel, RoundStepper, SweepExplorer, MediaPanel, DrafterRace
WIDGET_NOTEBOOKS = ("00_tour", "03_verify_and_accept", "04_acceptance", "06_multimodal", "08_choosing_a_drafter")

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]


def test_widgets_and_widget_notebooks_under_colab_versions(tmp_path):
    if not (OVERLAY / ".installed").exists():
        pytest.fail(f"{OVERLAY} is missing: `make test` installs it (or: make {OVERLAY.relative_to(ROOT)}/.installed)")
    env = dict(os.environ, LABKIT_ARTIFACTS=str(tmp_path / "artifacts"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(OVERLAY), os.environ.get("PYTHONPATH")])))
    probe = subprocess.run([sys.executable, "-c", "import ipywidgets, plotly; print(ipywidgets.__version__, plotly.__version__)"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert probe.stdout.split() == ["7.7.1", "5.24.1"], probe.stderr[-2000:]
    notebooks = " or ".join(WIDGET_NOTEBOOKS)
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_plots_widgets.py",
         "tests/test_media.py", "tests/test_notebooks.py", "-k",
         f"test_plots_widgets or test_media_panel or test_uploads or (test_notebook_runs and ({notebooks}))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    summary = child.stdout.strip().splitlines()[-1] if child.stdout.strip() else ""
    assert child.returncode == 0, f"under ipywidgets 7.7.1 / plotly 5.24.1: {summary}\n{child.stdout[-4000:]}"
    assert "passed" in summary and "failed" not in summary

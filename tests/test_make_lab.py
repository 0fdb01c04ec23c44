"""`make lab`, the README's first command, starts a JupyterLab that answers on its URL.

Runs the real Makefile target (setup and the pocket pair are already there when the suite runs
through `make test`, so it goes straight to `jupyter lab`) on a free port with a known token, waits
for the server's API and its notebook listing, then stops the server and everything it started.
"""

import json
import os
import secrets
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_make_lab_answers_on_its_url(tmp_path, free_port, wait_for_http, stop_server):
    make = shutil.which("make")
    if make is None:
        pytest.fail("`make` is not installed: the README's commands need it (apt-get install make)")
    token = secrets.token_hex(16)
    flags = f"--IdentityProvider.token={token} --ServerApp.open_browser=False --ServerApp.port_retries=0"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    log = tmp_path / "make_lab.log"
    with open(log, "w") as out:
        server = subprocess.Popen([make, "-C", str(ROOT), "lab", f"PORT={free_port}", f"LAB_FLAGS={flags}"],
                                  stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{free_port}"
    try:
        wait_for_http(f"{base}/api/status?token={token}", server, log=log, timeout=300)
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10) as page:
            assert page.status == 200 and b"JupyterLab" in page.read()
        with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=10) as listing:
            names = {item["name"] for item in json.load(listing)["content"]}
        assert "00_tour.ipynb" in names, f"the lab does not serve notebooks/: {sorted(names)}"
        assert "00_tour.py" not in names, f"each chapter should be listed once, without its jupytext twin: {sorted(names)}"
    finally:
        stop_server(server)

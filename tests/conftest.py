"""Fixtures shared across test files: the tiny random pair on disk, and what the tests that start
a JupyterLab server need (test_browser, test_make_lab).

Test helpers that build models live in tests/fixtures/ (`from fixtures import trained_tiny`).
"""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny() -> Path:
    """The tiny random-weight pair of the real Gemma 4 classes, saved once (tests/fixtures/tiny_pair.py)."""
    from fixtures import tiny_pair

    return tiny_pair.build()


@pytest.fixture
def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_http(url: str, process: subprocess.Popen, log: Path | None = None, timeout: float = 120.0) -> None:
    """Until `url` answers 200; fails early, with the server's log, if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = log.read_text(errors="replace")[-5000:] if log and log.exists() else ""
            pytest.fail(f"the server exited with {process.returncode} before answering {url}:\n{out}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"nothing answered {url} within {timeout:.0f} s")


@pytest.fixture(scope="session")
def wait_for_http() -> Callable[..., None]:
    return _wait_for_http


def _stop(process: subprocess.Popen) -> None:
    """Stop a server started with start_new_session=True, and everything it started (kernels)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def stop_server() -> Callable[[subprocess.Popen], None]:
    return _stop

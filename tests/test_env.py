"""`labkit.setup()`, the first cell of every notebook, and the light `import labkit`."""

import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import plotly.io as pio
import pytest
import torch

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import labkit
from labkit import env as labenv
from labkit.errors import UnsupportedVersionError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def renderer():
    """setup() sets plotly's global renderer; put it back."""
    before = pio.renderers.default
    yield
    pio.renderers.default = before


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_setup_seeds_everything(renderer):
    labkit.setup(seed=3, quiet=True)
    first = draws()
    labkit.setup(seed=3, quiet=True)
    assert draws() == first
    labkit.setup(seed=4, quiet=True)
    assert draws() != first


def test_setup_on_this_machine(renderer, capsys):
    env = labkit.setup()
    out = capsys.readouterr().out
    expected = "cuda" if torch.cuda.is_available() else env.device
    assert env.device == expected and env.seed == 0 and not env.colab
    if env.device == "cpu":
        assert env.dtype == torch.float32 and env.threads == torch.get_num_threads() >= 1
    for package in ("python", "torch", "transformers", "ipywidgets", "plotly", "labkit"):
        assert package in env.versions and package in out
    assert env.versions["labkit"] == labkit.__version__
    assert "LabEnv(" in repr(env) and "<table" in env._repr_html_()
    hash(env)  # frozen, and usable as a dict key


def test_quiet_prints_nothing(renderer, capsys):
    labkit.setup(quiet=True)
    assert capsys.readouterr().out == ""


def test_forced_device(renderer):
    assert labkit.setup(device="cpu", quiet=True).device == "cpu"


@pytest.mark.parametrize("pocket, words", [(True, "pocket pair"), (False, "real Gemma 4 pair")])
def test_setup_names_the_pair(renderer, capsys, pocket, words):
    pair = SimpleNamespace(name="google/gemma-4-E2B-it" if not pocket else "pocket", is_pocket=pocket)
    env = labkit.setup(pair=pair)
    assert words in env.pair and words in capsys.readouterr().out


@pytest.mark.parametrize("version", ["5.8.0", "5.15.1", "5.22.2", "5.24.0", "5.25.0", "6.0.0.dev0"])
def test_supported_transformers(version):
    labenv.check_transformers(version)


@pytest.mark.parametrize("version, words", [
    ("5.23.0", "cannot construct Gemma4AssistantForCausalLM"),
    ("5.23.1", "cannot construct"),
    ("5.7.2", "too old"),
    ("4.57.0", "too old"),
])
def test_unsupported_transformers(version, words):
    with pytest.raises(UnsupportedVersionError, match=words) as err:
        labenv.check_transformers(version)
    assert labenv.TRANSFORMERS_PIN in str(err.value)  # the message says what to install


def test_missing_transformers(monkeypatch):
    monkeypatch.setattr(labenv, "_version", lambda p: None)
    with pytest.raises(UnsupportedVersionError, match="not installed"):
        labenv.check_transformers()


@pytest.mark.parametrize("version, outside", [
    ("5.8.0", True), ("5.15.1", True), ("5.21.0", True), ("5.22.2", False), ("5.24.0", False),
    ("5.24.1", False), ("5.25.0", False), ("5.25.0.dev0", False), ("5.26.0", True), ("5.26.0.dev0", True),
    ("6.0.0", True),
])
def test_versions_outside_the_tested_range_get_a_note(version, outside):
    note = labenv.check_transformers(version)
    assert bool(note) is outside
    if outside:
        assert "5.22.0 to 5.25.0" in note and labenv.TRANSFORMERS_PIN in note
        from packaging.version import Version

        assert ("older" in note) is (Version(version) < Version("5.22"))


def test_setup_names_the_tested_range(monkeypatch, renderer, capsys):
    real = labenv._version
    monkeypatch.setattr(labenv, "_version", lambda p: "5.30.0" if p == "transformers" else real(p))
    env = labkit.setup()
    assert "5.22.0 to 5.25.0" in env.note and env.note in capsys.readouterr().out


def test_the_tested_releases_are_within_the_pin():
    from packaging.specifiers import SpecifierSet

    pin = SpecifierSet(labenv.TRANSFORMERS_PIN.removeprefix("transformers"))
    assert all(v in pin for v in labenv.TRANSFORMERS_TESTED)
    assert not list(pin.filter(["5.21.0", "5.23.0", "5.26.0"]))
    newest = labenv.TRANSFORMERS_TESTED[-1]
    major, minor = map(int, newest.split(".")[:2])
    assert f"{major}.{minor + 1}.0" not in pin  # the ceiling is the newest release the matrix passed
    readme = (ROOT / "README.md").read_text()
    assert all(v in readme for v in labenv.TRANSFORMERS_TESTED)  # its "Tested with" table


def test_setup_refuses_transformers_5_23(monkeypatch):
    real = labenv._version
    monkeypatch.setattr(labenv, "_version", lambda p: "5.23.0" if p == "transformers" else real(p))
    with pytest.raises(UnsupportedVersionError):
        labkit.setup(quiet=True)


def test_pin_matches_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert labenv.TRANSFORMERS_PIN in deps


def test_colab_installs_the_lab_but_keeps_colab_torch(monkeypatch, renderer):
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    calls = []
    real = labenv._version
    monkeypatch.setitem(sys.modules, "google.colab", ModuleType("google.colab"))
    monkeypatch.setattr(labenv, "_version", lambda p: None if p == "labkit" else real(p))
    monkeypatch.setattr(labenv.importlib.metadata, "requires",
                        lambda name: deps + ['pytest; extra == "test"'])
    monkeypatch.setattr(labenv, "_pip", lambda *args: calls.append(args))
    env = labkit.setup(quiet=True)
    assert env.colab and env.renderer == "colab"
    assert calls[0] == ("--no-deps", "-e", str(ROOT))
    names = {labenv._requirement_name(r) for r in calls[1]}
    assert labenv.TRANSFORMERS_PIN in calls[1] and "accelerate" in names  # a tested transformers
    assert not names & {"torch", "jupyterlab", "ipywidgets", "pytest"}


def test_colab_install_is_a_no_op_once_installed(monkeypatch):
    monkeypatch.setattr(labenv, "_version", lambda p: "0.1.0")
    monkeypatch.setattr(labenv, "_pip", lambda *args: pytest.fail("pip ran again"))
    assert labenv.colab_install() is False


def test_import_labkit_is_light():
    code = "import sys, labkit; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_every_reexport_resolves():
    assert set(labkit.__all__) == {"__version__", *labkit._EXPORTS, *labkit._MODULES}
    for name in labkit.__all__:
        assert getattr(labkit, name) is not None, name
    assert set(labkit.__all__) <= set(dir(labkit))
    with pytest.raises(AttributeError):
        labkit.no_such_name  # noqa: B018


def test_cpu_threads_leave_busy_cores_alone(monkeypatch):
    monkeypatch.delenv("LABKIT_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(labenv.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(labenv.os, "getloadavg", lambda: (0.1, 0.0, 0.0), raising=False)
    assert labenv._cpu_threads() == 4
    monkeypatch.setattr(labenv.os, "getloadavg", lambda: (2.5, 0.0, 0.0), raising=False)
    assert labenv._cpu_threads() == 2
    monkeypatch.setattr(labenv.os, "getloadavg", lambda: (9.0, 0.0, 0.0), raising=False)
    assert labenv._cpu_threads() == 1
    monkeypatch.setenv("LABKIT_THREADS", "3")
    assert labenv._cpu_threads() == 3


# ---------------------------------------------------------------- one decision for device and dtype


@pytest.fixture
def gpu(monkeypatch):
    """A CUDA machine as torch reports it, without one: set bf16 with gpu(bf16=...)."""
    monkeypatch.setattr(labenv, "_ACTIVE", None)  # and put back whatever setup() chose before

    def make(bf16: bool):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    return make


@pytest.mark.parametrize("bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_cuda_dtype_depends_on_native_bf16(gpu, bf16, expected):
    gpu(bf16)
    assert labenv.choose() == ("cuda", expected)  # Colab's T4 (no native bf16): float16
    assert labenv.choose(pocket=True) == ("cuda", torch.float32)  # pocket pairs: fp32 everywhere
    assert labenv.choose("cpu") == ("cpu", torch.float32)
    assert labenv.choose(dtype=torch.float32) == ("cuda", torch.float32)  # told otherwise


def test_mps_and_cpu(monkeypatch):
    monkeypatch.setattr(labenv, "_ACTIVE", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert labenv.choose("mps") == ("mps", torch.float16)
    assert labenv.choose("mps", pocket=True) == ("mps", torch.float32)
    assert labenv.choose("cpu")[1] == torch.float32


def test_setup_and_later_calls_share_one_choice(gpu, renderer, capsys):
    gpu(False)
    env = labkit.setup()
    assert (env.device, env.dtype) == ("cuda", torch.float16)
    assert "pocket pairs float32" in capsys.readouterr().out
    assert labenv.active() is env
    assert labenv.choose() == ("cuda", torch.float16)  # load_pair asks this, so it follows setup
    labkit.setup(device="cpu", quiet=True)
    assert labenv.choose() == ("cpu", torch.float32) and labenv.choose(pocket=True)[0] == "cpu"
    assert labenv.choose("cuda:1") == ("cuda:1", torch.float16)

"""The install stays coherent: pyproject.toml, environment.yml, the Makefile, CI and the README agree,
and the installed transformers can still build the MTP drafter (run this before raising its pin)."""

import re
from pathlib import Path

import pytest
import torch
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())
CONDA_NAMES = {"pytorch": "torch", "pysoundfile": "soundfile"}  # conda-forge name -> PyPI name


def pip_requirements() -> dict[str, SpecifierSet]:
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    return {r.name.lower(): r.specifier for r in reqs}


def conda_requirements() -> dict[str, SpecifierSet]:
    out = {}
    for dep in ENVIRONMENT["dependencies"]:
        if not isinstance(dep, str):
            continue  # the pip: section
        name, spec = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", dep).groups()
        if name in ("python", "pip"):
            continue
        out[CONDA_NAMES.get(name, name).lower()] = SpecifierSet(spec)
    return out


def test_environment_yml_has_the_same_dependencies():
    assert conda_requirements() == pip_requirements()


def test_environment_yml_installs_labkit_with_test_and_book_extras():
    pip_section = next(d["pip"] for d in ENVIRONMENT["dependencies"] if isinstance(d, dict))
    assert pip_section == ["-e .[test,book]"]
    assert {"test", "book"} <= set(PYPROJECT["project"]["optional-dependencies"])


def test_python_range():
    supported = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert all(f"3.{minor}" in supported for minor in (10, 11, 12, 13))  # 3.13: Colab
    assert "3.9" not in supported and "3.14" not in supported
    conda_python = next(d for d in ENVIRONMENT["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert conda_python.removeprefix("python=") in supported


@pytest.mark.parametrize("version, allowed", [
    ("5.7.0", False), ("5.8.0", False), ("5.15.0", False), ("5.21.1", False), ("5.22.0", True), ("5.22.2", True),
    ("5.23.0", False), ("5.23.1", False), ("5.24.0", True), ("5.25.0", True), ("5.26.0", False),
])
def test_transformers_pin_excludes_5_23(version, allowed):
    assert (Version(version) in pip_requirements()["transformers"]) is allowed
    assert (Version(version) in conda_requirements()["transformers"]) is allowed


def test_installed_transformers_is_within_the_pin():
    import transformers

    assert Version(transformers.__version__) in pip_requirements()["transformers"], (
        f"transformers {transformers.__version__} is installed; run `make setup` to get a supported one"
    )


def test_make_test_is_the_readme_and_ci_command():
    ci = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert ci[-1] == "make test"  # the last thing CI does is exactly the README's command
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme[:1500] and "make lab" in readme[:1500]  # both near the top
    assert re.search(r"^test:", (ROOT / "Makefile").read_text(), re.M)


def test_transformers_can_build_tiny_assistant():
    """The canary for a transformers bump: build the pocket drafter's architecture (tiny vocabulary)
    and run one assisted generate. 5.23.0 fails at construction."""
    from transformers import Gemma4AssistantForCausalLM, Gemma4ForCausalLM

    from labkit import pocket

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest and immune to a busy machine
    try:
        torch.manual_seed(0)
        target_cfg = pocket.target_config(vocab_size=256)
        target = Gemma4ForCausalLM(target_cfg).eval()
        drafter = Gemma4AssistantForCausalLM(pocket.drafter_config(target_cfg)).eval()
        assert drafter.config.model_type == "gemma4_assistant"
        drafter.generation_config.num_assistant_tokens = 3
        drafter.generation_config.num_assistant_tokens_schedule = "constant"
        ids = torch.randint(3, 256, (1, 8), generator=torch.Generator().manual_seed(0))
        kw = {"do_sample": False, "max_new_tokens": 4, "pad_token_id": 0, "eos_token_id": None}
        with torch.no_grad():
            plain = target.generate(ids, **kw)
            assisted = target.generate(ids, assistant_model=drafter, **kw)
        assert assisted.tolist() == plain.tolist()  # greedy: speculative output equals the target's
    finally:
        torch.set_num_threads(threads)


def _two_positions_through_an_assistant(**kwargs):
    """A tiny random assistant's logits for two positions at once, as labkit.distill runs it."""
    from transformers import Gemma4AssistantForCausalLM, Gemma4ForCausalLM

    from fixtures import trained_tiny

    torch.manual_seed(0)
    target_cfg, drafter_cfg = trained_tiny.configs()
    target = Gemma4ForCausalLM(target_cfg).eval()
    drafter = Gemma4AssistantForCausalLM(drafter_cfg).eval()
    ids = torch.randint(3, trained_tiny.VOCAB, (1, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = target(input_ids=ids, output_hidden_states=True, return_shared_kv_states=True, use_cache=False)
        x = torch.cat([target.get_input_embeddings()(ids), out.hidden_states[-1]], dim=-1)[:, -2:]
        return drafter(inputs_embeds=x, position_ids=torch.tensor([[8, 8]]),
                       shared_kv_states=dict(out.shared_kv_states), **kwargs).logits


def test_multi_position_assistant_forward_canary():
    """The canary for docs/transformers-5.24-assistant.md: transformers 5.24 crashes on an assistant
    forward over several positions with an integer `logits_to_keep` (its default), so labkit.distill
    passes `distill.EVERY_POSITION`. The workaround must work on every release and change nothing.
    The crash is expected on 5.24.x only: 5.25.0 fixed it (it skips slicing `per_layer_inputs` when
    that is None; version matrix of 2026-12-06). If another release crashes, record it in the doc;
    drop the workaround once the pin's floor is past 5.24."""
    import transformers

    from labkit import distill

    version = Version(Version(transformers.__version__).base_version)
    broken = Version("5.24") <= version < Version("5.25")
    worked_around = _two_positions_through_an_assistant(**distill.EVERY_POSITION)
    try:
        plain = _two_positions_through_an_assistant()
    except TypeError as e:
        assert "not subscriptable" in str(e)
        assert broken, f"transformers {version} crashes too: add it to docs/transformers-5.24-assistant.md"
        return
    assert not broken, (
        f"transformers {version} runs a multi-position assistant forward with an integer logits_to_keep, "
        "which 5.24.0 could not: record the release in docs/transformers-5.24-assistant.md.")
    assert torch.equal(plain, worked_around)  # the workaround changes no number

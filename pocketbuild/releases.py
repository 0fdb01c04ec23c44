"""One transformers release beside the venv, and the upstream findings measured on it.

Used by `scripts/version_matrix.py`. `install` puts a release into a folder of its own (`pip install
--target ROOT/VERSION --no-deps`, plus whichever of its pinned dependencies the venv's versions do not
satisfy, e.g. the tokenizers and huggingface-hub that 5.8 wants); `env` puts that folder first on
PYTHONPATH, so the venv itself is never touched. `probe` measures the findings on the transformers
it imports; run it in a process started with `env`.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _requirements(folder: Path) -> list[str]:
    """The runtime requirements (no extras) of every distribution installed in `folder`."""
    reqs = []
    for dist in importlib.metadata.distributions(path=[str(folder)]):
        reqs += [r for r in dist.requires or [] if "extra ==" not in r]
    return reqs


def _unmet(folder: Path, reqs: list[str]) -> list[str]:
    """Requirements neither the folder nor the venv satisfies."""
    from packaging.requirements import Requirement

    have: dict[str, str] = {}
    for d in importlib.metadata.distributions(path=[str(folder), *sys.path]):  # the folder's first
        have.setdefault(d.metadata["Name"].lower().replace("_", "-"), d.version)
    out = []
    for text in reqs:
        r = Requirement(text)
        if r.marker is not None and not r.marker.evaluate():
            continue
        name = r.name.lower().replace("_", "-")
        if name == "torch":
            continue  # never: the venv's torch is the one under test
        version = have.get(name)
        if version is None or (r.specifier and version not in r.specifier):
            out.append(str(r).split(";")[0])
    return sorted(set(out))


def install(version: str, root: Path) -> Path:
    """transformers==version and its unmet pinned dependencies in root/version (once)."""
    folder = root / version
    if (folder / ".installed").exists():
        return folder
    pip = [sys.executable, "-m", "pip", "install", "-q", "--upgrade", "--no-deps", "--target", str(folder)]
    subprocess.run([*pip, f"transformers=={version}"], check=True)
    for _ in range(3):  # the added packages' own requirements, a level or two down
        missing = _unmet(folder, _requirements(folder))
        if not missing:
            break
        subprocess.run([*pip, *missing], check=True)
    (folder / ".installed").write_text(json.dumps(_unmet(folder, _requirements(folder))))
    return folder


def env(folder: Path) -> dict[str, str]:
    """The environment that runs the repository on the release in `folder`, with its own tiny fixtures."""
    return {**os.environ,
            "PYTHONPATH": os.pathsep.join([str(folder), str(REPO), os.environ.get("PYTHONPATH", "")]),
            "LABKIT_FIXTURE_MODELS": str(folder / "fixture-models"),
            "PYTHONDONTWRITEBYTECODE": "1"}


def probe() -> dict:
    """The findings on the transformers on the path: versions, then one entry per finding."""
    import torch
    import transformers

    sys.path[:0] = [str(REPO / "tests"), str(REPO)]  # the fixtures build their drafter with pocketbuild
    from fixtures import trained_tiny
    from transformers import Gemma4AssistantForCausalLM, Gemma4ForCausalLM

    from labkit import metrics
    from labkit.glassbox import speculate
    from labkit.trace import Decoding
    from labkit.tracing import audit_drafter_kv, trace_generate

    torch.set_num_threads(1)
    out: dict = {"transformers": transformers.__version__, "torch": torch.__version__}

    # The 5.24 crash: two positions through an assistant with the default (integer) logits_to_keep.
    tcfg, dcfg = trained_tiny.configs()
    torch.manual_seed(0)
    target, drafter = Gemma4ForCausalLM(tcfg).eval(), Gemma4AssistantForCausalLM(dcfg).eval()
    ids = torch.randint(3, trained_tiny.VOCAB, (1, 8))
    with torch.no_grad():
        t = target(input_ids=ids, output_hidden_states=True, return_shared_kv_states=True, use_cache=False)
        x = torch.cat([target.get_input_embeddings()(ids), t.hidden_states[-1]], -1)[:, -2:]
        try:
            drafter(inputs_embeds=x, position_ids=torch.tensor([[8, 8]]), shared_kv_states=dict(t.shared_kv_states))
            out["multi_position_crash"] = False
        except TypeError as e:
            out["multi_position_crash"] = str(e)

    target, drafter = trained_tiny.load()  # trained by this release (LABKIT_FIXTURE_MODELS)
    prompts = [torch.randint(3, trained_tiny.VOCAB, (1, 10), generator=torch.Generator().manual_seed(s))
               for s in range(4)]

    def attempt(what, fn):  # one finding's failure must not hide the others
        try:
            out[what] = fn()
        except Exception as e:  # noqa: BLE001 - recorded in the table
            out[what] = {"error": f"{type(e).__name__}: {e}"[:160]}

    def stale_kv() -> dict:
        audits = [a for p in prompts for a in audit_drafter_kv(target, drafter, p, k=4, max_new_tokens=64)]
        return {"rounds": len(audits),
                "rounds_with_stale_full_kv": sum(a.full_stale > 0 for a in audits),
                "rounds_with_stale_sliding_kv": sum(a.sliding_stale > 0 for a in audits)}

    def tv(lossless: bool) -> float:  # as tests/test_glassbox.py::test_exact_distance_to_target
        settings = Decoding(k=4, max_new_tokens=40, temperature=1.0, lossless=lossless)
        return metrics.summarize(trace_generate(target, drafter, prompts[0], settings)).tv

    attempt("stale_kv", stale_kv)
    attempt("sampling_tv", lambda: {"transformers": tv(False), "transformers_lossless": tv(True)})
    attempt("glassbox_tv", lambda: metrics.summarize(
        speculate(target, drafter, prompts[0], Decoding(k=4, max_new_tokens=40, temperature=1.0))).tv)
    return out

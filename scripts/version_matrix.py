"""Run the lab's fast unit tests and the two upstream findings on several transformers releases.

    python scripts/version_matrix.py                      # the README's releases, one at a time
    python scripts/version_matrix.py 5.24.0 --out /tmp/m.md

Each release is installed into a folder of its own (`pip install --target .venv/transformers-matrix/V
--no-deps`, plus whichever of its pinned dependencies the venv's versions do not satisfy, e.g.
the tokenizers and huggingface-hub that 5.8 wants) and put first on PYTHONPATH, so the venv itself
is never touched. For each release it records:

- the unit tests on the tiny pairs: `pytest -m "not slow and not notebooks and not browser"`, with
  the tiny fixtures built afresh by that release (LABKIT_FIXTURE_MODELS), so distillation runs on it;
- whether transformers' MTP drafter still reads K/V of a rejected draft (docs/stale-kv.md): rounds
  audited by `labkit.tracing.audit_drafter_kv` on the tests' tiny trained pair, greedy;
- whether transformers' MTP sampling path is still biased (argmax drafts verified as if sampled):
  total-variation distance of its per-step output distribution from the target's, as in
  tests/test_glassbox.py::test_exact_distance_to_target (> 0.05: biased; labkit's lossless path
  must stay < 1e-6);
- whether a multi-position assistant forward with an integer `logits_to_keep` crashes
  (docs/transformers-5.24-assistant.md; labkit passes a slice, so the lab is unaffected).

It writes a Markdown table (stdout and --out, default docs/version-matrix.md) and logs under
--logs. Slow on a busy 2-core machine (~10 min a release): run it with nohup.
Left out: the slow tests, the notebooks and the browser test (run `make test` for those).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# (release, why it is in the matrix)
RELEASES = {
    "5.8.1": "first with gemma4_assistant; below the pin",
    "5.15.1": "Colab's (5.15); below the pin",
    "5.22.0": "lowest the lab claims (>=5.22)",
    "5.22.2": "the pocket pairs' and shipped traces'",
    "5.24.0": "newest; what `make setup` installs",
}
FAST = "not slow and not notebooks and not browser"


# ---------------------------------------------------------------- install


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


def _env(folder: Path, logs: Path) -> dict[str, str]:
    return {**os.environ,
            "PYTHONPATH": os.pathsep.join([str(folder), str(REPO), os.environ.get("PYTHONPATH", "")]),
            "LABKIT_FIXTURE_MODELS": str(folder / "fixture-models"),
            "PYTHONDONTWRITEBYTECODE": "1"}


# ---------------------------------------------------------------- one release


def run_tests(version: str, folder: Path, logs: Path, timeout: int) -> dict:
    xml = logs / f"pytest-{version}.xml"
    cmd = [sys.executable, "-m", "pytest", "-m", FAST, "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
           "--timeout=600"]
    start = time.monotonic()
    with open(logs / f"pytest-{version}.log", "w") as log:
        proc = subprocess.run(cmd, cwd=REPO, env=_env(folder, logs), stdout=log, stderr=subprocess.STDOUT,
                              timeout=timeout)
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "seconds": round(time.monotonic() - start)}
    broken = []
    if xml.exists():
        for case in ET.parse(xml).getroot().iter("testcase"):
            kinds = {child.tag for child in case}
            name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
            if "error" in kinds:
                counts["errors"] += 1
                broken.append(name)
            elif "failure" in kinds:
                counts["failed"] += 1
                broken.append(name)
            elif "skipped" in kinds:
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
    counts["returncode"] = proc.returncode
    counts["broken"] = broken
    return counts


def probe() -> dict:
    """The findings on the transformers on the path (run in a subprocess per release)."""
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

    def tv(lossless: bool) -> float:
        settings = Decoding(k=4, max_new_tokens=40, temperature=1.0, lossless=lossless)
        return metrics.summarize(trace_generate(target, drafter, prompts[0], settings)).tv

    attempt("stale_kv", stale_kv)
    attempt("sampling_tv", lambda: {"transformers": tv(False), "transformers_lossless": tv(True)})
    attempt("glassbox_tv", lambda: metrics.summarize(
        speculate(target, drafter, prompts[0], Decoding(k=4, max_new_tokens=40, temperature=1.0))).tv)
    return out


def run_probe(version: str, folder: Path, logs: Path, timeout: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe"]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(folder, logs), capture_output=True, text=True, timeout=timeout)
    (logs / f"probe-{version}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last[:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the table


def _tests_cell(t: dict) -> str:
    if "skipped_install" in t:
        return f"not installable: {t['skipped_install']}"
    cell = f"{t['passed']} passed"
    for what in ("failed", "errors"):
        if t[what]:
            cell += f", {t[what]} {'error' + ('s' if t[what] > 1 else '') if what == 'errors' else what}"
    return cell


def _finding_cells(p: dict) -> tuple[str, str, str]:
    if "error" in p:
        return (f"probe failed: {p['error']}",) * 3
    s, tv, gb = p["stale_kv"], p["sampling_tv"], p.get("glassbox_tv")
    if "error" in s:
        stale = f"not measured: {s['error']}"
    else:
        stale = ("yes" if s["rounds_with_stale_full_kv"] else "no") + \
            f": {s['rounds_with_stale_full_kv']} of {s['rounds']} rounds"
    if "error" in tv:
        bias = f"not measured: {tv['error']}"
    else:
        bias = ("yes" if tv["transformers"] > 0.05 else "no") + \
            f": TV {tv['transformers']:.2f} (lossless hook {tv['transformers_lossless']:.0e}"
        bias += f", glass box {gb:.0e})" if isinstance(gb, float) else ", glass box failed)"
    crash = "yes (TypeError)" if p["multi_position_crash"] else "no"
    return stale, bias, crash


def table(results: list[dict]) -> str:
    head = ("| transformers | why | unit tests (fast, tiny pairs) | stale K/V after a rejection "
            "| sampling bias (argmax draft, softmax verify) | multi-position assistant forward crashes |\n"
            "|---|---|---|---|---|---|")
    rows = []
    for r in results:
        stale, bias, crash = _finding_cells(r["probe"]) if "probe" in r else ("–", "–", "–")
        rows.append(f"| {r['version']} | {RELEASES.get(r['version'], '')} | {_tests_cell(r['tests'])} "
                    f"| {stale} | {bias} | {crash} |")
    return "\n".join([head, *rows])


def notes(results: list[dict]) -> str:
    lines = []
    for r in results:
        broken = r["tests"].get("broken", [])
        if broken:
            shown = ", ".join(broken[:6]) + (f" and {len(broken) - 6} more" if len(broken) > 6 else "")
            lines.append(f"- {r['version']}: {shown}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("versions", nargs="*", default=list(RELEASES))
    ap.add_argument("--root", type=Path, default=REPO / ".venv" / "transformers-matrix",
                    help="where each release is installed (one folder each)")
    ap.add_argument("--logs", type=Path, default=REPO / ".venv" / "transformers-matrix" / "logs")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "version-matrix.md")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per release for the tests")
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        print(json.dumps(probe()))
        return
    args.logs.mkdir(parents=True, exist_ok=True)
    results = []
    for version in args.versions:
        print(f"transformers {version}: installing", flush=True)
        result: dict = {"version": version}
        try:
            folder = install(version, args.root)
        except subprocess.CalledProcessError as e:
            result["tests"] = {"skipped_install": f"pip exited {e.returncode}"}
            results.append(result)
            continue
        print(f"transformers {version}: unit tests", flush=True)
        result["tests"] = run_tests(version, folder, args.logs, args.timeout)
        print(f"transformers {version}: findings", flush=True)
        result["probe"] = run_probe(version, folder, args.logs, args.timeout)
        print(json.dumps(result), flush=True)
        results.append(result)
        (args.logs / "results.json").write_text(json.dumps(results, indent=1))
    torch_version = importlib.metadata.version("torch")
    md = (f"{table(results)}\n\nPython {platform.python_version()}, torch {torch_version}, CPU, "
          f"`python scripts/version_matrix.py`.")
    broken = notes(results)
    if broken:
        md += f"\n\nTests that failed or errored:\n{broken}"
    print(md)
    args.out.write_text("# transformers version matrix\n\nWritten by `scripts/version_matrix.py`; "
                        "see its docstring for what each column measures.\n\n" + md + "\n")


if __name__ == "__main__":
    main()

"""Run the lab's fast unit tests and the two upstream findings on several transformers releases.

    python scripts/version_matrix.py                      # the README's releases, one at a time
    python scripts/version_matrix.py 5.24.0 --out /tmp/m.md

Each release goes into a folder of its own, first on PYTHONPATH, so the venv is never touched
(pocketbuild/releases.py). For each release it records:

- the unit tests on the tiny pairs: `pytest -m "not slow and not notebooks and not browser"`, with
  the tiny fixtures built afresh by that release (LABKIT_FIXTURE_MODELS), so distillation runs on it;
- whether transformers' MTP drafter still reads K/V of a rejected draft (docs/stale-kv.md): greedy
  rounds of the tests' tiny trained pair, audited by `labkit.tracing.audit_drafter_kv`;
- whether transformers' MTP sampling path is still biased (argmax drafts verified as if sampled):
  total-variation distance of its per-step output distribution from the target's (> 0.05: biased;
  labkit's lossless path must stay < 1e-6);
- whether a multi-position assistant forward with an integer `logits_to_keep` crashes
  (docs/transformers-5.24-assistant.md; labkit passes a slice, so the lab is unaffected).

It writes a Markdown table (stdout and --out, default docs/version-matrix.md) and logs under --logs.
About 10 min a release on 2 busy cores: run it with nohup.
Left out: the slow tests, the notebooks and the browser test (run `make test` for those).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pocketbuild.releases import env, install, probe  # noqa: E402

# (release, why it is in the matrix)
RELEASES = {
    "5.8.1": "first with gemma4_assistant; below the pin",
    "5.15.1": "Colab's (5.15); below the pin",
    "5.22.0": "lowest the lab claims (>=5.22)",
    "5.22.2": "the pocket pairs' and shipped traces'",
    "5.24.0": "the one that crashes a multi-position assistant forward",
    "5.25.0": "newest; what `make setup` installs",
}
FAST = "not slow and not notebooks and not browser"
# A junit testcase's child tag -> its count in the table, the first match winning.
OUTCOMES = {"error": "errors", "failure": "failed", "skipped": "skipped"}


def run_tests(version: str, folder: Path, logs: Path, timeout: int) -> dict:
    """The fast tests on the release in `folder`: counts by outcome, and the tests that broke."""
    xml = logs / f"pytest-{version}.xml"
    cmd = [sys.executable, "-m", "pytest", "-m", FAST, "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
           "--timeout=600"]
    start = time.monotonic()
    with open(logs / f"pytest-{version}.log", "w") as log:
        proc = subprocess.run(cmd, cwd=REPO, env=env(folder), stdout=log, stderr=subprocess.STDOUT,
                              timeout=timeout)
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "seconds": round(time.monotonic() - start)}
    broken = []
    cases = ET.parse(xml).getroot().iter("testcase") if xml.exists() else []
    for case in cases:
        kinds = {child.tag for child in case}
        outcome = next((OUTCOMES[tag] for tag in OUTCOMES if tag in kinds), "passed")
        counts[outcome] += 1
        if outcome in ("errors", "failed"):
            broken.append(f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}")
    return {**counts, "returncode": proc.returncode, "broken": broken}


def run_probe(version: str, folder: Path, logs: Path, timeout: int) -> dict:
    """The findings on the release in `folder`, measured by this script's --probe in a process of its own."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe"]
    proc = subprocess.run(cmd, cwd=REPO, env=env(folder), capture_output=True, text=True, timeout=timeout)
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
    if t["failed"]:
        cell += f", {t['failed']} failed"
    if t["errors"]:
        cell += f", {t['errors']} error" + ("s" if t["errors"] > 1 else "")
    return cell


def _finding_cells(p: dict) -> tuple[str, str, str]:
    if "error" in p:
        return (f"probe failed: {p['error']}",) * 3
    s, tv, gb = p["stale_kv"], p["sampling_tv"], p.get("glassbox_tv")
    if "error" in s:
        stale = f"not measured: {s['error']}"
    else:
        full = s["rounds_with_stale_full_kv"]
        stale = f"{'yes' if full else 'no'}: {full} of {s['rounds']} rounds"
    if "error" in tv:
        bias = f"not measured: {tv['error']}"
    else:
        glass = f"glass box {gb:.0e}" if isinstance(gb, float) else "glass box failed"
        bias = (f"{'yes' if tv['transformers'] > 0.05 else 'no'}: TV {tv['transformers']:.2f} "
                f"(lossless hook {tv['transformers_lossless']:.0e}, {glass})")
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
        if broken := r["tests"].get("broken", []):
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
        results.append(result)
        try:
            folder = install(version, args.root)
        except subprocess.CalledProcessError as e:
            result["tests"] = {"skipped_install": f"pip exited {e.returncode}"}
            continue
        print(f"transformers {version}: unit tests", flush=True)
        result["tests"] = run_tests(version, folder, args.logs, args.timeout)
        print(f"transformers {version}: findings", flush=True)
        result["probe"] = run_probe(version, folder, args.logs, args.timeout)
        print(json.dumps(result), flush=True)
        (args.logs / "results.json").write_text(json.dumps(results, indent=1))
    md = (f"{table(results)}\n\nPython {platform.python_version()}, torch {importlib.metadata.version('torch')}, "
          f"CPU, `python scripts/version_matrix.py`.")
    if broken := notes(results):
        md += f"\n\nTests that failed or errored:\n{broken}"
    print(md)
    args.out.write_text("# transformers version matrix\n\nWritten by `scripts/version_matrix.py`; "
                        "see its docstring for what each column measures.\n\n" + md + "\n")


if __name__ == "__main__":
    main()

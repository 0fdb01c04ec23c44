"""`labkit bench --json` and `labkit tour` on a tiny pair; errors as one line and exit code 2."""

from __future__ import annotations

import json


from labkit import cli


def test_bench_json(tiny, capsys):
    code = cli.main(["bench", "--json", "--pair", str(tiny / "target"), "--drafter", str(tiny / "drafter"),
                     "--n", "2", "--max-new-tokens", "16", "--quiet", "--device", "cpu"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["identical"] is True and result["repeats"] == 3  # the fastest of 3 runs by default
    for key in ("tau", "acceptance_by_position", "speedup", "trace_overhead", "glassbox_vs_transformers"):
        assert key in result


def test_bench_sampling_reports_distances(tiny, capsys):
    code = cli.main(["bench", "--json", "--pair", str(tiny / "target"), "--drafter", str(tiny / "drafter"),
                     "--n", "1", "--max-new-tokens", "12", "--temperature", "1.0", "--quiet",
                     "--prompts", "code"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["tv_glassbox"] < 1e-5 and result["tv_transformers_lossless"] < 1e-5


def test_tour(tiny, capsys):
    code = cli.main(["tour", "--pair", str(tiny / "target"), "--drafter", str(tiny / "drafter"),
                     "--max-new-tokens", "12", "--no-color"])
    out = capsys.readouterr().out
    assert code == 0 and "tau" in out and "same text as the target alone: True" in out


def test_error_is_one_line(capsys):
    code = cli.main(["bench", "--pair", "google/gemma-4-E9B-it"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "unknown Gemma 4 id" in err


def test_doctor_checks_the_machine_and_predicts_chapter_times(capsys):
    from labkit import doctor

    lines = []
    code = doctor.diagnose(lines.append)
    text = "\n".join(lines)
    assert code == 0 and "FIX" not in text, text
    assert "the pocket models load" in text and "speed check" in text
    assert all(f" {n} " in text for n in ("00", "07", "08")), "a predicted time for every chapter"


def test_doctor_says_how_to_fix_a_blocker(monkeypatch):
    from labkit import doctor

    ranges = doctor.tested_ranges()
    assert set(ranges) == set(doctor.CHECKED), "the ranges come from labkit's installed metadata"
    monkeypatch.setattr(doctor, "tested_ranges", lambda: {**ranges, "jupyterlab": ">=99"})
    lines = []
    assert doctor.diagnose(lines.append) == 1
    assert any(line.startswith("FIX jupyterlab") for line in lines) and any("→ pip install" in line for line in lines)

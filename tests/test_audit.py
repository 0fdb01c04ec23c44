"""The lab's laws, read off what the chapters printed: no speedup above its tau, none above k + 1.

A round costs at least one target forward, and a forward over k + 1 tokens costs at least a
one-token forward, so speculative decoding cannot beat plain decoding by more than the tokens it
gets per target forward: speedup <= tau <= k + 1. A printed speedup above its tau means the timing
was unfair (one path paid a warm-up the other did not, or one lucky run), never that the method is
good.

`laws_broken(text)` checks one text (a cell's printed output, a widget's table as the browser reads
it) and returns one message per broken law; `tests/test_browser.py` imports it for the widgets'
tables. The tests here read the executed chapters and solutions in build/executed/notebooks/
(`make executed`, or LABKIT_EXECUTED=<folder>), written by scripts/execute_notebooks.py.

What counts as printed together:
- a line with "speedup" in it and a number glued to "x" or "×" ("1.42x", "1.42 [1.30, 1.55]×"), or
  one after "speedup" (=, :, of); its tau is a "tau" number on the same line (paired by order when
  the line has as many of each), else the nearest one above it in the same output, else below;
- a table whose header has a "tau" and a "speedup" column: tab-separated (a browser's innerText,
  and the HTML tables here are read the same way) or space-aligned (a printed table), each row's
  cells read under their headers; a "k" column, or "k = N" on the line or above, gives k.
A speedup with no tau near it is checked against k + 1 only; with neither, not at all.
"""

from __future__ import annotations

import html as html_lib
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = Path(os.environ.get("LABKIT_EXECUTED", ROOT / "build" / "executed")) / "notebooks"
SLACK = 0.10  # a speedup may exceed its tau by this fraction before it counts as broken (timing noise)

_NUM = r"(\d+(?:\.\d+)?)"
_INTERVAL = r"(?:\s*\[[^\]\n]*\])?"  # an Estimate prints "value [lo, hi]"
_GLUED = re.compile(_NUM + _INTERVAL + r"[x×](?![\w(])")  # 1.42x, 1.42×, 1.42 [1.3, 1.5]x; not "3.30 × 1.02"
_AFTER_WORD = re.compile(r"speedup\w*\s*(?:on this prompt\s*)?(?:=|:|of|is)?\s*" + _NUM)
_TAU = re.compile(r"\btau\b\s*(?:=|:|of|is)?\s*" + _NUM)
_K = re.compile(r"\bk\s*=\s*(\d+)")


def _glued(line: str) -> list[tuple[int, float]]:
    """(position, value) of every number glued to x/× on the line: "1.42x", "1.42 [1.3, 1.6]×"."""
    out = []
    for m in _GLUED.finditer(line):
        # "10× slower" is a rate, "×0.45" a factor: only a number followed by x/× and not by a word
        if line[m.end():m.end() + 7].strip().startswith(("slower", "faster than", "more", "less", "fewer")):
            continue
        if "predict" in line[max(0, m.start() - 16):m.start()].lower():  # a guess or a model, not a measurement
            continue
        out.append((m.start(), float(m.group(1))))
    return out


def _speedups(line: str) -> list[float]:
    """Speedups printed on a line that says "speedup": the glued ones, else the one after the word."""
    if "speedup" not in line.lower():
        return []
    low = line.lower()
    at = low.index("speedup")
    glued = [v for pos, v in _glued(line) if pos > at]  # a factor before the word is something else
    if glued:
        return glued
    m = _AFTER_WORD.search(low)
    return [float(m.group(1))] if m else []


def _taus(line: str) -> list[float]:
    return [float(m.group(1)) for m in _TAU.finditer(line.lower())]


def _ks(line: str) -> list[int]:
    return [int(m.group(1)) for m in _K.finditer(line)]


def _cells(line: str) -> list[tuple[int, int, str]]:
    """A table line's cells with their spans: tab-separated, else runs split by two or more spaces."""
    if "\t" in line:
        out, pos = [], 0
        for cell in line.split("\t"):
            out.append((pos, pos + len(cell), cell.strip()))
            pos += len(cell) + 1
        return out
    return [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", line)]


def _header(line: str) -> dict[str, int] | None:
    """Column indices of tau, speedup (and k) if `line` is a table header with tau and speedup columns."""
    cells = [c.lower() for _, _, c in _cells(line)]
    cols = {}
    for i, cell in enumerate(cells):
        if cell.startswith("tau") and "tau" not in cols:
            cols["tau"] = i
        elif cell.startswith("speedup") and "speedup" not in cols:
            cols["speedup"] = i
        elif cell == "k":
            cols["k"] = i
    return cols if {"tau", "speedup"} <= cols.keys() else None


def _first_number(text: str) -> float | None:
    m = re.search(_NUM, text)
    return float(m.group(1)) if m else None


def _row(header: str, line: str, cols: dict[str, int]) -> dict[str, float] | None:
    """A data row's tau, speedup (and k), read under the header's columns; None if it is not one."""
    if "\t" in header:
        cells = [c for _, _, c in _cells(line)]
        values = {name: _first_number(cells[i]) if i < len(cells) else None for name, i in cols.items()}
    else:  # space-aligned: the value whose span overlaps its header cell's the most
        spans = _cells(header)
        tokens = [(m.start(), m.end(), float(m.group(1)))
                  for m in re.finditer(_NUM + _INTERVAL + r"[x×]?", line)]
        values = {}
        for name, i in cols.items():
            a, b = spans[i][0], spans[i][1]
            best = max(tokens, key=lambda t: (min(b, t[1]) - max(a, t[0]), -abs(t[1] - b)), default=None)
            values[name] = best[2] if best and min(b, best[1]) - max(a, best[0]) > -3 else None
    if values.get("tau") is None or values.get("speedup") is None:
        return None
    return values


def _judge(speedup: float, tau: float | None, k: int | None, where: str) -> list[str]:
    broken = []
    if tau is not None and speedup > tau * (1 + SLACK):
        broken.append(f"speedup {speedup:.2f}x exceeds tau {tau:.2f} by more than {SLACK:.0%}: {where}")
    if k is not None and speedup > k + 1:
        broken.append(f"speedup {speedup:.2f}x exceeds k + 1 = {k + 1}: {where}")
    if k is not None and tau is not None and tau > k + 1 + 1e-6:
        broken.append(f"tau {tau:.2f} exceeds k + 1 = {k + 1}: {where}")
    return broken


def laws_broken(text: str) -> list[str]:
    """Every printed speedup above its tau (by more than 10 %) or above k + 1, as messages naming the line.

    `text` is one output as a learner reads it: printed lines, or a widget's text (tables as
    tab-separated rows, as a browser's innerText gives them). An empty list when every law holds.
    """
    lines = text.splitlines()
    broken: list[str] = []
    header: tuple[str, dict[str, int]] | None = None
    for n, line in enumerate(lines):
        where = line.strip()
        if not where:
            header = None
            continue
        cols = _header(line)
        if cols:
            header = (line, cols)
            continue
        if header:  # a table runs to the next blank line; a line that is not a row (a sub-header) is read as text
            row = _row(header[0], line, header[1])
            if row:
                k = row.get("k")
                k = int(k) if k is not None else _nearest_k(lines, n)
                broken += _judge(row["speedup"], row["tau"], k, where)
                continue
        speedups = _speedups(line)
        if not speedups:
            continue
        taus = _taus(line)
        if not taus:
            near = _nearest(lines, n, _taus)
            taus = [near] if near is not None else []
        ks = _ks(line)
        k = ks[0] if len(ks) == 1 else _nearest_k(lines, n) if not ks else None
        for i, s in enumerate(speedups):
            if len(taus) == len(speedups):
                tau = taus[i]
            else:
                tau = max(taus) if taus else None
            kk = ks[i] if len(ks) == len(speedups) else k
            broken += _judge(s, tau, kk, where)
    return broken


def _nearest(lines: list[str], n: int, find) -> float | None:
    """The value `find` reads from the closest line above n, else below, within the same output."""
    for i in [*range(n - 1, -1, -1), *range(n + 1, len(lines))]:
        found = find(lines[i])
        if found:
            return found[-1] if i < n else found[0]
    return None


def _nearest_k(lines: list[str], n: int) -> int | None:
    for i in range(n, -1, -1):
        found = _ks(lines[i])
        if found:
            return found[-1]
    return None


# -- reading the executed notebooks ------------------------------------------------------------------

_BLOCK = re.compile(r"</(?:tr|div|p|li|h\d|table|caption)>|<br\s*/?>", re.I)


def html_text(markup: str) -> str:
    """HTML as a reader sees its text: scripts and styles dropped, table cells tab-separated, rows and
    blocks on lines of their own (what a browser's innerText gives)."""
    markup = re.sub(r"<(script|style)\b.*?</\1>", "", markup, flags=re.S | re.I)
    markup = re.sub(r"</t[dh]>\s*<t[dh]\b", "</td>\t<td", markup, flags=re.I)
    markup = _BLOCK.sub("\n", markup)
    text = html_lib.unescape(re.sub(r"<[^>]+>", "", markup))
    return "\n".join(re.sub(r"[ \u00a0]+", " ", line).strip(" ") for line in text.splitlines())


def output_texts(nb) -> list[tuple[int, str]]:
    """(cell index, text) of every text output of a notebook: streams, text/plain, and the text/html of
    outputs that are not figures (a widget's static snapshot is text/html)."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                out.append((i, o.text))
            elif o.output_type in ("execute_result", "display_data"):
                data = o.get("data", {})
                if "application/vnd.plotly.v1+json" in data or any(m.startswith("image/") for m in data):
                    continue
                if "text/html" in data:
                    out.append((i, html_text(data["text/html"])))
                elif "text/plain" in data:
                    out.append((i, data["text/plain"]))
    return out


def executed_notebooks() -> list[Path]:
    return sorted(EXECUTED.glob("*.ipynb")) + sorted(EXECUTED.glob("solutions/*.ipynb"))


# -- unit tests of the reader ------------------------------------------------------------------------

def _printed_09(tau: str, speedup: str) -> str:
    """A table as 09_serving prints it: a header, a sub-header, then rows (the same f-strings)."""
    head = f"{'variant':<22}{'MB':>11}{'tok/s':>12}{'tau':>18}{'speedup':>18}{'= float32':>11}\n"
    head += f"{'':<22}{'tgt + drf':>11}{'plain/spec':>12}\n"
    return head + f"{'int8':<22}{58.1:>6.1f} +{3.5:>4.1f}{31.2:>7.1f}/{45.0:<4.1f}{tau:>18}{speedup:>18}{6:>7} / {16}"


def _printed_06(tau: str, speedup: str) -> str:
    head = f"{'':34s} {'right':>6s} {'same':>5s} {'tau [90% interval]':>19s} {'speedup [90% interval]':>23s}\n"
    return head + f"{'image · what colour':34s} {'8/8':>6s} {'8/8':>5s} {tau:>19s} {speedup:>22s}x"


GOOD = [
    _printed_09("3.22 [3.10, 3.33]", "1.41 [1.30, 1.50]"),
    _printed_06("2.10 [1.90, 2.30]", "1.30 [1.10, 1.50]"),
    "tau = 3.20 tokens per target forward (plain decoding: 1.00)\n"
    "speedup on this prompt = 1.31× (median of 5 paired timings, range 1.22–1.40)",
    "k = 1: speedup 1.33 [1.18, 1.55]x   tokens per full round 1.77",
    "    prose  prompt-lookup  tau 1.10 [1.02, 1.19]  speedup 1.04 [0.98, 1.09]×",
    "method\tk\ttau\tspeedup\tsame text\nmtp\t4\t3.10\t1.42×\tyes\nprompt-lookup\t4\t1.10\t1.03×\tyes",
    "variant                    MB       tok/s               tau           speedup\n"
    "float32                  58.1        31.2  3.22 [3.10, 3.33]  1.41 [1.30, 1.50]",
    "tau = 1.90\nSpeedup 3.30 × 1.02 / 1.87 = 1.80× : speculation comes out faster",
    "replay: 10× slower; tau = 1.00, k = 4",
    "tau 1.20\nspeedup at k = 3: you predicted 1.7x, measured 1.16x, close (within 25 %)",
]
BAD = [
    ("speculative (k = 4): 32 tokens, 8 target forwards, 0.21 s\n"
     "tau = 4.00 tokens per target forward (plain decoding: 1.00)\n"
     "speedup on this prompt = 12.43x  (pocket pair, greedy, this machine)", "exceeds tau 4.00"),
    ("     prose prompt-lookup: tau 1.26 now, 1.26 recorded;  speedup 1.67× now, 0.36× recorded",
     "exceeds tau 1.26"),
    ("method\tk\ttau\tspeedup\tsame text\nprompt-lookup\t4\t1.10\t1.53×\tyes", "exceeds tau 1.10"),
    ("variant                    MB       tok/s               tau           speedup\n"
     "float32                  58.1        31.2  1.22 [1.10, 1.33]  1.91 [1.30, 2.50]", "exceeds tau 1.22"),
    ("k = 2: speedup 3.40x", "exceeds k + 1 = 3"),
    (_printed_09("1.22 [1.10, 1.33]", "1.91 [1.30, 2.50]"), "exceeds tau 1.22"),
    (_printed_06("1.10 [1.00, 1.20]", "1.60 [1.10, 1.90]"), "exceeds tau 1.10"),
    ("     task         method                 tau              speedup\n"
     "    prose  prompt-lookup   1.21 [1.15, 1.27]   1.90 [1.66, 2.16]×", "exceeds tau 1.21"),
    ("pocket pair, greedy, k = 4, 32 new tokens: same text as the target alone: yes · tau = 4.00 tokens per target "
     "forward (8 forwards instead of 32) · speedup = 12.43× (one run each; plain 2.650 s (one run), speculative "
     "0.213 s (one run); one prompt)", "exceeds tau 4.00"),
]


@pytest.mark.parametrize("text", GOOD)
def test_a_lawful_line_passes(text):
    assert laws_broken(text) == []


@pytest.mark.parametrize("text,why", BAD)
def test_a_speedup_above_its_tau_or_k_plus_one_fails(text, why):
    broken = laws_broken(text)
    assert broken and why in broken[0], broken


def test_html_tables_read_as_rows_of_cells():
    markup = ("<div>pocket pair, 32 new tokens</div><table><tr><th>method</th><th>k</th><th>tau</th>"
              "<th>speedup</th></tr><tr><td>prompt-lookup</td><td>4</td><td>1.10</td><td>1.53×</td></tr></table>"
              "<script>var speedup = 99.0x;</script>")
    text = html_text(markup)
    assert "method\tk\ttau\tspeedup" in text and "99" not in text
    assert laws_broken(text) and "1.53" in laws_broken(text)[0]


# -- the executed chapters ---------------------------------------------------------------------------


def test_every_printed_speedup_obeys_the_laws():
    import nbformat

    notebooks = executed_notebooks()
    if not notebooks:
        pytest.fail(f"no executed chapters in {EXECUTED}: run `make executed` first "
                    "(or set LABKIT_EXECUTED to a folder that holds them)")
    broken = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        for cell, text in output_texts(nb):
            broken += [f"{path.relative_to(EXECUTED.parent)}, cell {cell}: {msg}" for msg in laws_broken(text)]
    assert not broken, "printed numbers that cannot be true:\n" + "\n".join(broken)


# -- the one timing helper every live timing uses ----------------------------------------------------


def test_time_paths_warms_up_interleaves_and_reports_the_median_run():
    from dataclasses import replace

    from labkit.checks import synthetic_trace
    from labkit.experiments import Timed, speedup_of, time_paths

    calls, clock = [], iter([9.0, 1.0, 1.2, 0.5, 0.4, 1.1, 0.6, 0.45, 0.3])

    def runner(name):
        def run():
            calls.append(name)
            return replace(synthetic_trace((1,), 2), wall=next(clock))
        return run

    timed = time_paths({"plain": runner("plain"), "spec": runner("spec")}, repeats=3)
    # one untimed warm-up each (the 9 s first call is never reported), then turns with a rotating start
    assert calls == ["plain", "spec", "plain", "spec", "spec", "plain", "plain", "spec"]
    assert timed["plain"].seconds == (1.2, 1.1, 0.6) and timed["spec"].seconds == (0.5, 0.4, 0.45)
    assert timed["plain"].trace.wall == 1.1 == timed["plain"].median  # the median run's trace
    s = speedup_of(timed["plain"], timed["spec"])  # repeat by repeat: 2.4, 2.75, 1.33
    assert (s.lo, s.hi, s.repeats) == (0.6 / 0.45, 1.1 / 0.4, 3) and s.value == 1.2 / 0.5
    assert "median of 3" in str(s) and "one run each" in str(speedup_of(Timed.once(replace(synthetic_trace((1,), 2), wall=1.0)),
                                                                            Timed.once(replace(synthetic_trace((1,), 2), wall=0.5))))


def test_timed_race_times_every_method_on_every_text(tiny):
    import labkit
    from labkit import bench, metrics

    pair = labkit.load_pair(tiny / "target", tiny / "drafter")
    timed = bench.timed_race(pair, ["The cat sat", "To be or not"], ("none", "prompt-lookup"), 2, max_new_tokens=4)
    assert set(timed) == {"none", "prompt-lookup"} and all(len(v) == 2 for v in timed.values())
    assert all(len(t.seconds) == 1 and t.trace.wall == t.seconds[0] for v in timed.values() for t in v)
    assert metrics.tau([t.trace for t in timed["none"]]) == 1.0
    assert [t.trace.new_ids for t in timed["none"]] == [t.trace.new_ids for t in timed["prompt-lookup"]]

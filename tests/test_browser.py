"""The chapters in a real browser: JupyterLab draws every executed figure, and the widgets work.

JupyterLab serves a temporary copy of the executed chapters (build/executed/notebooks/, from `make
executed`; saving never touches the repo) on 127.0.0.1 with a random token; a Chrome or Chromium
(`find_chromium`), driven by the `playwright` package, opens a chapter, waits for every figure its
execution drew, re-runs only the cells tagged `live` (what its widgets need; the rest ran once in
`make executed`), moves a widget and reads the widget's output back. Numbers a widget prints obey
the lab's laws (tests/test_audit.laws_broken). Screenshots go to tests/artifacts/.

The contract with the notebooks: 03_verify_and_accept shows a button "Next round" that changes the
text of `.labkit-round-panel` and a button "Next draft" that changes the text of
`.labkit-sampled-panel`; 04_acceptance shows an IntSlider "k" that changes the text of
`.labkit-sweep-summary`; 05_speed_and_cost shows a FloatSlider "α (acceptance)" that changes the
text of `.labkit-cost-summary`; 06_multimodal shows a Dropdown "picture" and a button "Run" that change the
text of `.labkit-media-result`; 00_tour shows a button "Run" that fills `.labkit-tour-result` and
the "watch it type" replay `.labkit-tour-typing`; 08_choosing_a_drafter shows a Dropdown "example"
that fills the text box and a button "Race" that fills `.labkit-race-result` with a table.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_audit import laws_broken

ROOT = Path(__file__).resolve().parents[1]
# LABKIT_NOTEBOOKS and LABKIT_ARTIFACTS as in test_notebooks.py
NOTEBOOKS = Path(os.environ.get("LABKIT_NOTEBOOKS", ROOT / "notebooks"))
EXECUTED = Path(os.environ.get("LABKIT_EXECUTED", ROOT / "build" / "executed")) / "notebooks"
ARTIFACTS = Path(os.environ.get("LABKIT_ARTIFACTS", Path(__file__).resolve().parent / "artifacts"))
# Where a Chrome or Chromium may be, in the order tried; LABKIT_CHROMIUM=/path/to/chrome goes first.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")  # on PATH
CHROMIUM_MACOS = ("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
                  "/Applications/Chromium.app/Contents/MacOS/Chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
# seconds for a chapter's live cells; lower it to debug a hang
LIVE_TIMEOUT = int(os.environ.get("LABKIT_LIVE_TIMEOUT", 600))
USER_SETTINGS = {  # quiet and deterministic: no news popup, every cell kept in the DOM
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@contextmanager
def jupyterlab(root: Path, port: int, wait_for_http, stop_server) -> Iterator[tuple[str, str]]:
    """A JupyterLab server on `root`; yields (base url, token)."""
    token = secrets.token_hex(16)
    state = root.parent / "jupyter-state"
    for plugin, values in USER_SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        path = state / "settings" / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    # One core is left to the browser: the kernel picks its threads from the load when a chapter
    # starts, before Chromium renders and polls, and a torch thread waiting for its core skews timings.
    from labkit.env import usable_cores

    threads = os.environ.get("LABKIT_THREADS", str(max(1, usable_cores() - 1)))
    env = dict(os.environ, LABKIT_TEST="1", MPLBACKEND="Agg", LABKIT_THREADS=threads,
               JUPYTERLAB_SETTINGS_DIR=str(state / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),  # no tabs restored from a past run
               JUPYTER_RUNTIME_DIR=str(state / "runtime"),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    cmd = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True"]  # window.jupyterapp: run tagged cells
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "jupyterlab.log"
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/api/status?token={token}", server, log=log)
        yield base, token
    finally:
        stop_server(server)  # and the kernels it started


def find_chromium(playwright) -> str | None:
    """The first Chrome or Chromium installed here (see CHROMIUM_NAMES), or playwright's own."""
    named = os.environ.get("LABKIT_CHROMIUM")
    if named:
        return named
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    for path in CHROMIUM_MACOS:
        if Path(path).exists():
            return path
    own = Path(playwright.chromium.executable_path)  # where `playwright install` puts it
    return str(own) if own.exists() else None


@contextmanager
def chromium(user_data_dir: Path):
    """A headless Chrome/Chromium page: an installed one, else playwright's own, downloaded once
    where the network allows; fails, not skips, with one line saying what to install."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        executable = find_chromium(p)
        if executable is None:
            try:  # only when there is no browser at all: ~170 MB into playwright's cache
                subprocess.run([sys.executable, "-m", "playwright", "install", "chromium"], check=True,
                               capture_output=True, timeout=600)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass
            executable = find_chromium(p)
        if executable is None:
            pytest.fail("No Chrome or Chromium found, and `python -m playwright install chromium` failed "
                        "(offline?): install Google Chrome or Chromium (Debian: `apt-get install chromium`, "
                        "or run .ci/run), or set LABKIT_CHROMIUM=/path/to/chrome.", pytrace=False)
        context = p.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=executable, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(60_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def open_notebook(page, base: str, token: str, name: str) -> None:
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    # The toolbar's indicator says idle before the kernel is connected; the status bar's kernel
    # item says "Connecting" until it is. Run All before that opens a "Select Kernel" dialog.
    page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$")).first.wait_for(timeout=120_000)


# Runs the code cells tagged `live`, in order, in the open notebook's kernel (JupyterLab's own
# "run selected cell" command, one cell at a time); window.__labkitLive says "done" or where it stopped.
RUN_LIVE_JS = """() => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  const live = [];
  nb.widgets.forEach((cell, i) => {
    if (cell.model.type === 'code' && (cell.model.getMetadata('tags') || []).includes('live')) live.push(i);
  });
  window.__labkitLive = 'running';
  (async () => {
    for (const i of live) {
      nb.activeCellIndex = i;
      nb.deselectAll();
      const ok = await window.jupyterapp.commands.execute('notebook:run-cell');
      if (ok === false) { window.__labkitLive = 'failed in cell ' + i; return; }
    }
    window.__labkitLive = 'done';
  })().catch(e => { window.__labkitLive = 'failed: ' + e; });
  return live;
}"""


def run_live(page, name: str) -> float:
    """Re-run the chapter's `live` cells in JupyterLab; fails with the traceback if one fails."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    start = time.perf_counter()
    live = page.evaluate(RUN_LIVE_JS)
    assert live, f"{name} tags no cell `live`: tag the cells its widget needs (# %% tags=[\"live\"])"
    try:
        page.wait_for_function("() => window.__labkitLive !== 'running'", timeout=LIVE_TIMEOUT * 1000, polling=500)
    except PlaywrightTimeout:
        shot(page, f"{name}_timeout")
        pytest.fail(f"{name}: its live cells {live} had not run after {LIVE_TIMEOUT} s")
    state = page.evaluate("() => window.__labkitLive")
    if state != "done":
        shot(page, f"{name}_error")
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        pytest.fail(f"{name}: live cells {live}: {state}:\n" + "\n".join(errors.all_inner_texts())[-3000:])
    return time.perf_counter() - start


def live(page, selector: str):
    """The first live widget element matching `selector` (a static copy in a cell that was not
    re-run has the same classes, but is no widget)."""
    return page.locator(f".jupyter-widgets{selector}").first


def shot(page, label: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"browser_{label}.png"))


def figure_shots(page, name: str, seconds: float = 0.0) -> int:
    """A screenshot of every plotly figure the notebook shows, and its live cells' wall time, as
    artefacts to look at after a run (tests/artifacts/browser_<name>_figure_NN.png, browser_times.json)."""
    # JupyterLab draws a plotly output once it is scrolled into view: visit each, then shoot it
    figures = page.locator(".jp-RenderedPlotly")  # in a cell's output area or in a widget's Output
    count = figures.count()
    for i in range(count):
        figure = figures.nth(i)
        figure.scroll_into_view_if_needed()
        figure.locator(".main-svg").first.wait_for(timeout=20_000)
        figure.screenshot(path=str(ARTIFACTS / f"browser_{name}_figure_{i:02d}.png"))
    path = ARTIFACTS / "browser_times.json"
    times = json.loads(path.read_text()) if path.exists() else {}
    times[name] = {"live_seconds": round(seconds, 1), "figures": count}
    path.write_text(json.dumps(dict(sorted(times.items())), indent=1) + "\n")
    return count


def changed_text(page, locator, action, label: str) -> tuple[str, str]:
    """(text before, text after) of `locator` around `action()`; waits for the text to change."""
    locator.scroll_into_view_if_needed()
    before = locator.inner_text()
    shot(page, f"{label}_before")
    action()
    page.wait_for_function("([el, before]) => el.innerText !== before", arg=[locator.element_handle(), before],
                           timeout=60_000)
    shot(page, f"{label}_after")
    return before, locator.inner_text()


@pytest.fixture
def lab(tmp_path, free_port, wait_for_http, stop_server):
    if not any(EXECUTED.glob("*.ipynb")):
        pytest.fail(f"no executed chapters in {EXECUTED}: run `make executed` (`make test` does)", pytrace=False)
    root = tmp_path / "notebooks"
    shutil.copytree(EXECUTED, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "*.json"))
    with jupyterlab(root, free_port, wait_for_http, stop_server) as (base, token):
        with chromium(tmp_path / "chromium-profile") as page:
            yield page, base, token


def test_03_next_round_and_next_draft_change_their_panels(lab):
    """03 runs once; both steppers are driven (`-k 03` selects this test)."""
    page, base, token = lab
    open_notebook(page, base, token, "03_verify_and_accept.ipynb")
    figure_shots(page, "03", run_live(page, "03"))
    panel = live(page, ".labkit-round-panel")
    button = page.get_by_role("button", name="Next round").first
    before, after = changed_text(page, panel, button.click, "03_next_round")
    assert after.strip() and after != before
    # the sampled stepper: one judged draft (q, p, min(1, p/q), the draw u) per click
    sampled = live(page, ".labkit-sampled-panel")
    next_draft = page.get_by_role("button", name="Next draft", exact=True).first
    before, after = changed_text(page, sampled, next_draft.click, "03_next_draft")
    assert after.strip() and after != before
    assert "u = " in after and "min(1, p/q)" in after


def test_k_slider_changes_the_sweep_summary(lab):
    page, base, token = lab
    open_notebook(page, base, token, "04_acceptance.ipynb")
    figure_shots(page, "04", run_live(page, "04"))
    summary = live(page, ".labkit-sweep-summary")
    slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=re.compile(r"^k$"))).first
    handle = slider.locator(".noUi-handle").first  # ipywidgets 8; focus it and step with the keyboard

    def step_k() -> None:
        handle.focus()
        page.keyboard.press("ArrowRight")

    before, after = changed_text(page, summary, step_k, "04_k_slider")
    assert after.strip() and after != before


def test_05_cost_calculator_follows_its_alpha_slider(lab):
    page, base, token = lab
    open_notebook(page, base, token, "05_speed_and_cost.ipynb")
    figure_shots(page, "05", run_live(page, "05"))
    summary = live(page, ".labkit-cost-summary")
    slider = page.locator(".widget-slider",
                          has=page.locator(".widget-label", has_text=re.compile(r"^α \(acceptance\)$"))).first
    handle = slider.locator(".noUi-handle").first

    def step_alpha() -> None:
        handle.focus()
        page.keyboard.press("ArrowLeft")

    before, after = changed_text(page, summary, step_alpha, "05_cost_calculator")
    assert "Speedup" in after and after != before


def open_and_run(page, base, token, name: str, result: str):
    """Open a chapter, re-run its live cells (its figures shot), and return the first live `result` element."""
    open_notebook(page, base, token, f"{name}.ipynb")
    figure_shots(page, name[:2], run_live(page, name[:2]))
    return live(page, result)


def dropdown(page, label: str):
    """The <select> of the Dropdown widget whose label is exactly `label`."""
    return page.locator(".widget-dropdown", has=page.locator(".widget-label", has_text=re.compile(f"^{label}$"))
                        ).first.locator("select")


def wait_for_text(page, element, words: str, timeout: int) -> None:
    """Until `element` shows `words` (or an error)."""
    page.wait_for_function(f"el => el.innerText.includes({json.dumps(words)}) || el.innerText.includes('Error')",
                           arg=element.element_handle(), timeout=timeout)


def test_media_panel_answers_a_new_picture(lab):
    page, base, token = lab
    result = open_and_run(page, base, token, "06_multimodal", ".labkit-media-result")

    def new_picture() -> None:
        dropdown(page, "picture").select_option(label="a new random one")
        page.get_by_role("button", name="Run", exact=True).last.click()

    before, _ = changed_text(page, result, new_picture, "06_media_panel_running")
    wait_for_text(page, result, "answer", 60_000)  # the panel says "running …" first, then the answers
    shot(page, "06_media_panel_after")
    after = result.inner_text()
    assert "answer" in after and "same text with the drafter: yes" in after and after != before
    assert not laws_broken(after), laws_broken(after)

    def ask(choices: list[tuple[str, str]], question: str, label: str) -> str:
        """Set the dropdowns (label, option) in order, type the question, Run; the result's text."""
        def run() -> None:
            for box, option in choices:
                dropdown(page, box).select_option(label=option)
            page.get_by_role("combobox").last.fill(question)
            page.get_by_role("button", name="Run", exact=True).last.click()

        changed_text(page, result, run, label)
        wait_for_text(page, result, "answer", 60_000)
        shot(page, f"{label}_after")
        return result.inner_text()

    # a clip alone, then a page of text
    clip = ask([("picture", "(none)"), ("clip", "a new random one")], "Which way does the shape move?",
               "06_media_panel_clip")
    assert "video soft tokens" in clip and "same text with the drafter: yes" in clip and "truth:" in clip
    assert not laws_broken(clip), laws_broken(clip)
    read = ask([("clip", "(none)"), ("picture", "a new random page")], "Read the word in the box.",
               "06_media_panel_page")
    assert "image soft tokens" in read and "same text with the drafter: yes" in read and "truth:" in read
    assert not laws_broken(read), laws_broken(read)


def test_00_tour_panel_types_both_runs(lab):
    """00's panel: Run decodes the prompt both ways, then plays them back ("watch it type")."""
    page, base, token = lab
    open_notebook(page, base, token, "00_tour.ipynb")
    figure_shots(page, "00", run_live(page, "00"))
    result = live(page, ".labkit-tour-result")
    run = page.locator(".widget-button", has_text=re.compile(r"^Run$")).first
    before, _ = changed_text(page, result, run.click, "00_tour_running")
    page.wait_for_function("el => el.innerText.includes('speedup') || el.innerText.includes('Error')",
                           arg=result.element_handle(), timeout=120_000)
    typing = live(page, ".labkit-tour-typing")
    typing.locator(".lk-t").last.wait_for(state="attached")
    page.wait_for_timeout(3000)  # the replay plays at the measured pace: a few seconds on the pocket pair
    shot(page, "00_tour_typed")
    assert "speedup" in result.inner_text() and "same text as the target alone: yes" in result.inner_text()
    assert not laws_broken(result.inner_text()), laws_broken(result.inner_text())
    text = typing.inner_text()
    assert "plain decoding" in text and "speculative decoding" in text and "tokens in" in text


def test_08_race_names_the_fastest_on_an_example(lab):
    """08's race: pick an example, Race, and a table of every method and k comes back."""
    page, base, token = lab
    result = open_and_run(page, base, token, "08_choosing_a_drafter", ".labkit-race-result")
    example = dropdown(page, "example")
    example.select_option(label=next(o for o in example.locator("option").all_inner_texts() if o.startswith("quote")))
    race = page.locator(".widget-button", has_text=re.compile(r"^Race$")).first
    before, _ = changed_text(page, result, race.click, "08_race_running")
    wait_for_text(page, result, "Fastest", 180_000)
    shot(page, "08_race_after")
    after = result.inner_text()
    assert "Fastest here" in after and "prompt-lookup" in after and "mtp" in after and "NO" not in after
    assert not laws_broken(after), laws_broken(after)  # its table: every speedup within its tau and k + 1


def test_10_tour_panel_answers_a_conversation(lab):
    """10's panel takes a conversation: its live cells run on their own (the setup, the held-out
    questions, the panel), Run answers the edited turn both ways with thinking on."""
    page, base, token = lab
    result = open_and_run(page, base, token, "10_chat_and_thinking", ".labkit-tour-result")
    run = page.locator(".widget-button", has_text=re.compile(r"^Run$")).first
    before, _ = changed_text(page, result, run.click, "10_tour_running")
    wait_for_text(page, result, "speedup", 120_000)
    shot(page, "10_tour_after")
    after = result.inner_text()
    assert "same text as the target alone: yes" in after, after
    assert not laws_broken(after), laws_broken(after)


@pytest.mark.parametrize("name", ["01_one_token_at_a_time", "02_inside_the_mtp_drafter", "07_train_a_drafter",
                                  "09_serving", "10_chat_and_thinking", "11_beyond_one_chain"])
def test_chapter_figures_draw_in_the_browser(lab, name):
    """The chapters without a widget contract: JupyterLab draws every figure their execution made."""
    page, base, token = lab
    open_notebook(page, base, token, f"{name}.ipynb")
    made = sum("application/vnd.plotly.v1+json" in o.get("data", {})
               for c in json.loads((EXECUTED / f"{name}.ipynb").read_text())["cells"] for o in c.get("outputs", []))
    assert made > 0 and figure_shots(page, name[:2]) == made

"""The built book reads in a real browser, offline: every chapter's page draws a plotly figure.

`make book` builds build/book/html (`make test` builds it first); LABKIT_BOOK_DIR points elsewhere.
A local HTTP server serves it and a Chrome or Chromium (test_browser.chromium) opens the landing
page, follows each chapter's link from the contents, and waits for plotly to draw; any request
that would leave this machine is refused and fails the test, so the book needs no network.
Screenshots go to tests/artifacts/book_*.png.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_browser import ARTIFACTS, ROOT, chromium

BOOK = Path(os.environ.get("LABKIT_BOOK_DIR", ROOT / "build" / "book" / "html"))
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted(p.stem for p in (ROOT / "notebooks" / "solutions").glob("*.ipynb"))
COLAB = "https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/notebooks/"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def book(tmp_path, free_port, wait_for_http, stop_server):
    """(page, base url, [urls that were refused]) on the built book."""
    if not (BOOK / "index.html").exists():
        pytest.fail(f"no book in {BOOK}: build it with `make book` (`make test` does)", pytrace=False)
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(free_port), "--bind", "127.0.0.1",
                                   "--directory", str(BOOK)], stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{free_port}"
    try:
        wait_for_http(f"{base}/index.html", server, log=log)
        with chromium(tmp_path / "chromium-profile") as page:
            refused: list[str] = []

            def local_only(route):
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    refused.append(route.request.url)
                    route.abort()

            page.route("**/*", local_only)
            yield page, base, refused
    finally:
        stop_server(server)


def test_every_chapter_page_draws_a_plotly_figure_offline(book):
    page, base, refused = book
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    ARTIFACTS.mkdir(exist_ok=True)

    page.goto(f"{base}/index.html")  # redirects to the landing page
    page.wait_for_url(re.compile(r"docs/book/index\.html$"))
    assert "MTP Lab" in page.title()
    page.screenshot(path=str(ARTIFACTS / "book_index.png"))
    contents = page.locator(".bd-article a.reference.internal")
    hrefs = [contents.nth(i).get_attribute("href") for i in range(contents.count())]
    chapters = [h for h in hrefs if re.search(r"notebooks/\d\d_[^/]*\.html$", h)]
    assert [Path(h).stem for h in chapters] == CHAPTERS, hrefs
    assert sorted(Path(h).stem for h in hrefs if "/solutions/" in h) == SOLUTIONS

    for name in CHAPTERS:
        page.goto(f"{base}/docs/book/index.html")
        page.locator(f".bd-article a.reference.internal[href$='{name}.html']").first.click()
        page.wait_for_url(re.compile(rf"{name}\.html$"))
        figure = page.locator(".plotly-graph-div .main-svg").first
        figure.wait_for(timeout=30_000)  # plotly.js drew it from the book's own copy
        figure.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"book_{name}.png"))
        # the next chapter is one click away
        if name != CHAPTERS[-1]:
            assert page.locator(".prev-next-area a.right-next").count() == 1, name

    for name in SOLUTIONS:  # worked solutions, each on its own page
        page.goto(f"{base}/notebooks/solutions/{name}.html")
        assert "olution" in page.locator("h1").first.inner_text(), name

    # a widget shows its static state, with a link that runs this chapter in Colab
    page.goto(f"{base}/notebooks/03_verify_and_accept.html")
    widget = page.locator(".labkit-static-widget").first
    widget.scroll_into_view_if_needed()
    assert "Next round" in widget.inner_text()
    assert widget.locator(".labkit-round-panel").inner_text().strip()
    assert widget.locator("a").first.get_attribute("href") == f"{COLAB}03_verify_and_accept.ipynb"
    page.screenshot(path=str(ARTIFACTS / "book_03_widget.png"))

    # search finds the chapters
    page.goto(f"{base}/search.html?q=acceptance")
    page.locator("#search-results ul.search li").first.wait_for(timeout=30_000)
    assert page.locator("#search-results ul.search li").count() >= 3

    assert not errors, errors
    assert not refused, f"the book asked the network for: {sorted(set(refused))}"

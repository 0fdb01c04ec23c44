"""Sphinx + myst-nb configuration of the MTP Lab book (`make book`; see README, "The book").

The source folder is build/executed/: the chapters and solutions as `make executed` ran them
(scripts/execute_notebooks.py, once per notebook, with LABKIT_BOOK=1: `labkit.book`), with docs/
linked beside them, so the repository's layout and the chapters' links to each other and to docs/
hold unchanged; `include_patterns` picks the pages. Nothing executes here; outputs live only in
build/, never in git. Everything the pages load is in the build, so the book reads offline
(tests/test_book.py checks).
"""

import shutil
from pathlib import Path

import plotly

project = "MTP Lab"
author = "MTP Lab contributors"
copyright = "2026, MTP Lab contributors (Apache-2.0)"
REPOSITORY = "https://github.com/mtp-lab/mtp-lab"
COLAB = "https://colab.research.google.com/github/mtp-lab/mtp-lab/blob/main/"

extensions = ["myst_nb"]
root_doc = "docs/book/index"
include_patterns = ["docs/book/index.md", "docs/*.md", "notebooks/[0-9]*.ipynb", "notebooks/solutions/*.ipynb"]
exclude_patterns = ["**/.ipynb_checkpoints"]

# The copies carry their outputs: rendered as they are. An executed copy with an error never gets
# here (`make executed` stops first).
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # no widget manager from a CDN: labkit's widgets render as static HTML
# Each figure and labkit widget carries a live form (plotly's JSON, a widget view) and static HTML:
# the book takes the HTML (plotly's JSON has no renderer here; a widget view, no kernel).
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None),
                              ("html", "application/vnd.plotly.v1+json", None)]
nb_merge_streams = True
myst_heading_anchors = 3
# the chapters start at "#" and skip levels in places; myst-nb parses every form of an output before it
# picks one, and has no parser for plotly's JSON (the HTML beside it is what the page shows)
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

html_theme = "sphinx_book_theme"
html_title = "MTP Lab"
html_static_path = ["_static"]
html_extra_path = ["_extra"]  # index.html at the top, pointing at the landing page
html_css_files = ["labkit-book.css"]
html_js_files = ["plotly.min.js"]  # copied from the installed plotly at the end of the build
html_context = {"default_mode": "light"}  # figures are drawn on white
html_theme_options = {
    "repository_url": REPOSITORY,
    "use_repository_button": True,
    "path_to_docs": "",
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
}
html_show_sourcelink = False

BADGE = '<img alt="Open In Colab" src="https://colab.research.google.com/assets/colab-badge.svg" />'


def _page(app, pagename, templatename, context, doctree):
    """Colab's badge image is on the network: a text badge instead; the widgets' "run it" links
    point at this chapter in Colab."""
    body = context.get("body")
    if not body:
        return
    body = body.replace(BADGE, '<span class="labkit-colab-badge">Open in Colab</span>')
    if pagename.startswith("notebooks/"):
        body = body.replace("#labkit-run-it", f"{COLAB}{pagename}.ipynb")
    context["body"] = body


def _plotly_js(app, exception):
    if exception is None and app.builder.format == "html":
        source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        shutil.copy(source, Path(app.outdir) / "_static" / "plotly.min.js")


def setup(app):
    app.connect("html-page-context", _page)
    app.connect("build-finished", _plotly_js)

"""What changes when a chapter is executed for the build (`make executed`, scripts/execute_notebooks.py).

Each chapter is executed once into build/executed/; the book (docs/book/conf.py) renders those copies
as static HTML, where no kernel answers a slider, and JupyterLab opens the same copies for the browser
tests. With `LABKIT_BOOK=1` in the environment (the executor sets it), every output carries both forms:

- a plotly figure: plotly's own mimetype (JupyterLab draws it) and HTML that calls the page's own
  copy of plotly.js (the book ships one copy, from the installed plotly package, so it reads
  offline and no figure carries 4.8 MB);
- a labkit widget (`labkit.widgets`): the live widget view and its static state, the same panels,
  figures and controls as they stood when the cell ran, with the controls greyed out and a "run it"
  link (`RUN_IT`, which the book turns into the chapter's Colab link). The book prefers the static
  HTML; JupyterLab prefers the widget, which comes alive when its cells run again.

Left out: ipywidgets' own embedding (its widget manager comes from a CDN and would need the
kernel's callbacks anyway), and widgets that are not labkit's (the chapters use none).
"""

from __future__ import annotations

import base64
import html
import os
from typing import Any

RENDERER = "labkit_book"
RUN_IT = "#labkit-run-it"  # docs/book/conf.py replaces it with the page's Colab link


def in_book() -> bool:
    """True while the build executes the chapters (scripts/execute_notebooks.py)."""
    return os.environ.get("LABKIT_BOOK") == "1"


def use_book_renderer() -> str:
    """Make plotly emit HTML that relies on the page's plotly.js; returns the renderer's name."""
    import plotly.io as pio
    from plotly.io._base_renderers import MimetypeRenderer

    class BookRenderer(MimetypeRenderer):
        # plotly's own HtmlRenderer would add MathJax from a CDN: the chapters' figures use no TeX
        def to_mimebundle(self, fig_dict: dict) -> dict:
            return {"text/html": pio.to_html(fig_dict, include_plotlyjs=False, include_mathjax=False,
                                             full_html=False, validate=False)}

    pio.renderers[RENDERER] = BookRenderer()
    pio.renderers.default = f"plotly_mimetype+{RENDERER}"  # one output, both forms
    return pio.renderers.default


def _output_html(output: dict) -> str:
    data = output.get("data", {})
    if output.get("output_type") == "stream":
        return f"<pre>{html.escape(output.get('text', ''))}</pre>"
    if "text/html" in data:
        return data["text/html"]
    if "image/png" in data:
        png = data["image/png"]
        png = png if isinstance(png, str) else base64.b64encode(png).decode()
        return f"<img src='data:image/png;base64,{png}'>"
    return f"<pre>{html.escape(str(data.get('text/plain', '')))}</pre>"


def _label(w: Any) -> str:
    text = getattr(w, "description", "") or ""
    return f"<span class='labkit-static-label'>{html.escape(text)}</span> " if text else ""


def _control(w: Any) -> str:
    """A greyed-out HTML control showing the widget's value."""
    kind = type(w).__name__
    if kind == "Button":
        return f"<button disabled>{html.escape(w.description)}</button>"
    if kind == "FileUpload":
        return f"<button disabled>{html.escape(w.description or 'Upload')}</button>"
    if kind in ("IntSlider", "FloatSlider"):
        value = w.value if kind == "IntSlider" else round(w.value, 2)
        return (f"<label>{_label(w)}<input type='range' disabled min='{w.min}' max='{w.max}' "
                f"step='{w.step}' value='{w.value}'> {value}</label>")
    if kind == "Dropdown":
        return f"<label>{_label(w)}<select disabled><option>{html.escape(str(w.label))}</option></select></label>"
    if kind == "SelectMultiple":
        options = "".join(f"<option{' selected' if v in w.value else ''}>{html.escape(str(lab))}</option>"
                          for lab, v in zip(w._options_labels, w._options_values))
        return f"<label>{_label(w)}<select multiple disabled size='{len(w._options_labels)}'>{options}</select></label>"
    if kind == "Textarea":
        return (f"<label>{_label(w)}<textarea disabled rows='4' cols='80' placeholder='{html.escape(w.placeholder)}'>"
                f"{html.escape(w.value)}</textarea></label>")
    if hasattr(w, "value") and isinstance(w.value, str):  # Text, Combobox
        return f"<label>{_label(w)}<input type='text' disabled value='{html.escape(w.value)}'></label>"
    return f"<span>{_label(w)}{html.escape(str(getattr(w, 'value', '')))}</span>"


def _static(w: Any) -> str:
    kind = type(w).__name__
    if kind in ("VBox", "HBox", "Box"):
        direction = "row" if kind == "HBox" else "column"
        inner = "".join(_static(c) for c in w.children)
        return f"<div style='display:flex;flex-direction:{direction};flex-wrap:wrap;gap:6px'>{inner}</div>"
    classes = " ".join(getattr(w, "_dom_classes", ()))
    if kind in ("HTML", "HTMLMath", "Label"):
        body = w.value if kind != "Label" else html.escape(w.value)
        return f"<div class='{classes}'>{body}</div>"
    if kind == "Output":
        return f"<div class='{classes}'>{''.join(_output_html(o) for o in w.outputs)}</div>"
    return _control(w)


def widget_bundle(widget: Any, name: str = "") -> dict[str, Any]:
    """The mime bundle of a widget shown during the build: its live view and its static HTML."""
    data: dict[str, Any] = {"text/plain": repr(widget), "text/html": static_html(widget, name)}
    model_id = getattr(widget, "model_id", None)
    if model_id:  # ipywidgets 7 and 8 both display their views with this form
        data["application/vnd.jupyter.widget-view+json"] = {"version_major": 2, "version_minor": 0,
                                                             "model_id": model_id}
    return data


def static_html(widget: Any, name: str = "") -> str:
    """The widget tree as plain HTML: panels and figures as they are now, controls greyed out,
    under a banner with the "run it" link."""
    what = f" ({html.escape(name)})" if name else ""
    banner = (f"<div class='labkit-static-banner'>A live widget{what}, shown as it stood when this page "
              f"was built. <a href='{RUN_IT}'>Run the chapter</a> (Colab, or <code>make lab</code> on your "
              "machine) to drive it.</div>")
    return f"<div class='labkit-static-widget'>{banner}{_static(widget)}</div>"

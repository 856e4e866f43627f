"""Showing a file of a bundle read-only in the browser: notebooks through nbconvert, HTML
(nbgrader's feedback) as it is, text as text.

Whatever comes out is someone else's content. It is served with a Content-Security-Policy
that sandboxes it (no scripts, no forms, an opaque origin that cannot read our cookies) and
allows no network requests at all, so nothing is loaded from a CDN either; the pages embed it
in an ``<iframe sandbox>``.
"""

from __future__ import annotations

import html
import posixpath

import nbformat
from django.http import HttpResponse
from django.utils.translation import gettext as _
from jinja2 import DictLoader
from nbconvert import HTMLExporter

# Larger files are offered for download only.
MAX_RENDER_BYTES = 20 * 1024 * 1024
SANDBOX_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
)
TEXT_SUFFIXES = {".py", ".txt", ".md", ".csv", ".json", ".r", ".jl", ".log", ".tsv", ".yml"}


def renderable(path: str) -> bool:
    suffix = posixpath.splitext(path)[1].lower()
    return suffix in {".ipynb", ".html", ".htm"} or suffix in TEXT_SUFFIXES


# JupyterLab's look, without the script tags that would load require.js, MathJax, mermaid
# and widgets from a CDN (the sandbox would refuse them anyway).
READ_ONLY_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def notebook_html(data: bytes) -> str:
    """A notebook as a standalone HTML page, without scripts or outside resources."""
    notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
    exporter = HTMLExporter(
        template_file="read_only.html.j2",
        extra_loaders=[DictLoader({"read_only.html.j2": READ_ONLY_TEMPLATE})],
        exclude_anchor_links=True,
    )
    body, _resources = exporter.from_notebook_node(notebook)
    return body


def _message_page(message: str) -> str:
    return (
        '<!doctype html><meta charset="utf-8"><p style="font-family:sans-serif">'
        f"{html.escape(message)}</p>"
    )


def render_file(path: str, data: bytes) -> HttpResponse:
    """The sandboxed page showing one file."""
    suffix = posixpath.splitext(path)[1].lower()
    if len(data) > MAX_RENDER_BYTES:
        page = _message_page(_("This file is too large to show here; download it instead."))
    elif suffix == ".ipynb":
        try:
            page = notebook_html(data)
        except Exception:  # a broken notebook is the student's file, not our error
            page = _message_page(_("This notebook could not be read; download it instead."))
    elif suffix in {".html", ".htm"}:
        page = data.decode("utf-8", errors="replace")
    else:
        text = html.escape(data.decode("utf-8", errors="replace"))
        page = (
            f'<!doctype html><meta charset="utf-8"><pre style="white-space:pre-wrap">{text}</pre>'
        )
    response = HttpResponse(page, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = SANDBOX_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response

"""Showing a file of a bundle read-only in the browser: notebooks as HTML (made by
``web/render_worker.py`` outside the request, see ``web/previews.py``), HTML (nbgrader's
feedback) sanitized, text as text.

Whatever comes out is someone else's content. It is sanitized (``nh3``: no scripts, no event
handlers, no ``javascript:`` links, no frames or forms) and then served with a
Content-Security-Policy that sandboxes it (no scripts, no forms, an opaque origin that cannot
read our cookies) and allows no network requests at all, so nothing is loaded from a CDN
either; the pages embed it in an ``<iframe sandbox>``. Either layer alone would hold.
"""

from __future__ import annotations

import functools
import html
import posixpath

from django.http import HttpResponse, HttpResponseBase

SANDBOX_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
)
# Our own message pages (a preview being made, too large, failed) carry no one else's markup
# beyond escaped text; they are not sandboxed so that a page opened on its own can refresh.
MESSAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
TEXT_SUFFIXES = {".py", ".txt", ".md", ".csv", ".json", ".r", ".jl", ".log", ".tsv", ".yml"}
NOTEBOOK_SUFFIX = ".ipynb"


def renderable(path: str) -> bool:
    suffix = posixpath.splitext(path)[1].lower()
    return suffix in {NOTEBOOK_SUFFIX, ".html", ".htm"} or suffix in TEXT_SUFFIXES


def is_notebook(path: str) -> bool:
    return posixpath.splitext(path)[1].lower() == NOTEBOOK_SUFFIX


# JupyterLab's look, without the script tags that would load require.js, MathJax, mermaid
# and widgets from a CDN (the sandbox would refuse them anyway).
READ_ONLY_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


# What sanitized HTML may hold: ammonia's default set of harmless tags plus <style> (the
# notebook's look; CSS cannot run code, and the sandbox's CSP refuses every url() it could
# load), the attributes that carry layout, and images only as data: URLs. nh3 is imported on
# the first sanitized page, not with the URLconf: 1.6 MB in a worker that never shows one.
@functools.cache
def _allowed() -> tuple[set[str], dict[str, set[str]]]:
    import nh3

    tags = set(nh3.ALLOWED_TAGS) | {"style"}
    attributes = {
        **{tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()},
        "*": {"class", "id", "style", "title", "dir", "lang", "align"},
    }
    return tags, attributes


_URL_SCHEMES = {"data", "http", "https", "mailto"}
# The body nbconvert's lab template opens, which sanitizing (a fragment) drops: the theme's
# CSS variables hang on it.
_BODY = (
    '<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">'
)


def sanitize(markup: str) -> str:
    """Markup without scripts, event handlers, dangerous URLs, frames, forms or embeds."""
    import nh3

    tags, attributes = _allowed()
    return nh3.clean(
        markup,
        tags=tags,
        clean_content_tags={"script"},
        attributes=attributes,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer",
    )


def document(body: str, *, body_tag: str = "<body>") -> str:
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"></head>{body_tag}{body}</body></html>'
    )


def notebook_html(data: bytes) -> str:
    """A notebook as a standalone, sanitized HTML page, without scripts or outside resources.

    Slow for large notebooks (tens of seconds of CPU per MiB): only ever called by the
    render worker, under its limits."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
    exporter = HTMLExporter(
        template_file="read_only.html.j2",
        extra_loaders=[DictLoader({"read_only.html.j2": READ_ONLY_TEMPLATE})],
        exclude_anchor_links=True,
    )
    body, _resources = exporter.from_notebook_node(notebook)
    return document(sanitize(body), body_tag=_BODY)


def message_html(message: str, *, refresh_seconds: int | None = None) -> str:
    refresh = f'<meta http-equiv="refresh" content="{refresh_seconds}">' if refresh_seconds else ""
    return (
        f'<!doctype html><meta charset="utf-8">{refresh}<p style="font-family:sans-serif">'
        f"{html.escape(message)}</p>"
    )


def inline_page(path: str, data: bytes) -> str:
    """A small HTML or text file as a page: cheap enough (linear, under the size cap) to
    make in the request."""
    text = data.decode("utf-8", errors="replace")
    if posixpath.splitext(path)[1].lower() in {".html", ".htm"}:
        return document(sanitize(text))
    return document(f'<pre style="white-space:pre-wrap">{html.escape(text)}</pre>')


def sandboxed(response: HttpResponseBase) -> HttpResponseBase:
    """Someone else's content: sandboxed, no network, no sniffing, no referrer."""
    response["Content-Security-Policy"] = SANDBOX_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response


def message_response(message: str, *, refresh_seconds: int | None = None) -> HttpResponse:
    response = HttpResponse(
        message_html(message, refresh_seconds=refresh_seconds),
        content_type="text/html; charset=utf-8",
    )
    response["Content-Security-Policy"] = MESSAGE_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response

"""Small guarantees for the aecourse book, as a Sphinx extension.

1. MathJax is served from the built site (``_static/mathjax/tex-chtml.js``, copied there by
   the ``sphinx-mathjax-offline`` extension), never from a CDN, so the book reads offline.
   Whatever another extension or the configuration set, a remote ``mathjax_path`` is
   replaced by the local one when the builder starts.
2. Code fits the column: ``static/aecourse.css`` sets the size of code so that the 88
   characters a chapter's code line may have fit the article column of a laptop screen.
3. No inline script is emitted twice on a page. sphinx-thebe and sphinx-togglebutton add
   their inline configuration scripts again (at another priority) when a page is written;
   a repeated ``const THEBE_JS_URL = ...`` is a JavaScript SyntaxError in every browser.
"""

from pathlib import Path

import yaml

LOCAL_MATHJAX = "mathjax/tex-chtml.js"


def toc_pages(toc_path: Path) -> list[str]:
    """Every document of the book, in reading order, read from ``_toc.yml`` (jb-book).

    Used by ``aecourse publish``, the publish test and the chapter benchmark, so all follow
    the table of contents.
    """
    toc = yaml.safe_load(Path(toc_path).read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [str(Path(p).with_suffix("")) for p in pages]


def _keep_mathjax_local(app):
    path = app.config.mathjax_path or ""
    if "://" in path or path.startswith("//") or not path:
        app.config.mathjax_path = LOCAL_MATHJAX


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for script in scripts:
        key = (getattr(script, "filename", script) or "",
               getattr(script, "attributes", {}).get("body"))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def _add_static(app):
    static = str(Path(__file__).parent / "static")
    if static not in app.config.html_static_path:
        app.config.html_static_path.append(static)


def setup(app):
    # after sphinx.ext.mathjax's own builder-inited handler (priority 500)
    app.connect("builder-inited", _keep_mathjax_local, priority=900)
    app.connect("builder-inited", _add_static)
    app.add_css_file("aecourse.css")
    # last, after every extension has added its page scripts
    app.connect("html-page-context", _drop_repeated_scripts, priority=1000)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

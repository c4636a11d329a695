"""The built book: it builds without a warning, reads offline, and every page renders.

One module-scoped fixture builds the whole book (executing every chapter) exactly as
`make book` does, into the repository's ``_build``. The tests then check the HTML files, and
open every page listed in ``_toc.yml`` in headless Chromium, served by a local HTTP server on
127.0.0.1, to check what a reader sees once the page's scripts have run.

How the browser is driven, and why. Chromium is started with ``--remote-debugging-pipe`` and
spoken to with the Chrome DevTools Protocol over two pipes (standard library only, nothing to
download). That is more reliable than ``--dump-dom`` with ``--enable-logging``: the stderr log
prints every console message as ``INFO:CONSOLE`` whatever its level, and does not show failed
resource loads at all. Over the protocol we get

* console messages with their level (``console.error``/``console.assert``) and uncaught
  exceptions (``Runtime.consoleAPICalled``, ``Runtime.exceptionThrown``);
* browser-side errors, including "Failed to load resource" (``Log.entryAdded``, level error);
* every request and its outcome (``Network.*``): a 4xx/5xx response, a failed load, or any
  request that leaves 127.0.0.1 (the book must read offline);
* the DOM after MathJax has finished typesetting (we wait for ``MathJax.startup.promise``
  rather than guessing a time budget), and a full-page screenshot.

Screenshots go to ``test-output/screenshots/<page>.png`` (git-ignored).
If Chromium is missing, the fixture installs the Debian package ``chromium`` with apt-get
when it runs as root; where that is impossible the browser tests are skipped with a message
that says how to install it.
"""

from __future__ import annotations

import base64
import functools
import html.parser
import http.server
import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "book" / "_ext"))
from aecourse_book import toc_pages  # noqa: E402  (the book's one reader of _toc.yml)

BIN = Path(sys.executable).parent
HTML = REPO / "_build" / "html"
EXECUTED = REPO / "_build" / "jupyter_execute"
SCREENSHOTS = REPO / "test-output" / "screenshots"
BUILD_TIMEOUT = 1800  # seconds for the whole build (nine chapters, ~60 s each at most)
LOCAL_MATHJAX = "_static/mathjax/tex-chtml.js"
CDN_HOSTS = ("cdn.jsdelivr.net", "cdnjs.cloudflare.com", "unpkg.com", "polyfill.io",
             "mathjax.org", "googleapis.com")
# ipykernel >= 7 logs this on every kernel start; it is the kernel's startup notice, printed
# on the build's stderr, not a warning about the book.
KERNEL_NOTICE = "[IPKernelApp] WARNING | Kernel is running over TCP without encryption"


# ------------------------------------------------------------------------------ the pages
PAGES = toc_pages(REPO / "_toc.yml")


def is_notebook(docname: str) -> bool:
    return (REPO / f"{docname}.ipynb").exists()


# ------------------------------------------------------------------------------ the build
@pytest.fixture(scope="module")
def built_book():
    """Build the book like `make book` (plus ``--all``: re-read and re-execute every page)."""
    if os.environ.get("AECOURSE_REUSE_BUILD") == "1" and (HTML / "index.html").exists():
        return HTML  # developers only: check an existing build without rebuilding it
    cmd = [str(BIN / "jupyter-book"), "build", "--warningiserror", "--nitpick", "--keep-going",
           "--all", str(REPO)]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT)
    seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    (REPO / "test-output").mkdir(exist_ok=True)
    (REPO / "test-output" / "book-build.log").write_text(log)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", log)  # without terminal colours
    warnings = [line for line in plain.splitlines()
                if "WARNING" in line and not line.startswith(KERNEL_NOTICE)]
    if proc.returncode != 0 or warnings:
        pytest.fail(f"`{' '.join(cmd)}` exited with {proc.returncode} after {seconds:.0f} s "
                    f"with {len(warnings)} warning(s):\n" + "\n".join(warnings[:30])
                    + "\n--- end of the log ---\n" + log[-4000:], pytrace=False)
    print(f"\nbook built in {seconds:.1f} s")
    return HTML


def test_book_builds_with_no_warning(built_book):
    for docname in PAGES:
        assert (built_book / f"{docname}.html").is_file(), f"{docname}.html was not built"


def _script_sources(page: Path) -> list[str]:
    return re.findall(r'<script[^>]*\bsrc="([^"]+)"', page.read_text(encoding="utf8"))


def test_every_page_loads_mathjax_from_the_site_and_nothing_from_a_cdn(built_book):
    assert (built_book / LOCAL_MATHJAX).is_file(), "MathJax was not copied into the site"
    for docname in PAGES:
        page = built_book / f"{docname}.html"
        sources = _script_sources(page)
        mathjax = [s for s in sources if "mathjax" in s.lower()]
        if 'class="math notranslate' in page.read_text(encoding="utf8"):
            assert mathjax, f"{docname}: has formulas but no MathJax <script>"
        for src in mathjax:
            path = src.split("?")[0]  # Sphinx appends ?v=<checksum> to bust caches
            assert (page.parent / path).resolve() == (built_book / LOCAL_MATHJAX).resolve(), (
                f"{docname}: MathJax comes from {src!r}, expected the local {LOCAL_MATHJAX}")
        text = page.read_text(encoding="utf8")
        remote = [src for src in sources if re.match(r"(https?:)?//", src)]
        for link in re.findall(r"<link\b[^>]*>", text):
            href = re.search(r'\bhref="([^"]+)"', link)
            if re.search(r'rel="(stylesheet|preload|modulepreload)"', link) and href \
                    and re.match(r"(https?:)?//", href.group(1)):
                remote.append(href.group(1))
        assert not remote, f"{docname}: loads scripts or styles from the network: {remote}"
        for host in CDN_HOSTS:
            assert all(host not in s for s in sources), f"{docname}: a script from {host}"


def _bib_titles(bib: Path) -> dict[str, str]:
    """key -> title, read straight from the .bib file (braces removed)."""
    titles = {}
    for entry in re.split(r"\n@", "\n" + bib.read_text(encoding="utf8"))[1:]:
        key = re.match(r"\w+\s*\{\s*([^,\s]+)\s*,", entry).group(1)
        title = re.search(r"\n\s*title\s*=\s*\{(.*)\},?\s*\n", entry).group(1)
        titles[key] = title.replace("{", "").replace("}", "")
    return titles


def test_bibliography_page_lists_every_reference(built_book):
    titles = _bib_titles(REPO / "book" / "references.bib")
    assert len(titles) == 18, sorted(titles)
    page = (built_book / "book" / "bibliography.html").read_text(encoding="utf8")
    entries = re.findall(r'role="doc-biblioentry">(.*?)</div>', page, flags=re.S)
    text = " ".join(re.sub(r"<[^>]+>", "", e) for e in entries).lower()
    missing = [key for key, title in titles.items() if title.lower() not in text]
    assert not missing, f"the bibliography page lacks {missing}"
    assert len(entries) == len(titles), f"{len(entries)} entries for {len(titles)} references"


# ------------------------------------------------------------------------------ the browser
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--mute-audio", "--remote-debugging-pipe"]
INSTALL_HINT = ("BROWSER TESTS SKIPPED: Chromium is not installed and could not be installed "
                "here. On Debian/Ubuntu run `sudo apt-get update && sudo apt-get install -y "
                "chromium` (or install Google Chrome / Chromium and put it on PATH), then run "
                "`make test` again.")


def find_chromium() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chromium_path():
    path = find_chromium()
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run("apt-get update && apt-get install -y chromium", shell=True, env=env,
                       capture_output=True, timeout=1200)
        path = find_chromium()
    if path is None:
        print("\n" + "!" * 80 + "\n" + INSTALL_HINT + "\n" + "!" * 80, file=sys.stderr)
        pytest.skip(INSTALL_HINT)
    return path


class Browser:
    """Headless Chromium driven over the DevTools protocol through two pipes (fd 3 and 4)."""

    def __init__(self, executable: str, user_data_dir: str, log_path: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def give_pipes():  # in the child, before exec: fd 3 = commands in, fd 4 = replies out
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            preexec_fn=give_pipes, close_fds=False)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._log.close()

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from_browser], [], [], remaining)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe (did it crash?)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout: float = 60) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str, session: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event and e.get("sessionId") == session
                      for e in self.events):
            self.events.append(self._read_message(deadline))


@pytest.fixture(scope="module")
def browser(chromium_path, tmp_path_factory):
    directory = tmp_path_factory.mktemp("chromium")
    chrome = Browser(chromium_path, str(directory / "profile"), directory / "chromium.log")
    yield chrome
    chrome.close()


@pytest.fixture(scope="module")
def server(built_book):
    """Serve the built site on 127.0.0.1 (random port); remember every request's status."""
    requests: list[tuple[str, int]] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_request(self, code="-", size="-"):
            requests.append((self.path, int(getattr(code, "value", code))))

        def log_message(self, *args):
            pass

    handler = functools.partial(Handler, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


# What the page looks like after its scripts ran, measured in the page.
PAGE_FACTS_JS = """
(async () => {
  for (let i = 0; i < 100 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 100));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  await document.fonts.ready;
  const outputs = [...document.querySelectorAll('.cell_output img')];
  return JSON.stringify({
    mathjax_loaded: !!(window.MathJax && MathJax.version),
    math_elements: document.querySelectorAll('.math').length,
    mjx: document.querySelectorAll('mjx-container').length,
    mjx_errors: document.querySelectorAll('mjx-merror').length,
    output_images: outputs.length,
    output_images_shown: outputs.filter(i => i.complete && i.naturalWidth > 0).length,
    broken_images: [...document.images].filter(i => i.complete && i.naturalWidth === 0
                                                    && i.getAttribute('src')).map(i => i.src),
    height: document.documentElement.scrollHeight,
    html: document.documentElement.outerHTML,
  });
})()
"""


class VisibleText(html.parser.HTMLParser):
    """The text a reader sees as prose: outside code, scripts, styles and typeset math."""

    SKIP = {"script", "style", "pre", "code", "mjx-container", "textarea"}

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)


def visible_text(dom: str) -> str:
    parser = VisibleText()
    parser.feed(dom)
    return "".join(parser.parts)


def render(chrome: Browser, url: str, screenshot: Path) -> dict:
    """Open url in a fresh tab; return the page facts, the problems seen, and save a screenshot."""
    target = chrome.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = chrome.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"]
    chrome.events.clear()
    for domain in ("Page", "Runtime", "Log", "Network"):
        chrome.send(f"{domain}.enable", session=session)
    chrome.send("Emulation.setDeviceMetricsOverride",
                {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                session=session)
    chrome.send("Page.navigate", {"url": url}, session=session)
    chrome.wait_for("Page.loadEventFired", session)
    result = chrome.send("Runtime.evaluate", {"expression": PAGE_FACTS_JS, "awaitPromise": True,
                                              "returnByValue": True}, session=session)
    if "exceptionDetails" in result:
        raise RuntimeError(f"could not inspect {url}: {result['exceptionDetails']}")
    facts = json.loads(result["result"]["value"])
    # Full page: make the window as tall as the page (capped), as puppeteer's fullPage does;
    # capturing "beyond the viewport" instead shifts long pages sideways.
    height = min(max(facts["height"], 900), 16000)
    chrome.send("Emulation.setDeviceMetricsOverride",
                {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session)
    chrome.send("Runtime.evaluate", {"expression": "new Promise(r => requestAnimationFrame("
                                     "() => requestAnimationFrame(r)))", "awaitPromise": True},
                session=session)
    shot = chrome.send("Page.captureScreenshot",
                       {"format": "png",
                        "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}},
                       session=session)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))

    problems = []
    local = ("http://127.0.0.1:", "data:", "blob:", "about:")
    for event in chrome.events:
        method, params = event.get("method"), event.get("params", {})
        if "/favicon.ico" in json.dumps(params):
            continue  # the browser asks for /favicon.ico by itself; the book has none
        if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            problems.append(f"console.{params['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            problems.append("uncaught exception: "
                            + details.get("exception", {}).get("description", details["text"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            problems.append(f"browser error: {params['entry']['text']} "
                            f"({params['entry'].get('url', '')})")
        elif method == "Network.requestWillBeSent":
            if not params["request"]["url"].startswith(local):
                problems.append(f"request leaves the machine: {params['request']['url']}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"failed to load a resource: {params.get('errorText')}")
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            problems.append(f"HTTP {params['response']['status']}: {params['response']['url']}")
    chrome.send("Target.closeTarget", {"targetId": target})
    chrome.events.clear()
    return {**facts, "problems": problems}


def expected_figures(docname: str) -> int:
    """PNG outputs that the executed notebook shows in place (glued-away ones excepted)."""
    path = EXECUTED / f"{docname}.ipynb"
    nb = nbformat.read(path, as_version=4)
    count = 0
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type != "code" or tags & {"remove-output", "remove-cell", "remove_cell"}:
            continue
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}) and "scrapbook" not in output.get(
                    "metadata", {}):
                count += 1
    return count


@pytest.mark.parametrize("docname", PAGES)
def test_page_renders_math_figures_and_no_errors(docname, built_book, browser, server):
    base, requests = server
    requests.clear()
    page = Path(docname).name
    facts = render(browser, f"{base}/{docname}.html", SCREENSHOTS / f"{page}.png")

    assert not facts["problems"], f"{docname}: " + "\n".join(facts["problems"])
    assert not facts["broken_images"], f"{docname}: images that did not load: " \
                                       f"{facts['broken_images']}"
    failed = [(p, s) for p, s in requests if s >= 400 and not p.endswith("favicon.ico")]
    assert not failed, f"the local server answered errors: {failed}"

    static = (built_book / f"{docname}.html").read_text(encoding="utf8")
    n_math = len(re.findall(r'class="math notranslate', static))
    if n_math:
        assert facts["mathjax_loaded"], f"{docname}: MathJax did not start"
        assert facts["mjx"] >= n_math, (
            f"{docname}: {n_math} formulas in the HTML but MathJax typeset {facts['mjx']}")
    assert facts["mjx_errors"] == 0, f"{docname}: {facts['mjx_errors']} MathJax errors"
    text = visible_text(facts["html"])
    for raw in ("$$", "\\[", "\\("):
        assert raw not in text, f"{docname}: raw TeX {raw!r} left in the text: " \
            + text[max(0, text.find(raw) - 80):text.find(raw) + 80]

    if is_notebook(docname):
        n_figures = expected_figures(docname)
        assert n_figures >= 1, f"{docname}: a chapter without a single figure"
        assert facts["output_images_shown"] >= n_figures, (
            f"{docname}: the notebook made {n_figures} figures, the page shows "
            f"{facts['output_images_shown']} of its {facts['output_images']} output images")
    assert (SCREENSHOTS / f"{page}.png").stat().st_size > 10_000, "a blank screenshot"

"""The student edition: `make publish` builds it, it leaks nothing, it runs with only the
student requirements, and its site works where Pages serves it.

One module-scoped pipeline does the expensive work once, as a student's world would:

1. ``aecourse.publish.build_tree`` writes the student tree, so that a fresh venv can be made
   from *its* ``requirements.txt`` (no jupyter-book, nbgrader or myst-nb; the library is the
   tree's, installed from the tree). pip installs from its local cache, offline.
2. ``make publish PUBLISH_ARGS="--out <tree> --python <venv python>"`` rebuilds the tree,
   executes every chapter once on that venv's kernel (outputs stored in the tree) and builds
   the HTML with execution off. The chapters execute nowhere else in the test suite.
3. Every released exercise notebook runs top to bottom on the same venv.
4. The site is served under a sub-path, ``http://127.0.0.1:PORT/<repo>/`` as GitHub Pages
   serves a project site, and every page is opened in headless Chromium, driven over the
   DevTools protocol (``browser.py``'s ``Browser`` in this module, standard library only).

Screenshots go to ``test-output/screenshots/<page>.png`` (git-ignored).
"""

from __future__ import annotations

import base64
import functools
import html
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
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest
import yaml

from aecourse import publish

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("publish")]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "book" / "_ext"))
from aecourse_book import toc_pages  # noqa: E402  (the book's one reader of _toc.yml)
from test_book import generated_alt  # noqa: E402  (one rule for alt text)

SCREENSHOTS = REPO / "test-output" / "screenshots"
SETTINGS = publish.load_settings(REPO / "course.yml")
# the student edition's pages: the instructors' pages are one short page there
PAGES = [p for p in toc_pages(REPO / "_toc.yml") if p not in SETTINGS.instructor_pages[1:]]
SITE_PREFIX = "/" + SETTINGS.student_repository.rsplit("/", 1)[1] + "/"   # as Pages serves it
LOCAL_MATHJAX = "_static/mathjax/tex-chtml.js"
TIMINGS: dict[str, float] = {}


def _timed(name):
    """Record the seconds a fixture step takes (printed at the end of the module)."""
    def decorator(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                TIMINGS[name] = time.perf_counter() - start
        return wrapper
    return decorator


# ------------------------------------------------------------------------- the pipeline
@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("publish")


@pytest.fixture(scope="module")
@_timed("student venv (create + pip install from the local cache)")
def student_python(workdir):
    """A fresh venv with ONLY the student edition's requirements; its python."""
    if os.environ.get("AECOURSE_STUDENT_PYTHON"):  # developers only: reuse one
        return Path(os.environ["AECOURSE_STUDENT_PYTHON"])
    tree = workdir / "tree-for-install"
    publish.build_tree(REPO, tree, SETTINGS)
    venv = workdir / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    # --no-compile: no .pyc for all of torch now (Python compiles what it imports)
    proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-compile",
                           "--disable-pip-version-check", "-r", "requirements.txt"],
                          cwd=tree, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"pip install -r requirements.txt failed:\n{proc.stderr[-3000:]}"
    shutil.rmtree(tree)
    return python


@pytest.fixture(scope="module")
@_timed("make publish (tree + execute the chapters + HTML)")
def student_tree(workdir, student_python):
    """`make publish` into a temporary tree, chapters executed on the student venv."""
    if os.environ.get("AECOURSE_REUSE_PUBLISH"):  # developers only: check an existing tree
        return Path(os.environ["AECOURSE_REUSE_PUBLISH"])
    tree = workdir / "student"
    env = {**os.environ, "TQDM_DISABLE": "1"}
    venv_bin = Path(sys.executable).parent
    proc = subprocess.run(
        ["make", "-o", ".venv/.installed", "publish", f"BIN={venv_bin}",
         f"PUBLISH_ARGS=--out {tree} --python {student_python}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    (REPO / "test-output").mkdir(exist_ok=True)
    (REPO / "test-output" / "publish.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, \
        f"make publish failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    chapter_times = re.findall(r"executed (\S+) in ([\d.]+) s", proc.stdout)
    TIMINGS["  of which chapters executed"] = sum(float(s) for _, s in chapter_times)
    print("\n" + "\n".join(f"  {name}: {s} s" for name, s in chapter_times))
    return tree


@pytest.fixture(scope="module")
def site(student_tree):
    return student_tree / "_build" / "html"


def tree_files(tree: Path) -> list[Path]:
    """Every file of the student edition, as pushed (its _build/ is git-ignored)."""
    return sorted(p for p in tree.rglob("*") if p.is_file()
                  and "_build" not in p.relative_to(tree).parts)


def test_the_student_venv_has_no_book_grading_or_test_tools(student_python):
    script = ("import importlib.util, json, aecourse; print(json.dumps({m: bool("
              "importlib.util.find_spec(m)) for m in ('jupyter_book', 'myst_nb', 'nbgrader', "
              "'pytest', 'nbval', 'sphinx', 'aecourse.autograde', 'aecourse.sandbox', "
              "'aecourse.grader', 'torch', 'ipykernel', 'jupyterlab', 'aecourse.notebook')}))")
    found = json.loads(subprocess.run([str(student_python), "-c", script], check=True,
                                      cwd=student_python.parent,  # not this checkout
                                      capture_output=True, text=True).stdout)
    present = {m for m, ok in found.items() if ok}
    assert present == {"torch", "ipykernel", "jupyterlab", "aecourse.notebook"}, found
    site_packages = next((student_python.parent.parent / "lib").glob("python3*/site-packages"))
    size = sum(f.stat().st_size for f in site_packages.rglob("*") if f.is_file())
    print(f"\nstudent venv: {size / 2**20:.0f} MiB in site-packages")


def test_the_tree_holds_what_a_student_needs_and_nothing_of_the_instructor(student_tree):
    files = [p.relative_to(student_tree).as_posix() for p in tree_files(student_tree)]
    print("\nthe student tree:\n  " + "\n  ".join(files))
    for needed in ("README.md", "LICENSE", "LICENSE-content", "CITATION.cff", "CHANGELOG.md",
                   "requirements.txt", "pyproject.toml", "_config.yml", "_toc.yml",
                   "binder/requirements.txt", "binder/runtime.txt", "aecourse/__init__.py",
                   "aecourse/notebook.py", "aecourse/grading.py", "book/intro.md"):
        assert needed in files, f"the student edition lacks {needed}"
    for page in PAGES:
        assert any(f.startswith(page + ".") for f in files), f"the student edition lacks {page}"
    for ps in sorted(p.name for p in (REPO / "exercises").iterdir() if p.is_dir()):
        assert f"exercises/{ps}/{ps}.ipynb" in files
    forbidden = re.compile(r"^(solutions|tests|source|release|submitted|autograded|feedback)/"
                           r"|^aecourse/(grader/|autograde\.py|sandbox\.py|cli\.py|publish\.py)"
                           r"|nbgrader_config\.py$|gradebook\.db$|course\.yml$"
                           r"|(^|/)requirements-student\.txt$")
    leaked = [f for f in files if forbidden.search(f)]
    assert not leaked, f"instructor files in the student edition: {leaked}"
    requirements = (student_tree / "requirements.txt").read_text()
    for tool in ("jupyter-book", "myst-nb", "nbgrader", "pytest", "nbval", "ruff", "psycopg2"):
        assert tool not in requirements, f"{tool} in the student requirements"
    assert "torch==2.13.0" in requirements


# ------------------------------------------------------------------------- no leak
def _regions(source: str, begin: str, end: str) -> list[str]:
    return re.findall(rf"^[ \t]*### {begin}[^\n]*\n(.*?)^[ \t]*### {end}", source,
                      flags=re.S | re.M)


def secrets() -> dict[str, list[str]]:
    """What must stay private: each solution region and hidden-test region of solutions/."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "?")
            for kind, (begin, end) in {"solution": ("BEGIN SOLUTION", "END SOLUTION"),
                                       "hidden tests": ("BEGIN HIDDEN TESTS",
                                                        "END HIDDEN TESTS")}.items():
                for region in _regions(cell.source, begin, end):
                    found.setdefault(f"{path.parent.name} {grade_id} ({kind})", []).append(region)
    return found


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _found_in(whole: str, lines: list[str], text: str) -> bool:
    """A secret region is in ``text``: whole, or at least half of its distinctive lines (two
    or more). One line of a solution may be a formula that a chapter teaches."""
    if len(whole) >= 25 and whole in text:
        return True
    return len(lines) >= 2 and 2 * sum(line in text for line in lines) >= len(lines)


def _distinctive_lines(region: str, public: str) -> list[str]:
    """The region's lines that nothing public (library, released exercises) contains."""
    lines = []
    for line in region.splitlines():
        line = _normal(line)
        if len(line) >= 25 and not line.startswith("#") and line not in public:
            lines.append(line)
    return lines


def _readable(path: Path) -> str:
    text = path.read_bytes().decode("utf8", errors="replace")
    if path.suffix in (".html", ".htm", ".js"):
        text = html.unescape(re.sub(r"<[^>]+>", "", text))
    elif path.suffix == ".ipynb":  # the sources of the cells, one per line, unescaped
        text = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
    return _normal(text)


def leaks(files: list[Path], public: str) -> list[str]:
    """Each secret of solutions/ found in one of ``files`` (text, notebooks or HTML)."""
    found = []
    texts = {path: _readable(path) for path in files
             if path.suffix not in (".png", ".jpg", ".svg", ".woff", ".woff2", ".ttf", ".ico",
                                    ".eot", ".pickle", ".doctree", ".gz", ".zip")
             and "mathjax" not in path.parts}  # MathJax: vendored from a package, 6 MB
    for name, regions in secrets().items():
        for region in regions:
            whole, lines = _normal(region), _distinctive_lines(region, public)
            if whole in public:     # the library publishes this very code: an assignment
                whole = ""          # re-implements a library function (one API with the book)
            found += [f"{name} is in {path}" for path, text in texts.items()
                      if _found_in(whole, lines, text)]
    for path, text in texts.items():
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS"):
            if marker in text:
                found.append(f"nbgrader's {marker!r} is in {path}")
    return found


def public_text(tree: Path) -> str:
    """What students may read by design: the released exercises and the library's code."""
    parts = [_readable(p) for p in sorted((tree / "exercises").rglob("*.ipynb"))]
    parts += [_readable(p) for p in sorted((tree / "aecourse").rglob("*.py"))]
    return "\n".join(parts)


def test_no_solution_or_hidden_test_in_the_tree_or_its_html(student_tree, site):
    files = tree_files(student_tree) + sorted(p for p in site.rglob("*") if p.is_file())
    found = leaks(files, public_text(student_tree))
    assert not found, "the student edition leaks:\n" + "\n".join(found[:40])
    assert not list(student_tree.rglob("solutions")), "a solutions/ path in the student edition"


def test_the_leak_check_finds_a_planted_solution(student_tree, tmp_path):
    # The check above can fail: every solution notebook copied into the tree is caught, as is
    # the body of one graded function pasted into a page.
    secret = next(iter(secrets().items()))
    page = tmp_path / "page.html"
    page.write_text("<p>" + html.escape(secret[1][0]) + "</p>")
    planted = [page] + sorted((REPO / "solutions").glob("*/*.ipynb"))
    found = leaks(planted, public_text(student_tree))
    assert any(str(page) in f for f in found), "a pasted solution body went unnoticed"
    for path in planted[1:]:
        assert any(str(path) in f for f in found), f"{path} went unnoticed"


# ------------------------------------------------------------------------- running it
def test_every_chapter_ran_once_on_the_student_venv_with_its_outputs_stored(student_tree):
    for path in publish.chapters(student_tree):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), f"{path.name}: a cell did not run"
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"
        first = code[0].source
        assert first.startswith(publish.INSTALL_MARK), f"{path.name}: no install lines on top"
        assert f'"{SETTINGS.package}"' in first, f"{path.name}: installs something else"
        assert "myst_nb" not in "".join(c.source for c in code), f"{path.name} imports myst_nb"
        # the install lines were a no-op: aecourse is installed in the student venv
        assert not any("pip" in o.get("text", "") for o in code[0].outputs)


def test_every_released_exercise_runs_and_only_the_unsolved_parts_raise(student_tree,
                                                                        student_python,
                                                                        tmp_path):
    for source in sorted((student_tree / "exercises").glob("*/*.ipynb")):
        path = tmp_path / source.parent.name / source.name
        path.parent.mkdir()
        shutil.copy(source, path)
        nb, _ = publish.execute_notebook(path, student_python, allow_errors=True)
        unsolved, failed_sources = 0, []
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            meta = cell.metadata.get("nbgrader", {})
            for output in cell.outputs:
                if output.output_type != "error":
                    continue
                where = f"{source.parent.name} cell {index} ({meta.get('grade_id', 'not graded')})"
                # An unsolved function raises where it is called (a test, or a cell that uses
                # it); a later cell that uses a value an unsolved cell never computed finds
                # its name undefined. Anything else is a bug of the released notebook.
                missing = re.match(r"name '(\w+)' is not defined", output.evalue)
                consequence = output.ename == "NameError" and missing and any(
                    re.search(rf"\b{missing.group(1)}\b", s) for s in failed_sources)
                assert output.ename == "NotImplementedError" or consequence, (
                    f"{where}: expected NotImplementedError (not solved yet), got "
                    f"{output.ename}: {output.evalue}")
                unsolved += output.ename == "NotImplementedError"
                failed_sources.append(cell.source)
        assert unsolved, f"{source}: no cell raised NotImplementedError: is it solved?"
        setup = next(c for c in nb.cells if c.cell_type == "code")
        assert not [o for o in setup.outputs if o.output_type == "error"], \
            f"{source}: the setup cell failed"


# ------------------------------------------------------------------------- the HTML
def test_the_site_has_every_page_local_mathjax_and_the_launch_buttons(site):
    assert (site / LOCAL_MATHJAX).is_file(), "MathJax was not copied into the site"
    owner_repo = SETTINGS.student_repository.split("://", 1)[1].split("/", 1)[1]
    for docname in PAGES:
        page = site / f"{docname}.html"
        assert page.is_file(), f"{docname}.html was not built"
        text = page.read_text(encoding="utf8")
        sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', text)
        remote = [s for s in sources if re.match(r"(https?:)?//", s)]
        assert not remote, f"{docname}: scripts from the network: {remote}"
        assert "CC BY 4.0" in text and "MIT licence" in text, f"{docname}: no licence footer"
        if (REPO / f"{docname}.ipynb").exists():
            colab = (f"https://colab.research.google.com/github/{owner_repo}/blob/"
                     f"{SETTINGS.release}/{docname}.ipynb")
            assert colab in text, f"{docname}: no Colab button for {colab}"
            assert f"mybinder.org/v2/gh/{owner_repo}/{SETTINGS.release}" in text
            if not SETTINGS.jupyterhub_url:
                assert "hub/user-redirect/git-pull" not in text, "a JupyterHub button to nowhere"
    # glue without myst-nb: the value chapter 4 computed is printed in its prose
    executed = nbformat.read(site.parent.parent / "book" / "04_losses.ipynb", as_version=4)
    glued = next(float(o.data["application/papermill.record/text/plain"])
                 for c in executed.cells if c.cell_type == "code" for o in c.outputs
                 if o.get("metadata", {}).get("scrapbook", {}).get("name") == "ch4_mse")
    chapter4 = (site / "book" / "04_losses.html").read_text(encoding="utf8")
    assert f"{glued:.6f}" in visible_text(chapter4), "the glued MSE is not in chapter 4's prose"


def _bib_titles(bib: Path) -> dict[str, str]:
    titles = {}
    for entry in re.split(r"\n@", "\n" + bib.read_text(encoding="utf8"))[1:]:
        key = re.match(r"\w+\s*\{\s*([^,\s]+)\s*,", entry).group(1)
        title = re.search(r"\n\s*title\s*=\s*\{(.*)\},?\s*\n", entry).group(1)
        titles[key] = title.replace("{", "").replace("}", "")
    return titles


def test_bibliography_page_lists_every_reference(site):
    titles = _bib_titles(REPO / "book" / "references.bib")
    page = (site / "book" / "bibliography.html").read_text(encoding="utf8")
    entries = re.findall(r'role="doc-biblioentry">(.*?)</div>', page, flags=re.S)
    text = " ".join(re.sub(r"<[^>]+>", "", e) for e in entries).lower()
    missing = [key for key, title in titles.items() if title.lower() not in text]
    assert not missing, f"the bibliography page lacks {missing}"
    assert len(entries) == len(titles), f"{len(entries)} entries for {len(titles)} references"


# ------------------------------------------------------------------------- the browser
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
def server(site):
    """Serve the site under SITE_PREFIX on 127.0.0.1 (404 elsewhere); record every request."""
    requests: list[tuple[str, int]] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path):
            path = urllib.parse.urlsplit(path).path
            if not path.startswith(SITE_PREFIX):
                return str(site / "__outside_the_site__")
            return super().translate_path("/" + path[len(SITE_PREFIX):])

        def log_request(self, code="-", size="-"):
            requests.append((self.path, int(getattr(code, "value", code))))

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)  # a tab closed: not an error

    handler = functools.partial(Handler, directory=str(site))
    httpd = Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}{SITE_PREFIX}", requests
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
    mjx: document.querySelectorAll('mjx-container').length,
    mjx_errors: document.querySelectorAll('mjx-merror').length,
    output_images: outputs.length,
    output_images_shown: outputs.filter(i => i.complete && i.naturalWidth > 0).length,
    broken_images: [...document.images].filter(i => i.complete && i.naturalWidth === 0
                                                    && i.getAttribute('src')).map(i => i.src),
    code_that_scrolls: [...document.querySelectorAll('.bd-article div.highlight pre')]
        .filter(p => !p.closest('.cell_output') && p.scrollWidth > p.clientWidth + 1)
        .map(p => p.textContent.split('\\n').reduce((a, b) => a.length >= b.length ? a : b)),
    images: [...document.images].map(i => ({src: i.getAttribute('src') || '',
                                            alt: i.getAttribute('alt') || ''})),
    diagrams: [...document.images].filter(i => (i.getAttribute('src') || '').endsWith('.svg'))
                                  .map(i => ({src: i.src, alt: i.getAttribute('alt') || '',
                                              shown: i.complete && i.naturalWidth > 0,
                                              width: i.getBoundingClientRect().width,
                                              caption: (i.closest('figure')
                                                        ?.querySelector('figcaption')
                                                        ?.textContent || '').trim()})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    height: document.documentElement.scrollHeight,
    html: document.documentElement.outerHTML,
  });
})()
"""

# The search page, once its index is loaded and the results are listed.
SEARCH_RESULTS_JS = """
(async () => {
  for (let i = 0; i < 200; i++) {
    const items = document.querySelectorAll('#search-results li a, ul.search li a');
    if (items.length) return JSON.stringify([...items].map(a => a.href));
    await new Promise(r => setTimeout(r, 100));
  }
  return JSON.stringify([]);
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


def open_page(chrome: Browser, url: str, expression: str,
              screenshot: Path | None = None) -> tuple[dict | list, list[str]]:
    """Open url in a fresh tab, evaluate ``expression`` (JSON); return it and the problems."""
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
    result = chrome.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                              "returnByValue": True}, session=session)
    if "exceptionDetails" in result:
        raise RuntimeError(f"could not inspect {url}: {result['exceptionDetails']}")
    facts = json.loads(result["result"]["value"])
    if screenshot is not None:
        # Full page: as tall as the page (capped), as puppeteer's fullPage does.
        height = min(max(facts["height"], 900), 16000)
        chrome.send("Emulation.setDeviceMetricsOverride",
                    {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False},
                    session=session)
        chrome.send("Runtime.evaluate", {"expression": "new Promise(r => requestAnimationFrame("
                                         "() => requestAnimationFrame(r)))",
                                         "awaitPromise": True}, session=session)
        shot = chrome.send("Page.captureScreenshot",
                           {"format": "png", "clip": {"x": 0, "y": 0, "width": 1280,
                                                      "height": height, "scale": 1}},
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
    return facts, problems


def expected_figures(notebook: Path) -> int:
    """PNG outputs that the executed notebook shows in place (glued-away ones excepted)."""
    nb = nbformat.read(notebook, as_version=4)
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


def expected_diagrams(notebook: Path) -> list[str]:
    """The SVG diagrams a chapter's Markdown shows with a ``{figure}`` directive."""
    nb = nbformat.read(notebook, as_version=4)
    return [target for cell in nb.cells if cell.cell_type == "markdown"
            for target in re.findall(r"```\{figure\}\s+(\S+\.svg)", cell.source)]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("docname", PAGES)
def test_page_under_a_sub_path_renders_math_figures_links_and_nothing_remote(
        docname, student_tree, site, browser, server):
    base, requests = server
    requests.clear()
    page = Path(docname).name
    facts, problems = open_page(browser, f"{base}{docname}.html", PAGE_FACTS_JS,
                                SCREENSHOTS / f"{page}.png")

    assert not problems, f"{docname}: " + "\n".join(problems)
    assert not facts["broken_images"], f"{docname}: images that did not load: " \
                                       f"{facts['broken_images']}"
    notebook = student_tree / f"{docname}.ipynb"
    if notebook.exists():                   # a chapter's code fits the column
        assert not facts["code_that_scrolls"], \
            f"{docname}: code that scrolls sideways on a 1280-pixel screen, longest lines: " \
            f"{facts['code_that_scrolls']}"
    # an alt that is empty, or the path or hash myst-nb writes when a cell has no image.alt
    bad_alt = [image for image in facts["images"] if generated_alt(image["alt"], image["src"])]
    assert not bad_alt, f"{docname}: images without alt text of their own: {bad_alt}"
    failed = [(p, s) for p, s in requests if s >= 400 and not p.endswith("favicon.ico")]
    assert not failed, f"the server answered errors: {failed}"

    # every link into the site resolves (under the sub-path), anchors included
    for link in sorted(set(facts["links"])):
        if not link.startswith("http://127.0.0.1"):
            continue
        assert link.startswith(base), f"{docname}: a link out of the site's sub-path: {link}"
        target, _, anchor = link.partition("#")
        assert _status(target) == 200, f"{docname}: a broken link {link}"
        if anchor and target.endswith(".html"):
            path = site / urllib.parse.unquote(target[len(base):])
            assert f'id="{anchor}"' in path.read_text(encoding="utf8"), \
                f"{docname}: the link {link} points to a missing anchor"

    static = (site / f"{docname}.html").read_text(encoding="utf8")
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

    diagrams = expected_diagrams(notebook) if notebook.exists() else []
    shown = [d for d in facts["diagrams"] if "/_images/" in d["src"]]
    assert sorted(Path(urllib.parse.urlsplit(d["src"]).path).name for d in shown) == \
        sorted(Path(d).name for d in diagrams), \
        f"{docname}: the diagrams on the page {shown} are not the chapter's {diagrams}"
    for diagram in shown:
        assert diagram["shown"] and diagram["width"] > 100, \
            f"{docname}: the diagram {diagram['src']} did not load or has no size"
        assert diagram["alt"].strip() and not diagram["alt"].endswith(".svg"), \
            f"{docname}: the diagram {diagram['src']} has no alt text of its own"
        assert diagram["caption"], f"{docname}: the diagram {diagram['src']} has no caption"
    if notebook.exists():
        n_figures = expected_figures(notebook)
        assert n_figures >= 1, f"{docname}: a chapter without a single figure"
        assert facts["output_images_shown"] >= n_figures, (
            f"{docname}: the notebook made {n_figures} figures, the page shows "
            f"{facts['output_images_shown']} of its {facts['output_images']} output images")
    assert (SCREENSHOTS / f"{page}.png").stat().st_size > 10_000, "a blank screenshot"


def test_search_finds_the_chapters_under_a_sub_path(browser, server):
    base, _ = server
    results, problems = open_page(browser, f"{base}search.html?q=denoising", SEARCH_RESULTS_JS)
    assert not problems, "\n".join(problems)
    assert any(r.startswith(base) and "06b_denoising" in r for r in results), (
        f"searching 'denoising' did not find chapter 6b: {results[:10]}")


@pytest.mark.parametrize("installed", [True, False])
def test_the_colab_lines_install_the_release_only_where_the_library_is_missing(monkeypatch,
                                                                                installed):
    import importlib.util

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: object() if installed or name != "aecourse" else None)
    cell = publish._with_install_cell("after = True", SETTINGS)
    namespace = {}
    exec(compile(cell, "first cell", "exec"), namespace)  # pip itself never runs here
    assert namespace["after"], "the chapter's own first cell did not run after the lines"
    if installed:
        assert calls == []
    else:
        assert calls == [(([sys.executable, "-m", "pip", "install", "--quiet",
                            SETTINGS.package],), {"check": True})]


def test_the_colab_lines_fit_the_books_column():
    from test_book import MAX_CODE_LINE
    long = [line for line in publish._with_install_cell("", SETTINGS).splitlines()
            if len(line) > MAX_CODE_LINE]
    assert long == [], f"install lines over {MAX_CODE_LINE} characters scroll sideways: {long}"


# ------------------------------------------------------------------------- deploy and push
def _run_commands(steps) -> str:
    return "\n".join(str(step.get("run", "")) for step in steps)


def test_the_github_workflow_builds_with_make_publish_and_deploys_the_site_to_pages():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "publish.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads on: as True
    assert triggers["push"]["tags"] == ["v*"]
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    uses = [step.get("uses", "").split("@")[0] for step in build["steps"]]
    for action in ("actions/checkout", "actions/configure-pages", "actions/upload-pages-artifact"):
        assert action in uses, f"the build job does not use {action}"
    upload = next(s for s in build["steps"] if "upload-pages-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "_build/student/_build/html"  # where publish writes it
    assert "make publish" in _run_commands(build["steps"])
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]


def test_only_the_push_job_holds_the_token_and_it_runs_no_course_code():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "publish.yml").read_text())
    jobs = workflow["jobs"]
    holders = [name for name, job in jobs.items() if "STUDENT_REPO_TOKEN" in str(job)]
    assert holders == ["push"], f"the token is visible to {holders}, which run chapter code"
    push = jobs["push"]
    assert push["needs"] == "build"
    commands = _run_commands(push["steps"])
    assert "-m aecourse.publish --push-only" in commands
    assert "make" not in commands and "requirements" not in commands  # no chapter runs here
    upload = next(s for s in jobs["build"]["steps"] if "upload-artifact" in s.get("uses", ""))
    download = next(s for s in push["steps"] if "download-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == download["with"]["path"] == "_build/student"
    assert upload["with"]["name"] == download["with"]["name"]


def test_the_gitlab_pages_job_publishes_the_same_site():
    job = yaml.safe_load((REPO / ".gitlab-ci.yml").read_text())["pages"]
    assert job["script"][0] == "make publish"
    assert "cp -r _build/student/_build/html public" in job["script"]
    assert job["artifacts"]["paths"] == ["public"]
    assert "CI_COMMIT_TAG" in job["rules"][0]["if"]


def test_the_commands_the_workflows_run_exist():
    targets = re.findall(r"^([\w .-]+):", (REPO / "Makefile").read_text(), flags=re.M)
    assert any("publish" in t.split() for t in targets), "no `make publish` target"
    help_text = subprocess.run([sys.executable, "-m", "aecourse.publish", "--help"],
                               capture_output=True, text=True, check=True).stdout
    for option in ("--out", "--python", "--no-html", "--push-only"):
        assert option in help_text


def test_push_commits_each_release_on_top_of_the_last_and_tags_it(tmp_path):
    remote = tmp_path / "student.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(remote)], check=True)
    tree = tmp_path / "tree"
    (tree / "_build").mkdir(parents=True)
    (tree / "_build" / "index.html").write_text("built, not pushed")
    (tree / "README.md").write_text("first")
    publish.push(tree, str(remote), "v0.1.0")
    (tree / "README.md").write_text("second")
    publish.push(tree, str(remote), "v0.2.0")

    def git(*args):
        return subprocess.run(["git", "--git-dir", str(remote), *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    assert git("show", "v0.1.0:README.md") == "first"
    assert git("show", "v0.2.0:README.md") == "second"
    assert git("rev-list", "--count", "main") == "2"
    assert "_build" not in git("ls-tree", "-r", "--name-only", "main")
    with pytest.raises(publish.PublishError, match="git tag .*v0.2.0"):
        publish.push(tree, str(remote), "v0.2.0")  # a release is never moved


@pytest.mark.parametrize("text, message", [
    ("student_repository: github.com/x/y\nrelease: v1\n", "must look like https://github"),
    ("release: v1\n", "student_repository must be set"),
    ("student_repository: https://github.com/x/y\nrelease: v1\n"
     "jupyterhub_url: http://hub\n", "jupyterhub_url must start with https://"),
    ("- a list\n", "expected a mapping"),
])
def test_bad_settings_are_refused_with_what_was_expected(tmp_path, text, message):
    path = tmp_path / "course.yml"
    path.write_text(text)
    with pytest.raises(publish.PublishError, match=message):
        publish.load_settings(path)


@pytest.mark.parametrize("hub", ["", "https://hub.example.edu"])
def test_the_student_config_points_at_the_release_and_has_a_hub_button_only_with_a_hub(hub):
    settings = publish.Settings(SETTINGS.student_repository, "v9.9.9", hub)
    config = yaml.safe_load(publish._student_config(REPO, settings))
    assert config["repository"] == {"url": SETTINGS.student_repository, "branch": "v9.9.9",
                                    "path_to_book": ""}
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["launch_buttons"].get("jupyterhub_url", "") == hub


def test_settings_template_the_release_with_the_version():
    import aecourse

    assert SETTINGS.release == f"v{aecourse.__version__}"
    assert SETTINGS.package == (f"aecourse @ git+{SETTINGS.student_repository}"
                                f"@v{aecourse.__version__}")


def test_zz_report_the_costs():
    """Print what each step of the pipeline cost (runs last in this module)."""
    print("\n" + "\n".join(f"{name}: {seconds:.1f} s" for name, seconds in TIMINGS.items()))

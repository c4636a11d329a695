"""``aecourse publish``: build the student edition of the course and its HTML book.

The course repository is the instructor's (private: ``solutions/`` holds the answers and the
hidden tests). Students get the **student edition**, a tree built here into
``_build/student/`` and pushed as is to the public repository named in ``course.yml``:

1. :func:`build_tree` copies what a student needs, and nothing else: the book's pages and
   chapters, ``exercises/``, the ``aecourse`` library without the grader, the licences, a lean
   ``requirements.txt``, Binder's configuration, a student README and ``pyproject.toml``. The
   first code cell of every chapter gets the lines that install the library on Colab (from the
   student repository at the release tag); ``_config.yml`` gets the repository and launch
   buttons from ``course.yml``, and execution *off*.
2. :func:`execute_chapters` runs every chapter of that tree once, top to bottom, with nbclient
   on a chosen Python (default: this one), and stores the outputs in the tree's notebooks.
3. :func:`build_html` builds the book from the tree with Jupyter Book, which renders the
   stored outputs (no second execution) into ``_build/student/_build/html``.
4. :func:`push` (``--push-only``) commits that tree to the public repository and tags it.

Usage: ``python -m aecourse.publish [--out DIR] [--python PYTHON] [--no-html] [--push-only]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aecourse

# What the student edition holds, relative to the course root. Anything else stays private.
STUDENT_PATHS = ("book", "exercises", "aecourse", "_toc.yml", "binder", "LICENSE",
                 "LICENSE-content", "CITATION.cff", "CHANGELOG.md")
# Instructor-only parts of the library: the class grader and these tools.
INSTRUCTOR_ONLY = ("aecourse/grader", "aecourse/autograde.py", "aecourse/sandbox.py",
                   "aecourse/cli.py", "aecourse/publish.py")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "_build",
                                 "*.egg-info")
INSTALL_MARK = "# Colab, or anywhere without the course's library: install it first"


class PublishError(RuntimeError):
    """A step of the publication failed; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    """The publication settings of ``course.yml``."""

    student_repository: str
    release: str
    jupyterhub_url: str
    instructor_pages: tuple[str, ...] = ()

    @property
    def package(self) -> str:
        """The pip requirement of the student edition's library at the release tag."""
        return f"aecourse @ git+{self.student_repository}@{self.release}"


def course_root() -> Path:
    """The course checkout that holds this library (its ``course.yml``)."""
    root = Path(aecourse.__file__).resolve().parents[1]
    if not (root / "course.yml").is_file():
        raise PublishError(f"no course.yml in {root}: run aecourse publish from the course "
                           "checkout (the instructor's repository)")
    return root


def load_settings(path: Path) -> Settings:
    """Read ``course.yml``; ``{version}`` in ``release`` becomes ``aecourse.__version__``."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf8")) or {}
    if not isinstance(data, dict):
        raise PublishError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    missing = [key for key in ("student_repository", "release") if not data.get(key)]
    if missing:
        raise PublishError(f"{path}: {', '.join(missing)} must be set")
    repository = str(data["student_repository"]).rstrip("/")
    if not re.match(r"https://[\w.-]+/[\w.-]+/[\w.-]+$", repository):
        raise PublishError(f"{path}: student_repository must look like "
                           f"https://github.com/OWNER/REPO, got {repository!r}")
    hub = str(data.get("jupyterhub_url") or "").rstrip("/")
    if hub and not hub.startswith("https://"):
        raise PublishError(f"{path}: jupyterhub_url must start with https://, got {hub!r}")
    release = str(data["release"]).format(version=aecourse.__version__)
    pages = data.get("instructor_pages") or []
    if not isinstance(pages, list) or not all(isinstance(p, str) for p in pages):
        raise PublishError(f"{path}: instructor_pages must be a list of pages such as "
                           f"book/instructors, got {pages!r}")
    return Settings(repository, release, hub, tuple(pages))


# --------------------------------------------------------------------------- 1. the tree
def _student_config(root: Path, settings: Settings) -> str:
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf8"))
    config["execute"]["execute_notebooks"] = "off"   # aecourse publish executed them
    config["repository"] = {"url": settings.student_repository, "branch": settings.release,
                            "path_to_book": ""}
    buttons = config.setdefault("launch_buttons", {})
    buttons.pop("jupyterhub_url", None)
    if settings.jupyterhub_url:
        buttons["jupyterhub_url"] = settings.jupyterhub_url
    config.setdefault("html", {}).update(use_repository_button=True, use_issues_button=True)
    header = (f"# The student edition of the course, version {aecourse.__version__}, generated "
              "by `aecourse publish`\n# from the course's _config.yml and course.yml: edit "
              "those, not this file.\n")
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def _student_pyproject(root: Path) -> str:
    import tomllib

    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf8"))["project"]
    dependencies = ", ".join(f'"{d}"' for d in project.get("dependencies", []))
    return f'''# The library of the course's student edition (generated by `aecourse publish`).
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "aecourse"
version = "{aecourse.__version__}"
description = "{project.get("description", "")}"
readme = "README.md"
requires-python = "{project.get("requires-python", ">=3.11")}"
license = {{ text = "MIT" }}
dependencies = [{dependencies}]

[tool.setuptools]
packages = ["aecourse"]
'''


STUDENT_README = """\
# Autoencoders: an executable course (student edition {version})

The book, the assignments and the small library `aecourse` they import. Every chapter runs on
a laptop CPU in seconds, offline. Read it online, or run it in one of three ways:

- **On your laptop** (Python 3.11 or newer):

  ```bash
  python -m venv .venv
  .venv/bin/pip install -r requirements.txt   # on Linux, add --extra-index-url https://download.pytorch.org/whl/cpu
  .venv/bin/jupyter lab book/                  # the chapters; exercises/ holds the assignments
  ```
- **On your course's JupyterHub**, through the book's launch button (if your instructor runs one).
- **On Colab or Binder**, through the launch button at the top of a chapter: a chapter's first
  cell installs the library where it is missing.

The book's *Students' guide* (`book/students.md`) says what works where, and how to work on,
check and hand in an assignment.

This edition is {repository} at the tag `{release}`.
Code: MIT licence (`LICENSE`). Text and figures: CC BY 4.0 (`LICENSE-content`).
How to cite: `CITATION.cff`.
"""

STUDENT_GITIGNORE = "_build/\n.venv/\n__pycache__/\n.ipynb_checkpoints/\n*.egg-info/\n"


def _with_install_cell(source: str, settings: Settings) -> str:
    """The first code cell of a chapter, preceded by the lines that install the library."""
    install = f'''{INSTALL_MARK}
# (a no-op where it is installed).
import importlib
import importlib.util
import subprocess
import sys

package = "{settings.package}"
if importlib.util.find_spec("aecourse") is None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, package], check=True)
    importlib.invalidate_caches()
'''
    return install + "\n" + source


def build_tree(root: Path, out: Path, settings: Settings) -> Path:
    """Write the student edition of the course at ``root`` into ``out`` (replaced)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in STUDENT_PATHS:
        source = root / name
        if not source.exists():
            raise PublishError(f"{source} is missing: the student edition needs it")
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=IGNORED)
        else:
            shutil.copy2(source, out / name)
    for name in INSTRUCTOR_ONLY:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    shutil.copy2(root / "requirements-student.txt", out / "requirements.txt")
    (out / "_config.yml").write_text(_student_config(root, settings), encoding="utf8")
    (out / "pyproject.toml").write_text(_student_pyproject(root), encoding="utf8")
    (out / "README.md").write_text(STUDENT_README.format(
        version=aecourse.__version__, repository=settings.student_repository,
        release=settings.release), encoding="utf8")
    (out / ".gitignore").write_text(STUDENT_GITIGNORE, encoding="utf8")
    with open(out / "CITATION.cff", "a", encoding="utf8") as citation:
        citation.write(f'version: "{aecourse.__version__}"\n'
                       f'repository-code: "{settings.student_repository}"\n')
    _replace_instructor_pages(out, settings)
    for chapter in chapters(out):
        _template_chapter(chapter, settings)
    return out


INSTRUCTOR_STUB = """\
# For instructors

This is the student edition of the course. The guides for instructors (releasing, collecting
and grading the assignments; publishing this edition) are part of the course's source
repository, which also holds the solutions and is shared with instructors only. To teach
with this course, ask for access through {repository}.
"""


def _replace_instructor_pages(tree: Path, settings: Settings) -> None:
    """Drop the instructors' pages; one short page keeps their labels (links resolve)."""
    import yaml

    pages = settings.instructor_pages
    if not pages:
        return
    labels = []
    for page in pages:
        path = tree / f"{page}.md"
        if not path.is_file():
            raise PublishError(f"instructor_pages: {page}.md is not a page of the book")
        labels += re.findall(r"^\(([\w-]+)\)=\s*$", path.read_text(encoding="utf8"), flags=re.M)
        path.unlink()
    stub = "".join(f"({label})=\n" for label in labels) + INSTRUCTOR_STUB
    (tree / f"{pages[0]}.md").write_text(
        stub.format(repository=settings.student_repository),
        encoding="utf8")
    toc_path = tree / "_toc.yml"
    toc = yaml.safe_load(toc_path.read_text(encoding="utf8"))

    def keep(entries):
        kept = []
        for entry in entries or []:
            if entry.get("file") in pages[1:]:
                continue
            if "sections" in entry:
                entry["sections"] = keep(entry["sections"])
            kept.append(entry)
        return kept

    for part in toc.get("parts", []):
        part["chapters"] = keep(part.get("chapters"))
    toc_path.write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf8")


def chapters(tree: Path) -> list[Path]:
    """The chapter notebooks of the book at ``tree``, in the order of its ``_toc.yml``."""
    sys.path.insert(0, str(tree / "book" / "_ext"))
    try:
        from aecourse_book import toc_pages
    finally:
        sys.path.pop(0)
    paths = [tree / f"{page}.ipynb" for page in toc_pages(tree / "_toc.yml")]
    return [p for p in paths if p.exists()]


def _template_chapter(path: Path, settings: Settings) -> None:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    first = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first is None:
        raise PublishError(f"{path.name}: a chapter without a code cell")
    first.source = _with_install_cell(first.source, settings)
    nbformat.write(nb, path)


# --------------------------------------------------------------------------- 2. execution
def execute_notebook(path: Path, python: str | os.PathLike = sys.executable, *,
                     timeout: int = 180, allow_errors: bool = False):
    """Execute the notebook at ``path`` in its folder on a kernel of ``python``.

    Returns the executed notebook (also written back to ``path``) and the seconds it took.
    A failing cell raises :class:`PublishError` naming the notebook, the cell and the error,
    unless ``allow_errors`` (then the errors are in the outputs).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    # A kernel spec for `python`, found through JUPYTER_PATH by the kernel manager nbclient
    # makes (and shuts down).
    with tempfile.TemporaryDirectory(prefix="aecourse-kernel-") as data:
        spec = Path(data) / "kernels" / "aecourse-publish"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "aecourse publish", "language": "python"}), encoding="utf8")
        saved = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [data, saved]))
        client = NotebookClient(nb, kernel_name="aecourse-publish", timeout=timeout,
                                allow_errors=allow_errors,
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        try:
            client.execute(stderr=subprocess.DEVNULL)  # no kernel startup notices
        except CellExecutionError as error:
            index = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and any(
                o.get("output_type") == "error" for o in c.get("outputs", []))), "?")
            raise PublishError(f"{path.name}: cell {index} failed\n{error}") from None
        finally:
            if saved is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = saved
        seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    return nb, seconds


def execute_chapters(tree: Path, python: str | os.PathLike = sys.executable, *,
                     timeout: int = 180) -> dict[str, float]:
    """Execute every chapter of the tree once (outputs stored); seconds per chapter.

    ``timeout`` bounds each cell (nbclient) and each whole chapter: a slower chapter fails.
    """
    seconds = {}
    os.environ.setdefault("TQDM_DISABLE", "1")   # inherited by the kernels
    for path in chapters(tree):
        _, took = execute_notebook(path, python, timeout=timeout)
        if took > timeout:
            raise PublishError(f"{path.name} took {took:.0f} s to execute; the limit is "
                               f"{timeout} s (execute.timeout in _config.yml)")
        seconds[path.relative_to(tree).as_posix()] = took
        print(f"aecourse publish: executed {path.name} in {took:.1f} s", flush=True)
    return seconds


# --------------------------------------------------------------------------- 3. the HTML
def build_html(tree: Path) -> Path:
    """Build the book of ``tree`` (outputs as stored) into ``tree/_build/html``."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book", "build",
               "--warningiserror", "--nitpick", "--keep-going", "--all", str(tree)]
    proc = subprocess.run(command, cwd=tree, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    (tree / "_build").mkdir(exist_ok=True)
    (tree / "_build" / "book-build.log").write_text(log, encoding="utf8")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", log)
    warnings = [line for line in plain.splitlines() if "WARNING" in line]
    if proc.returncode != 0 or warnings:
        raise PublishError(f"`{' '.join(command)}` exited with {proc.returncode} and "
                           f"{len(warnings)} warning(s):\n" + "\n".join(warnings[:30])
                           + "\n--- the end of the log ---\n" + log[-3000:])
    return tree / "_build" / "html"


# --------------------------------------------------------------------------- 4. the push
def _git(*args: str, cwd: Path) -> str:
    command = ["git", "-c", "user.name=aecourse publish", "-c",
               "user.email=aecourse-publish@localhost", *args]
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        shown = " ".join(re.sub(r"//[^/@]*@", "//***@", a) for a in args)  # no token in logs
        raise PublishError(f"git {shown} failed: {proc.stderr.strip()}")
    return proc.stdout


def push(tree: Path, remote: str, release: str, *, branch: str = "main") -> None:
    """Commit the student edition at ``tree`` on ``branch`` of ``remote``, tagged ``release``.

    The public repository keeps its history: each release is one commit on top of the last,
    and its tag is what Binder, Colab and the JupyterHub launch.
    """
    with tempfile.TemporaryDirectory(prefix="aecourse-push-") as work:
        clone = Path(work) / "student"
        heads = _git("ls-remote", "--heads", remote, branch, cwd=Path(work))
        if heads.strip():
            _git("clone", "--quiet", "--branch", branch, remote, str(clone), cwd=Path(work))
        else:  # an empty repository: the first release
            clone.mkdir()
            _git("init", "--quiet", "-b", branch, cwd=clone)
        for child in clone.iterdir():
            if child.name != ".git":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        shutil.copytree(tree, clone, ignore=shutil.ignore_patterns("_build"),
                        dirs_exist_ok=True)
        _git("add", "--all", cwd=clone)
        _git("commit", "--quiet", "--allow-empty", "-m",
             f"The student edition {release}", cwd=clone)
        _git("tag", "-a", release, "-m", f"The student edition {release}", cwd=clone)
        _git("push", "--quiet", remote, f"HEAD:refs/heads/{branch}", cwd=clone)
        _git("push", "--quiet", remote, f"refs/tags/{release}", cwd=clone)


def _execution_timeout(root: Path) -> int:
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf8"))
    return int(config.get("execute", {}).get("timeout", 180))


def publish(root: Path, out: Path, *, python: str | os.PathLike = sys.executable,
            html: bool = True) -> dict[str, float]:
    """The three steps; returns the seconds of each chapter and of each step."""
    settings = load_settings(root / "course.yml")
    times = {}
    start = time.perf_counter()
    build_tree(root, out, settings)
    times["tree"] = time.perf_counter() - start
    start = time.perf_counter()
    times.update(execute_chapters(out, python, timeout=_execution_timeout(root)))
    times["execute"] = time.perf_counter() - start
    if html:
        start = time.perf_counter()
        build_html(out)
        times["html"] = time.perf_counter() - start
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="aecourse publish",
        description="Build the student edition of the course into _build/student/: the tree, "
                    "every chapter executed once, the HTML book (_build/student/_build/html).")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the student edition (default: _build/student)")
    parser.add_argument("--python", default=sys.executable,
                        help="the Python whose kernel executes the chapters "
                             "(default: this one; it needs ipykernel and the student "
                             "requirements)")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML book")
    parser.add_argument("--push-only", action="store_true",
                        help="build nothing: commit the student edition already built in "
                             "--out to the student repository of course.yml and tag it with "
                             "the release (a token in $STUDENT_REPO_TOKEN is used if set)")
    args = parser.parse_args(argv)
    try:
        root = course_root()
        out = (args.out or root / "_build" / "student").resolve()
        if args.push_only:
            settings = load_settings(root / "course.yml")
            remote = settings.student_repository
            if os.environ.get("STUDENT_REPO_TOKEN"):
                remote = remote.replace("https://", "https://x-access-token:"
                                        f"{os.environ['STUDENT_REPO_TOKEN']}@", 1)
            push(out, remote, settings.release)
            print(f"aecourse publish: pushed {out} to {settings.student_repository} "
                  f"as {settings.release}")
            return 0
        times = publish(root, out, python=args.python, html=not args.no_html)
    except PublishError as error:
        print(f"aecourse publish: {error}", file=sys.stderr)
        return 1
    steps = ", ".join(f"{k} {times[k]:.0f} s" for k in ("tree", "execute", "html") if k in times)
    print(f"aecourse publish: the student edition is in {out} ({steps})")
    if not args.no_html:
        print(f"aecourse publish: the book is at {out / '_build' / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

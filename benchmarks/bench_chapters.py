"""How long each chapter of the book takes to execute.

Runs every chapter notebook listed in ``_toc.yml`` from top to bottom with nbclient, on the
"python3" kernel of the interpreter running this script (the project's .venv under
`make bench`), with progress bars off (TQDM_DISABLE=1), one notebook after the other, and
prints one table: notebook, seconds, and whether it stays within the 60 s budget.

Usage: .venv/bin/python benchmarks/bench_chapters.py [--budget 60] [--timeout 600]
Exit status 1 when a notebook fails to execute.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "book" / "_ext"))
from aecourse_book import toc_pages  # noqa: E402  (the book's one reader of _toc.yml)


def chapter_notebooks(toc_path: Path = REPO / "_toc.yml") -> list[Path]:
    """The notebooks of the book, in reading order, as listed in ``_toc.yml``."""
    paths = [REPO / f"{page}.ipynb" for page in toc_pages(toc_path)]
    return [p for p in paths if p.exists()]


def execute(path: Path, timeout: int) -> tuple[float, str]:
    """Execute one notebook in its own directory; return (seconds, error or "")."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        # the kernel's own log (a startup notice of ipykernel) would clutter the table
        client.execute(stderr=subprocess.DEVNULL)
        error = ""
    except Exception as exc:  # report and go on with the next chapter
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc) else ''}"
    return time.perf_counter() - start, error


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds a chapter may take (default: 60)")
    parser.add_argument("--timeout", type=int, default=600,
                        help="nbclient's per-cell timeout in seconds (default: 600)")
    args = parser.parse_args(argv)
    os.environ["TQDM_DISABLE"] = "1"  # inherited by the kernels started below

    notebooks = chapter_notebooks()
    rows, failed = [], False
    for path in notebooks:
        seconds, error = execute(path, args.timeout)
        failed |= bool(error)
        within = "no (error)" if error else ("yes" if seconds <= args.budget else "no")
        rows.append((path.relative_to(REPO).as_posix(), f"{seconds:.1f}", within, error))

    total = sum(float(r[1]) for r in rows)
    print(f"Chapter execution times (nbclient, kernel python3 of {sys.executable}, "
          f"{os.cpu_count()} CPUs)\n")
    header = ("notebook", "seconds", f"within {args.budget:g} s")
    width = max([len(header[0])] + [len(r[0]) for r in rows])
    print(f"| {header[0]:<{width}} | {header[1]:>7} | {header[2]} |")
    print(f"|{'-' * (width + 2)}|{'-' * 8}:|{'-' * (len(header[2]) + 2)}|")
    for name, seconds, within, _ in rows:
        print(f"| {name:<{width}} | {seconds:>7} | {within:<{len(header[2])}} |")
    print(f"| {'total':<{width}} | {total:>7.1f} | {'':<{len(header[2])}} |")
    for name, _, _, error in rows:
        if error:
            print(f"\n{name} failed: {error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""How long each chapter of the book takes to execute.

Runs every chapter notebook listed in ``_toc.yml`` from top to bottom exactly as
``aecourse publish`` does (``aecourse.publish.execute_notebook``: nbclient, a kernel of the
interpreter running this script or of ``--python``), on a copy in a temporary folder so that
``book/`` stays without outputs, with progress bars off (TQDM_DISABLE=1), one notebook after
the other, and prints one table: notebook, seconds, and whether it stays within the budget
(30 s a chapter, 150 s the whole book), with the machine's load average before and after, since
on a shared machine the times grow with the load.

Usage: .venv/bin/python benchmarks/bench_chapters.py [--budget 30] [--total-budget 150]
       [--timeout 600] [--python PATH]   (e.g. the student edition's environment)
       [--only 01 02 ...]   (chapters whose file name starts with one of these)
Exit status 1 when a notebook fails to execute.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from aecourse.publish import PublishError, chapters, execute_notebook

REPO = Path(__file__).resolve().parents[1]


def execute(path: Path, timeout: int, python: str) -> tuple[float, str]:
    """Execute a copy of one chapter in a temporary folder; return (seconds, error or "")."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "book" / path.name
        copy.parent.mkdir()
        shutil.copy(path, copy)
        start = time.perf_counter()
        try:
            execute_notebook(copy, python, timeout=timeout)
            error = ""
        except PublishError as exc:  # report and go on with the next chapter
            error = str(exc).strip().splitlines()[-1]
        return time.perf_counter() - start, error


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds a chapter may take (default: 30)")
    parser.add_argument("--total-budget", type=float, default=150.0,
                        help="seconds the whole book may take (default: 150)")
    parser.add_argument("--only", nargs="*", default=None,
                        help="only the chapters whose file name starts with one of these")
    parser.add_argument("--timeout", type=int, default=600,
                        help="nbclient's per-cell timeout in seconds (default: 600)")
    parser.add_argument("--python", default=sys.executable,
                        help="the Python whose kernel runs the chapters (default: this one)")
    args = parser.parse_args(argv)
    os.environ["TQDM_DISABLE"] = "1"  # inherited by the kernels started below

    rows, failed = [], False
    load_before = os.getloadavg()[0]
    for path in chapters(REPO):
        if args.only and not path.name.startswith(tuple(args.only)):
            continue
        seconds, error = execute(path, args.timeout, args.python)
        failed |= bool(error)
        within = "no (error)" if error else ("yes" if seconds <= args.budget else "no")
        rows.append((path.relative_to(REPO).as_posix(), f"{seconds:.1f}", within, error))

    total = sum(float(r[1]) for r in rows)
    load_after = os.getloadavg()[0]
    print(f"Chapter execution times (nbclient, a kernel of {args.python}, "
          f"{os.cpu_count()} CPUs, load average {load_before:.1f} before, "
          f"{load_after:.1f} after)\n")
    header = ("notebook", "seconds", f"within {args.budget:g} s")
    within_total = ("yes" if total <= args.total_budget else "no") \
        + f" (of {args.total_budget:g} s)"
    width = max([len(header[0])] + [len(r[0]) for r in rows])
    third = max(len(header[2]), len(within_total))
    print(f"| {header[0]:<{width}} | {header[1]:>7} | {header[2]:<{third}} |")
    print(f"|{'-' * (width + 2)}|{'-' * 8}:|{'-' * (third + 2)}|")
    for name, seconds, within, _ in rows:
        print(f"| {name:<{width}} | {seconds:>7} | {within:<{third}} |")
    print(f"| {'total':<{width}} | {total:>7.1f} | {within_total:<{third}} |")
    for name, _, _, error in rows:
        if error:
            print(f"\n{name} failed: {error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

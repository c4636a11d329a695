"""How long each chapter of the book takes to execute.

Runs every chapter notebook listed in ``_toc.yml`` from top to bottom exactly as
``aecourse publish`` does (``aecourse.publish.execute_notebook``: nbclient, a kernel of the
interpreter running this script or of ``--python``), on a copy in a temporary folder so that
``book/`` stays without outputs, with progress bars off (TQDM_DISABLE=1), one notebook after
the other, and prints one table: notebook, seconds, and whether it stays within its budget,
with the machine's load average before and after, since on a shared machine the times grow
with the load. The budgets are the issues': a chapter of the lectures 30 s, the lectures' nine
chapters 150 s together, a chapter of the part "Beyond the lectures" (``_toc.yml``) 45 s.

Usage: .venv/bin/python benchmarks/bench_chapters.py [--budget 30] [--total-budget 150]
       [--beyond-budget 45] [--timeout 600] [--python PATH]   (e.g. the student edition's)
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
BEYOND = "Beyond the lectures"      # the _toc.yml part whose chapters have their own budget


def beyond_the_lectures() -> set[str]:
    """The file names (``book/08_convolutional``) of the chapters in the part :data:`BEYOND`."""
    import yaml
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf8"))
    return {c["file"] for part in toc["parts"] if part.get("caption") == BEYOND
            for c in part["chapters"]}


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
                        help="seconds the lectures' chapters may take together (default: 150)")
    parser.add_argument("--beyond-budget", type=float, default=45.0,
                        help=f"seconds a chapter of {BEYOND!r} may take (default: 45)")
    parser.add_argument("--only", nargs="*", default=None,
                        help="only the chapters whose file name starts with one of these")
    parser.add_argument("--timeout", type=int, default=600,
                        help="nbclient's per-cell timeout in seconds (default: 600)")
    parser.add_argument("--python", default=sys.executable,
                        help="the Python whose kernel runs the chapters (default: this one)")
    args = parser.parse_args(argv)
    os.environ["TQDM_DISABLE"] = "1"  # inherited by the kernels started below

    rows, failed, beyond = [], False, beyond_the_lectures()
    load_before = os.getloadavg()[0]
    for path in chapters(REPO):
        if args.only and not path.name.startswith(tuple(args.only)):
            continue
        seconds, error = execute(path, args.timeout, args.python)
        failed |= bool(error)
        name = path.relative_to(REPO).with_suffix("").as_posix()
        budget = args.beyond_budget if name in beyond else args.budget
        within = "no (error)" if error else ("yes" if seconds <= budget else "no") \
            + f" (of {budget:g} s)"
        rows.append((f"{name}.ipynb", seconds, within, error, name in beyond))

    lectures = sum(r[1] for r in rows if not r[4])
    load_after = os.getloadavg()[0]
    print(f"Chapter execution times (nbclient, a kernel of {args.python}, "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"load average {load_before:.1f} before, {load_after:.1f} after)\n")
    totals = [("total, the lectures' chapters", lectures,
               ("yes" if lectures <= args.total_budget else "no")
               + f" (of {args.total_budget:g} s)", "", False),
              ("total", sum(r[1] for r in rows), "", "", False)]
    lines = [(n, f"{t:.1f}", w) for n, t, w, *_ in rows + totals]
    width = max(len(line[0]) for line in [("notebook",)] + lines)
    third = max(len(line[2]) for line in [("", "", "within budget")] + lines)
    print(f"| {'notebook':<{width}} | {'seconds':>7} | {'within budget':<{third}} |")
    print(f"|{'-' * (width + 2)}|{'-' * 8}:|{'-' * (third + 2)}|")
    for name, seconds, within in lines:
        print(f"| {name:<{width}} | {seconds:>7} | {within:<{third}} |")
    for name, _, _, error, _ in rows:
        if error:
            print(f"\n{name} failed: {error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

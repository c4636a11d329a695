"""``aecourse grade`` versus plain ``nbgrader autograde``: throughput, cost, hostile cases.

Run from the repository root::

    .venv/bin/python benchmarks/bench_grading.py [--assignment ps1] [--n 40] [--jobs 2]
                                                 [--no-hostile]

(a) One course with ``--n`` submissions of one assignment (the filled-in solution and the bug
    variants of ``tests/assignments/bugs_<ps>.py``, cycled), graded in one run by plain
    ``nbgrader autograde`` and by ``aecourse grade --jobs N`` (separate copies of the course).
    Goal: aecourse grade >= 2.5x faster on 2 cores. The two gradebooks must agree.
(b) Per-submission cost: ``aecourse grade --jobs 1`` on one submission (the whole command:
    start-up, forkserver, writing) versus executing the solution notebook bare with nbclient;
    the two are interleaved, 3 rounds, and the minimum of each is compared. Goal <= 1.0x.
(c) The hostile corpus of ``tests/hostile`` graded by plain nbgrader (one student per run, each
    in its own copy of the course, the nbgrader process under a 2 GB data limit so that a
    memory bomb cannot take the machine down) and by ``aecourse grade``: points per case.

Wall times use time.perf_counter. The machine line includes the load average: timings on a
busy machine are inflated.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TQDM_DISABLE": "1", "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = _load("hostile_corpus", REPO / "tests" / "hostile" / "corpus.py")
harness = _load("assignment_harness", REPO / "tests" / "assignments" / "harness.py")


def run(command, cwd, limit_data_mb=None) -> float:
    def limits():
        if limit_data_mb:
            size = limit_data_mb * 2**20
            resource.setrlimit(resource.RLIMIT_DATA, (size, size))
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True,
                   preexec_fn=limits, timeout=7200)
    return time.perf_counter() - start


def copy_course(template: Path, target: Path) -> Path:
    """A copy of a course whose nbgrader_config.py points at the copy's own gradebook."""
    shutil.copytree(template, target)
    config = target / "nbgrader_config.py"
    config.write_text(config.read_text().replace(str(template), str(target)))
    return target


def scores(course: Path, assignment: str, course_id: str = "hostile") -> dict:
    from nbgrader.api import Gradebook
    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=course_id) as gb:
        for submission in gb.assignment_submissions(assignment):
            out[submission.student.id] = sum(
                g.auto_score or 0.0 for nb in submission.notebooks for g in nb.grades
                if g.cell.cell_type == "code")
    return out


def class_course(args, tmp: Path) -> Path:
    """A course with ``args.n`` submissions of ``args.assignment``: the solution and the bug
    variants of tests/assignments/bugs_<ps>.py, cycled (students s00, s01, ...)."""
    source = REPO / "solutions" / args.assignment / f"{args.assignment}.ipynb"
    course = corpus.make_course(tmp / "template", source=source, timeout=600)
    source_nb = nbformat.read(source, as_version=4)
    release = nbformat.read(course / "exercises" / args.assignment / source.name, as_version=4)
    bugs = [None, *harness.load_bugs(args.assignment, source_nb)]
    for i in range(args.n):
        folder = course / "submitted" / f"s{i:02d}" / args.assignment
        folder.mkdir(parents=True)
        nbformat.write(harness.submission(release, source_nb, bugs[i % len(bugs)]),
                       folder / source.name)
    return course


def throughput(args, tmp: Path) -> list[tuple]:
    course = class_course(args, tmp)
    source = REPO / "solutions" / args.assignment / f"{args.assignment}.ipynb"
    source_nb = nbformat.read(source, as_version=4)
    release = nbformat.read(course / "exercises" / args.assignment / source.name, as_version=4)
    copies = {}
    for name in ("plain", "ours", "single"):
        copies[name] = copy_course(course, tmp / name)
    nbgrader = [str(BIN / "nbgrader"), "autograde", args.assignment]
    ours = [str(BIN / "aecourse"), "grade", args.assignment, "--timeout", "600"]
    t_plain = run(nbgrader, copies["plain"])
    t_ours = run([*ours, "--jobs", str(args.jobs)], copies["ours"])
    single, bare = [], []
    notebook = harness.submission(release, source_nb, None)
    import nbclient
    for _ in range(3):                     # interleaved: both see the same machine load
        single.append(run([*ours, "--jobs", "1", "--student", "s00"], copies["single"]))
        start = time.perf_counter()
        nbclient.NotebookClient(nbformat.from_dict(notebook), timeout=600,
                                kernel_name="python3",
                                resources={"metadata": {"path": str(tmp)}}).execute()
        bare.append(time.perf_counter() - start)
    t_single, t_bare = min(single), min(bare)
    plain_scores = scores(copies["plain"], args.assignment)
    our_scores = scores(copies["ours"], args.assignment)
    disagree = sorted(s for s in plain_scores if plain_scores[s] != our_scores.get(s))
    return [
        (f"plain nbgrader autograde, {args.n} submissions", f"{t_plain:.1f} s", ""),
        (f"aecourse grade --jobs {args.jobs}, {args.n} submissions", f"{t_ours:.1f} s",
         f"speed-up {t_plain / t_ours:.2f}x (goal >= 2.5x)"),
        ("aecourse grade --jobs 1, one submission (min of 3)", f"{t_single:.1f} s",
         f"{t_single / t_bare:.2f}x bare (goal <= 1.0x)"),
        ("bare nbclient execution of the solution (min of 3)", f"{t_bare:.1f} s", ""),
        ("students where the two gradebooks disagree", str(len(disagree)),
         ", ".join(disagree[:5])),
    ]


def hostile(args, tmp: Path) -> list[tuple]:
    template = corpus.make_course(tmp / "hostile-template", timeout=10)
    ours = copy_course(template, tmp / "hostile-ours")
    corpus.submit(ours, corpus.CASES)
    run([str(BIN / "aecourse"), "grade", "hw", "--timeout", "10", "--memory", "1024",
         "--jobs", str(args.jobs)], ours)
    our_scores = scores(ours, "hw")
    rows = []
    for case in sorted(corpus.CASES):
        course = copy_course(template, tmp / f"plain-{case}")
        corpus.submit(course, {case: corpus.CASES[case]})
        start = time.perf_counter()
        run([str(BIN / "nbgrader"), "autograde", "hw", "--student", case], course,
            limit_data_mb=2048)
        seconds = time.perf_counter() - start
        _kill_leftovers()
        try:
            plain = f"{scores(course, 'hw').get(case, float('nan')):g}"
        except Exception as error:  # noqa: BLE001  (e.g. the gradebook was deleted)
            plain = f"no grade ({type(error).__name__})"
        if not (course / "gradebook.db").exists():
            plain += " (gradebook deleted!)"
        rows.append((case, plain, f"{our_scores.get(case, float('nan')):g}",
                     str(corpus.CASES[case]["points"]), f"{seconds:.0f} s"))
    return rows


def _kill_leftovers() -> None:
    """The fork_outlives case leaves `sleep 987654` behind under plain nbgrader: end it."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().split(b"\0")[:2] == [b"sleep", b"987654"]:
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def table(rows, header) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True))
                     for r in [header, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assignment", default="ps1")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--no-hostile", action="store_true")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--scheduler", action="store_true",
                        help="also: Dask (1 and 2 workers on loopback) against local grading")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        if not args.no_throughput:
            print(table(throughput(args, Path(tmp)), ("measurement", "value", "note")))
        if args.scheduler:
            import bench_grading_dask
            print(table(bench_grading_dask.rows(args, Path(tmp) / "dask"),
                        ("run", "wall time", "throughput")))
        if not args.no_hostile:
            print(table(hostile(args, Path(tmp)),
                        ("case", "plain nbgrader", "aecourse grade", "expected", "plain time")))


if __name__ == "__main__":
    main()

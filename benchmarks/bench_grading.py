"""``aecourse grade`` versus plain ``nbgrader autograde``: throughput, cost, hostile cases.

Run from the repository root::

    .venv/bin/python benchmarks/bench_grading.py [--assignment ps1] [--n 40] [--jobs 2]
                                                 [--no-hostile]

(a) One course with ``--n`` submissions of one assignment (the filled-in solution and the bug
    variants of ``tests/assignments/bugs_<ps>.py``, cycled), graded by plain
    ``nbgrader autograde`` and by ``aecourse grade --jobs N`` (separate copies of the course),
    the two interleaved for ``--rounds`` rounds (the minimum of each is compared, the median
    shown). Goal: aecourse grade >= 2.5x faster on 2 cores. The two gradebooks must agree.
(b) Per-submission cost: ``aecourse grade --jobs 1`` on one submission (the whole command:
    start-up, forkserver, writing) versus ``jupyter nbconvert --to notebook --execute`` of the
    same submission (the whole command too), interleaved for ``--single-rounds`` rounds;
    minimum of each compared. Goal <= 1.0x.
    ``--baseline DIR`` adds a third arm to (a) and (b): ``aecourse grade`` with the package
    imported from ``DIR`` (e.g. ``git archive`` of an older commit), interleaved with the others.
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
import statistics
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


def run(command, cwd, limit_data_mb=None, env=None) -> float:
    def limits():
        if limit_data_mb:
            size = limit_data_mb * 2**20
            resource.setrlimit(resource.RLIMIT_DATA, (size, size))
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env or ENV, capture_output=True, text=True,
                   preexec_fn=limits, timeout=7200)
    return time.perf_counter() - start


def _stats(times: list[float]) -> str:
    return f"min {min(times):.1f} s, median {statistics.median(times):.1f} s, n={len(times)}"


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
    arms = {"plain": [str(BIN / "nbgrader"), "autograde", args.assignment]}
    ours = [str(BIN / "aecourse"), "grade", args.assignment, "--timeout", "600"]
    envs = {"plain": ENV, "ours": ENV}
    arms["ours"] = [*ours, "--jobs", str(args.jobs)]
    if args.baseline:
        arms["baseline"] = arms["ours"]
        envs["baseline"] = {**ENV, "PYTHONPATH": str(Path(args.baseline).resolve())}
    times = {arm: [] for arm in arms}
    for round_ in range(args.rounds):          # interleaved: all arms see the same load
        for arm, command in arms.items():
            copy = copy_course(course, tmp / f"{arm}-{round_}")
            times[arm].append(run(command, copy, env=envs[arm]))
            print(f"  round {round_}: {arm} {times[arm][-1]:.1f} s", flush=True)
            if round_ < args.rounds - 1:
                shutil.rmtree(copy)
    last = args.rounds - 1
    plain_scores = scores(tmp / f"plain-{last}", args.assignment)
    disagree = set()
    for arm in arms:
        got = scores(tmp / f"{arm}-{last}", args.assignment)
        disagree |= {s for s in plain_scores if plain_scores[s] != got.get(s)}
    rows = [(f"plain nbgrader autograde, {args.n} submissions", _stats(times["plain"]), "")]
    for arm in arms:
        if arm != "plain":
            speed_up = min(times["plain"]) / min(times[arm])
            rows.append((f"aecourse grade --jobs {args.jobs} ({arm}), {args.n} submissions",
                         _stats(times[arm]), f"speed-up {speed_up:.2f}x (goal >= 2.5x)"))
    single = {arm: [] for arm in ("ours", *(["baseline"] if args.baseline else []), "bare")}
    folder = course / "submitted" / "s00" / args.assignment
    one = copy_course(course, tmp / "single")
    for _ in range(args.single_rounds):
        for arm in single:
            if arm == "bare":
                command = [str(BIN / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                           "--ExecutePreprocessor.timeout=600", "--output-dir",
                           str(tmp / "bare"), str(folder / source.name)]
                single[arm].append(run(command, folder))
            else:
                single[arm].append(run([*ours, "--jobs", "1", "--student", "s00"], one,
                                       env=envs[arm]))
            print(f"  one submission: {arm} {single[arm][-1]:.1f} s", flush=True)
    for arm in single:
        note = "" if arm == "bare" else \
            f"{min(single[arm]) / min(single['bare']):.2f}x bare (goal <= 1.0x)"
        what = "jupyter nbconvert --execute, the same submission" if arm == "bare" else \
            f"aecourse grade --jobs 1 ({arm}), one submission"
        rows.append((what, _stats(single[arm]), note))
    rows.append(("students where the gradebooks disagree", str(len(disagree)),
                 ", ".join(sorted(disagree)[:5])))
    return rows


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
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (a)")
    parser.add_argument("--single-rounds", type=int, default=5, help="rounds of (b)")
    parser.add_argument("--baseline", help="a directory holding an older aecourse package")
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

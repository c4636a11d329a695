"""``aecourse grade PS``: the course's settings, the class's tasks, and the command line.

Reads ``nbgrader_config.py`` (the same directories and ``db_url`` nbgrader uses), decides what
each worker must not see (everything in the course but the library and the release, the
gradebook file, and the grading folders wherever they are), and runs a
:class:`~aecourse.grader.batch.Batch`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from aecourse.grader import isolation, late, ownership, preflight
from aecourse.grader.batch import Batch
from aecourse.grader.run import Task

__all__ = ["load_config", "hidden_paths", "tasks", "main"]

VISIBLE_IN_SANDBOX = {".venv", "aecourse", "aecourse.egg-info", "exercises", "pyproject.toml",
                      "README.md", "book"}


def load_config(course: Path, db_url: str | None = None) -> dict:
    """Course settings from ``nbgrader_config.py`` (paths made absolute)."""
    from traitlets.config.loader import PyFileConfigLoader
    loaded = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    directory = loaded.get("CourseDirectory", {})
    root = (course / directory.get("root", ".")).resolve()

    def folder(key, default):
        return str((root / directory.get(key, default)).resolve())

    return {"course": str(root), "course_id": directory.get("course_id", "default_course"),
            "db_url": db_url or directory.get("db_url") or f"sqlite:///{root / 'gradebook.db'}",
            "source_root": folder("source_directory", "source"),
            "release_root": folder("release_directory", "release"),
            "submitted": folder("submitted_directory", "submitted"),
            "autograded": folder("autograded_directory", "autograded"),
            "feedback": folder("feedback_directory", "feedback")}


def hidden_paths(config: dict) -> tuple:
    """(path, is_dir) of what the worker must not see."""
    root = Path(config["course"])
    hidden = {p for p in root.iterdir() if p.name not in VISIBLE_IN_SANDBOX}
    for key in ("source_root", "submitted", "autograded", "feedback"):
        hidden.add(Path(config[key]))
    if config["db_url"].startswith("sqlite:///"):
        hidden.add(Path(config["db_url"][len("sqlite:///"):]).resolve())
    return tuple((str(p), p.is_dir()) for p in sorted(hidden)
                 if p.exists() and not p.is_symlink())


def tasks(assignment: str, config: dict, students, limits: isolation.Limits) -> list[Task]:
    """One :class:`Task` per student who submitted ``assignment`` (or per named student)."""
    submitted = Path(config["submitted"])
    found = sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir()) \
        if submitted.is_dir() else []
    keep = (config["course"], sys.prefix, sys.base_prefix,
            str(Path(__file__).resolve().parents[2]))
    base = dict(assignment=assignment, course=config["course"], source=config["source"],
                release=config["release"], submitted=config["submitted"],
                hidden=hidden_paths(config), keep=tuple(str(Path(k).resolve()) for k in keep),
                limits=limits, db_url=config["db_url"], course_id=config["course_id"])
    return [Task(student=s, **base) for s in (list(students) if students else found)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aecourse grade",
        description="Grade every submission of one assignment like `nbgrader autograde`, but "
                    "with each student's code in its own locked-down process (no network, no "
                    "access to the gradebook, solutions or other students), tests run outside "
                    "it, several submissions at a time. Scores go to nbgrader's gradebook, so "
                    "`nbgrader generate_feedback` and `nbgrader export` work as usual.")
    parser.add_argument("assignment", help="assignment name, e.g. ps1")
    parser.add_argument("--student", nargs="+", metavar="ID", help="only these students")
    parser.add_argument("--jobs", type=int, help="submissions graded at once (default: cores)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="wall-clock seconds a cell may take (default 60)")
    parser.add_argument("--submission-timeout", type=float,
                        help="wall-clock seconds a whole submission may take (default 30 cells)")
    parser.add_argument("--cpu", type=int, default=600,
                        help="CPU seconds per submission (default 600)")
    parser.add_argument("--memory", type=int, default=4096,
                        help="memory limit per submission in MB (default 4096)")
    parser.add_argument("--fsize", type=int, default=64,
                        help="MB of files a submission may write (default 64)")
    parser.add_argument("--db-url", help="gradebook URL (default: nbgrader_config.py's db_url, "
                                         "else sqlite:///<course>/gradebook.db)")
    parser.add_argument("--course-dir", default=".", help="course directory (with "
                                                           "nbgrader_config.py; default: .)")
    # guards (aecourse.grader.preflight)
    parser.add_argument("--allow-changed-source", action="store_true",
                        help="grade even if solutions/<ps> differs from what was released "
                             "(the release's test cells and points are used)")
    parser.add_argument("--skip-solution-check", action="store_true",
                        help="do not first grade the reference solution (one submission's "
                             "time), e.g. to regrade one student of an unchanged assignment")
    parser.add_argument("--only-missing", action="store_true",
                        help="grade only students whose current submission has no complete "
                             "result yet (finishes an interrupted class)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on a Dask cluster (e.g. tcp://host:8786); this process "
                            "stays the only writer of the gradebook")
    where.add_argument("--cluster", choices=["local"],
                       help="grade on a Dask LocalCluster of --jobs worker processes")
    return parser


def main(argv=None) -> int:
    """``aecourse grade``: see ``aecourse grade --help``."""
    parser = _parser()
    args = parser.parse_args(argv)
    course = Path(args.course_dir).resolve()
    if not (course / "nbgrader_config.py").is_file():
        parser.error(f"no nbgrader_config.py in {course} (use --course-dir)")
    try:
        limits = isolation.Limits(timeout=args.timeout, cpu=args.cpu, memory=args.memory,
                                  fsize=args.fsize, submission=args.submission_timeout
                                  or 30 * args.timeout)
    except ValueError as error:
        parser.error(str(error))
    config = load_config(course, args.db_url)
    source = Path(config["source_root"]) / args.assignment
    if not list(source.glob("*.ipynb")):
        parser.error(f"no source notebooks in {source}")
    from nbgrader.api import Gradebook, MissingEntry
    try:
        with Gradebook(config["db_url"], course_id=config["course_id"]) as gb:
            gb.find_assignment(args.assignment)
    except MissingEntry:
        parser.error(f"{args.assignment} is not in the gradebook ({config['db_url']}); run "
                     f"`aecourse release {args.assignment}` first.")
    config.update(source=str(source),
                  release=str(Path(config["release_root"]) / args.assignment),
                  nbgrader=late.course_config(course))
    if not isolation.is_root():
        print("aecourse grade: WARNING: not root: submissions run as separate processes with "
              "resource limits only, NOT isolated from the network, the gradebook or other "
              "files.", file=sys.stderr)
    jobs = args.jobs or os.cpu_count() or 1
    client = None
    if args.scheduler or args.cluster:  # connected first: the workers warm up meanwhile
        from aecourse.grader import cluster
        client = cluster.connect(args.scheduler or args.cluster, jobs)
    try:
        # guards (aecourse.grader.preflight): the source is the release, the reference earns all
        reference = tasks(args.assignment, config, [preflight.REFERENCE], limits)[0]
        if not preflight.check(config, args.assignment, reference,
                               allow_changed_source=args.allow_changed_source,
                               solution_check=not args.skip_solution_check, log=sys.stderr):
            return 1
        started = time.monotonic()
        todo = tasks(args.assignment, config, args.student, limits)
        if args.only_missing:
            from aecourse.grader.resume import graded_students
            done = graded_students(config, args.assignment)
            todo = [t for t in todo if t.student not in done]
            print(f"--only-missing: {len(done)} students already graded, {len(todo)} to grade")
        batch = (cluster.DaskBatch(todo, config, client=client) if client
                 else Batch(todo, config, jobs=jobs))
        batch.run()
    finally:
        if client:
            cluster.disconnect(client)
    report = Path(config["autograded"]) / f"aecourse_report_{args.assignment}.csv"
    batch.write_report(report)
    ownership.hand_back(config["course"])      # run as root: the files go back to the course
    print(batch.summary())
    print(f"{len(batch.results)} submissions graded in {time.monotonic() - started:.1f} s; "
          f"details in {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

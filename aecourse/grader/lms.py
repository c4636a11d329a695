"""The class list in, the grades out: a roster, a learning-management system (LMS) and nbgrader.

Three things an instructor needs around ``aecourse grade``:

- ``aecourse roster import students.csv`` puts every enrolled student into nbgrader's gradebook,
  so that a student who never submits still gets a row (nbgrader only adds submitters).
- ``aecourse export --format canvas|moodle|csv`` writes the *wide* gradebook an LMS imports: one
  row per student, one column per released assignment, the LMS's identifying columns first.
  A student who did not submit is *missing* (scored by the course's policy, 0 by default), which
  is not the same as a blank submission (submitted, scored 0).
- :class:`LmsCollector`, a ``nbgrader zip_collect`` plugin that reads the file names Canvas and
  Moodle give to downloaded submissions and files each under the student's roster id.

The roster CSV has nbgrader's student columns (``id`` required; ``first_name``, ``last_name``,
``email``, ``lms_user_id``) and, optionally, Canvas's ``sis_user_id``, ``sis_login_id`` and
``section``, which only the Canvas export uses (pass the same file with ``--roster``).
"""

import argparse
import csv
import os
import re
import sys
from dataclasses import dataclass

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import FileNameCollectorPlugin
from traitlets import Enum

from aecourse.grader.late import course_config

STUDENT_COLUMNS = ("id", "first_name", "last_name", "email", "lms_user_id")
CANVAS_COLUMNS = ("sis_user_id", "sis_login_id", "section")
FORMATS = ("canvas", "moodle", "csv")


# ----------------------------------------------------------------------------- the roster
def read_roster(path):
    """Read a roster CSV into a list of dicts keyed by the roster columns (missing ones ``""``).

    Raises ``ValueError`` for a file without an ``id`` column, an unknown column, an empty or a
    repeated id: a roster that silently drops or merges students is worse than none.
    """
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [name.strip() for name in reader.fieldnames or []]
        allowed = STUDENT_COLUMNS + CANVAS_COLUMNS
        if "id" not in header:
            raise ValueError(f"{path}: a roster needs an 'id' column; its columns are {header}")
        unknown = [name for name in header if name not in allowed]
        if unknown:
            raise ValueError(f"{path}: unknown roster columns {unknown}; "
                             f"expected some of {allowed}")
        rows, seen = [], set()
        for line, raw in enumerate(reader, start=2):
            row = {key: (raw.get(name) or "").strip()
                   for key, name in zip(header, reader.fieldnames, strict=True)}
            row = {name: row.get(name, "") for name in allowed}
            if not row["id"]:
                raise ValueError(f"{path}, line {line}: empty student id")
            if row["id"] in seen:
                raise ValueError(f"{path}, line {line}: student id {row['id']!r} appears twice")
            seen.add(row["id"])
            rows.append(row)
    return rows


def import_roster(gradebook, rows):
    """Create or update one gradebook student per roster row (nbgrader's own fields only)."""
    for row in rows:
        fields = {name: row[name] or None for name in STUDENT_COLUMNS[1:]}
        gradebook.update_or_create_student(row["id"], **fields)
    return len(rows)


# ----------------------------------------------------------------------------- the export
@dataclass(frozen=True)
class Grade:
    """One student's result on one assignment: ``status`` is submitted, late or missing."""

    score: float | None
    max_score: float
    status: str


def released_assignments(gradebook, exchange_outbound=None):
    """Names of the assignments handed out: released to the exchange, or with a submission.

    ``make release`` registers every assignment in the gradebook; an assignment never handed out
    must not appear in the export as a column of zeros.
    """
    names = []
    for assignment in gradebook.assignments:
        handed_out = exchange_outbound and os.path.isdir(
            os.path.join(exchange_outbound, assignment.name))
        if handed_out or assignment.submissions:
            names.append(assignment.name)
    return names


def grade_table(gradebook, assignments, *, missing_score=0.0):
    """``{student_id: {assignment: Grade}}`` for every gradebook student, late penalty applied.

    The score is nbgrader's own (``nbgrader export``): ``max(0, raw - late penalty)``. A student
    without a submission gets ``missing_score`` (``None`` leaves the LMS cell blank).
    """
    table = {}
    for student in gradebook.students:
        row = {}
        for name in assignments:
            max_score = gradebook.find_assignment(name).max_score
            try:
                submission = gradebook.find_submission(name, student.id)
            except MissingEntry:
                row[name] = Grade(missing_score, max_score, "missing")
                continue
            penalty = submission.late_submission_penalty or 0.0
            late = submission.total_seconds_late > 0
            score = max(0.0, submission.score - penalty)
            row[name] = Grade(score, max_score, "late" if late else "submitted")
        table[student.id] = row
    return table


def _number(value):
    return "" if value is None else f"{value:g}"


def _text(value):
    """A CSV cell a spreadsheet will not run as a formula (``=``, ``+``, ``-``, ``@`` first)."""
    value = "" if value is None else str(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_rows(fmt, gradebook, assignments, table, roster=None):
    """The rows (header first) of the wide export in ``fmt`` (``canvas``, ``moodle`` or ``csv``).

    - canvas: ``Student, ID, SIS User ID, SIS Login ID, Section`` then one column per assignment,
      and a ``Points Possible`` row, as in Canvas's own gradebook export (which it re-imports).
      ``ID`` is the student's ``lms_user_id`` (Canvas's user id); without a roster's
      ``sis_login_id`` the nbgrader id is used as the SIS Login ID.
    - moodle: ``ID number, Username, Email address, First name, Last name`` then one column per
      assignment; map ``Email address`` (or ``ID number``/``Username``) to the user on import.
    - csv: nbgrader's student fields, then per assignment its score and its status.
    """
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {FORMATS}, not {fmt!r}")
    extra = {row["id"]: row for row in roster or []}
    students = {student.id: student for student in gradebook.students}
    rows = []
    if fmt == "canvas":
        rows.append(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *assignments])
        maxima = [_number(gradebook.find_assignment(name).max_score) for name in assignments]
        rows.append(["Points Possible", "", "", "", "", *maxima])
    elif fmt == "moodle":
        rows.append(["ID number", "Username", "Email address", "First name", "Last name",
                     *assignments])
    else:
        status = [column for name in assignments for column in (name, f"{name} status")]
        rows.append([*STUDENT_COLUMNS, *status])
    for student_id in sorted(table):
        student, grades = students[student_id], table[student_id]
        names = [student.first_name or "", student.last_name or ""]
        if fmt == "canvas":
            more = extra.get(student_id, {})
            name = ", ".join(part for part in reversed(names) if part) or student_id
            ids = [name, student.lms_user_id, more.get("sis_user_id"),
                   more.get("sis_login_id") or student_id, more.get("section")]
            rows.append([*map(_text, ids), *(_number(grades[a].score) for a in assignments)])
        elif fmt == "moodle":
            ids = [student.lms_user_id, student_id, student.email, *names]
            rows.append([*map(_text, ids), *(_number(grades[a].score) for a in assignments)])
        else:
            ids = [student_id, *names, student.email, student.lms_user_id]
            cells = [c for a in assignments for c in (_number(grades[a].score), grades[a].status)]
            rows.append([*map(_text, ids), *cells])
    return rows


# ----------------------------------------------------------------------------- zip_collect
CANVAS_NAME = re.compile(  # doejane_LATE_12345_6789012_ps1-1.ipynb
    r"(?P<name>[^_/]+)(?:_LATE)?_(?P<lms_id>\d+)_(?P<submission>\d+)_(?P<file_id>[^/]+?)"
    r"(?:-\d+)?(?P<ext>\.[^./]+)$")
MOODLE_NAME = re.compile(  # Jane Doe_123_assignsubmission_file_ps1.ipynb (or a folder of that name)
    r"(?P<name>[^_/]+)_(?P<participant>\d+)_assignsubmission_file_?[_/](?P<file_id>[^/]+)$")


def _key(name):
    return re.sub(r"[^a-z0-9]", "", name.lower())


class LmsCollector(FileNameCollectorPlugin):
    """``nbgrader zip_collect`` plugin for Canvas and Moodle downloads, matched to the roster.

    Canvas names a file ``<lastfirst>[_LATE]_<canvas user id>_<submission id>_<file>[-N].<ext>``
    (``-N`` for a resubmission): the student is the roster row whose ``lms_user_id`` is that
    user id. Moodle names it ``<Full Name>_<participant id>_assignsubmission_file_<file>`` (the
    participant id is per assignment, not a user id): the student is the roster row whose
    ``first_name last_name`` is that full name, which must be unique. A file whose student is not
    in the gradebook is skipped with a warning (import the roster first).
    """

    lms = Enum(("canvas", "moodle"), default_value="canvas",
               help="Which LMS named the downloaded files.").tag(config=True)

    def _students(self):
        with Gradebook(self.parent.coursedir.db_url, self.parent.coursedir.course_id) as gb:
            return [(s.id, s.lms_user_id, f"{s.first_name or ''} {s.last_name or ''}")
                    for s in gb.students]

    def collect(self, submitted_file):
        if os.path.splitext(submitted_file)[1] not in self.valid_ext:
            return None
        pattern = CANVAS_NAME if self.lms == "canvas" else MOODLE_NAME
        match = pattern.search(submitted_file.replace(os.sep, "/"))
        if match is None:
            self.log.warning("Not a %s download name, skipped: %s", self.lms, submitted_file)
            return None
        if self.lms == "canvas":
            ids = [sid for sid, lms_id, _ in self._students() if lms_id == match["lms_id"]]
            file_id = match["file_id"] + match["ext"]
        else:
            ids = [sid for sid, _, name in self._students() if _key(name) == _key(match["name"])]
            file_id = match["file_id"]
        if len(ids) != 1:
            self.log.warning("%s: %d roster students match %r; skipped (aecourse roster import)",
                             submitted_file, len(ids), match["name"])
            return None
        return {"student_id": ids[0], "file_id": file_id}


# ----------------------------------------------------------------------------- commands
def _course(course_dir):
    # nbgrader creates a new gradebook by running the `alembic` command: find it next to this
    # Python even when its environment is not activated (`.venv/bin/python -m ...`).
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    config = course_config(course_dir)
    return config.CourseDirectory.db_url, config


def roster_main(argv=None):
    """``aecourse roster import students.csv [--course-dir DIR]``."""
    parser = argparse.ArgumentParser(prog="aecourse roster", description=roster_main.__doc__)
    parser.add_argument("action", choices=["import"])
    parser.add_argument("csv_file")
    parser.add_argument("--course-dir", default=".")
    args = parser.parse_args(argv)
    rows = read_roster(args.csv_file)
    db_url, _ = _course(args.course_dir)
    with Gradebook(db_url) as gb:
        count = import_roster(gb, rows)
        total = len(gb.students)
    print(f"roster: {count} students imported; the gradebook has {total}")
    return 0


def export_main(argv=None):
    """``aecourse export --format canvas|moodle|csv [--to FILE] [--assignment PS ...]``."""
    parser = argparse.ArgumentParser(prog="aecourse export", description=export_main.__doc__)
    parser.add_argument("--format", choices=FORMATS, default="csv")
    parser.add_argument("--to", help="output file (default: grades_<format>.csv)")
    parser.add_argument("--assignment", nargs="+", help="default: every released assignment")
    parser.add_argument("--missing-score", default="0",
                        help="score of a missing submission: a number, or 'blank'")
    parser.add_argument("--roster", help="the roster CSV, for Canvas's SIS columns and Section")
    parser.add_argument("--course-dir", default=".")
    args = parser.parse_args(argv)
    try:
        missing = None if args.missing_score == "blank" else float(args.missing_score)
    except ValueError:
        raise ValueError(f"--missing-score takes a number or 'blank', not "
                         f"{args.missing_score!r}") from None
    roster = read_roster(args.roster) if args.roster else None
    db_url, config = _course(args.course_dir)
    outbound = os.path.join(config.Exchange.root, config.CourseDirectory.course_id, "outbound") \
        if "root" in config.Exchange else None
    with Gradebook(db_url) as gb:
        assignments = args.assignment or released_assignments(gb, outbound)
        table = grade_table(gb, assignments, missing_score=missing)
        rows = export_rows(args.format, gb, assignments, table, roster)
    destination = args.to or f"grades_{args.format}.csv"
    with open(destination, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    missing_count = sum(g.status == "missing" for row in table.values() for g in row.values())
    print(f"export: {len(table)} students x {assignments} -> {destination} "
          f"({missing_count} missing submissions)", file=sys.stderr)
    return 0


def main(argv=None):
    """``python -m aecourse.grader.lms roster import FILE`` or ``... export [options]``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = {"roster": roster_main, "export": export_main}
    if not argv or argv[0] not in commands:
        raise SystemExit(f"usage: {{{','.join(commands)}}} ...; got {argv[:1]}")
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())

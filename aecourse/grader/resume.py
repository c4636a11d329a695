"""``aecourse grade PS --only-missing``: which students already have a complete result.

A class interrupted mid-way (the client stopped, a machine lost) is finished by running the
same command again with ``--only-missing``: a student is graded again unless the gradebook
already holds a result for exactly the submission in ``submitted/`` (same ``timestamp.txt``)
with every autograded test cell scored, and ``autograded/<student>/<ps>/`` exists. The single
writer commits one student at a time, so an interrupted run leaves each student either
complete or missing, never half-written.
"""

from __future__ import annotations

from pathlib import Path

from aecourse.grader.gradebook import read_timestamp

__all__ = ["graded_students"]


def graded_students(config: dict, assignment: str) -> set[str]:
    """Students whose current submission of ``assignment`` is completely graded."""
    from nbgrader.api import Gradebook, MissingEntry
    done = set()
    with Gradebook(config["db_url"], course_id=config["course_id"]) as gb:
        try:
            submissions = gb.find_assignment(assignment).submissions
        except MissingEntry:
            return done
        for submission in submissions:
            student = submission.student_id
            if not (Path(config["autograded"]) / student / assignment).is_dir():
                continue
            _, timestamp, _ = read_timestamp(Path(config["submitted"]) / student / assignment)
            if timestamp != submission.timestamp:
                continue                                  # submitted again since grading
            tests = [g for nb in submission.notebooks for g in nb.grades
                     if g.cell_type == "code"]
            if tests and all(g.auto_score is not None for g in tests):
                done.add(student)
    return done

"""``aecourse grade`` run by an ordinary user: one clear warning line, and the right grades.

Without root there are no namespaces to isolate a submission in; the grader must say so once
and still grade every student in a separate, resource-limited process. When the suite runs as
root (CI), the test creates a system user for the run and removes it afterwards; the course
is a copy owned by that user, and the test checks that the user can reach the virtual
environment and the library (every directory above them searchable), fixing what is not for
the length of the test. When the suite already runs unprivileged, it grades as itself.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
_spec = importlib.util.spec_from_file_location("hostile_corpus", HERE / "hostile" / "corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

# A small class: what an unprivileged run can still promise (points, time limits).
STUDENTS = ["honest", "honest_too", "blank", "infinite_loop", "deleted_answer_cell"]

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grader_unprivileged"),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]


def _searchable_by_others(paths) -> list[tuple[Path, int]]:
    """Give o+x to every directory above ``paths`` that lacks it; return what to restore."""
    changed = []
    for path in paths:
        for folder in [*reversed(Path(path).resolve().parents), Path(path).resolve()]:
            mode = folder.stat().st_mode
            if folder.is_dir() and not mode & stat.S_IXOTH:
                os.chmod(folder, mode | stat.S_IXOTH)
                changed.append((folder, mode))
    return changed


@pytest.fixture
def user():
    """(name, uid, gid, a private directory of theirs): a fresh system user, or ourselves
    when we are not root. Not pytest's ``tmp_path``: other pytest runs reset its parent to
    mode 700 at any moment."""
    work = Path(tempfile.mkdtemp(prefix="aecourse-unprivileged-"))
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        yield me.pw_name, me.pw_uid, me.pw_gid, work
        shutil.rmtree(work, ignore_errors=True)
        return
    name = f"aecg{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True)
    changed = []
    try:
        changed = _searchable_by_others([Path(sys.executable).parent, REPO / "aecourse", work])
        entry = pwd.getpwnam(name)
        os.chown(work, entry.pw_uid, entry.pw_gid)
        yield name, entry.pw_uid, entry.pw_gid, work
    finally:
        for folder, mode in reversed(changed):
            os.chmod(folder, mode)
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def test_an_unprivileged_user_gets_one_warning_and_the_right_grades(user):
    name, uid, gid, work = user
    course = corpus.make_course(work / "course")
    corpus.submit(course, {student: corpus.CASES[student] for student in STUDENTS})
    home = work / "home"
    home.mkdir()
    for path in [course, home, *course.rglob("*")]:
        os.chown(path, uid, gid, follow_symlinks=False)
    as_user = [] if os.geteuid() != 0 else [
        "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    aecourse = Path(sys.executable).with_name("aecourse")
    probe = subprocess.run([*as_user, sys.executable, "-c", "import aecourse, nbgrader"],
                           capture_output=True, text=True, env={"HOME": str(home)})
    assert probe.returncode == 0, f"{name} cannot use the environment: {probe.stderr[-2000:]}"
    env = {"HOME": str(home), "PATH": f"{aecourse.parent}:/usr/bin:/bin", "TQDM_DISABLE": "1",
           "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*as_user, str(aecourse), "grade", "hw", "--timeout", "5", "--jobs",
                           "2"], cwd=course, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    warnings = [line for line in output.splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1, warnings
    assert "root" in warnings[0].lower() or "isolat" in warnings[0].lower(), warnings[0]

    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="hostile") as gb:
        points = {s.student.id: sum(g.auto_score or 0 for nb in s.notebooks for g in nb.grades
                                    if g.name.startswith("test_"))
                  for s in gb.assignment_submissions("hw")}
    assert points == {student: corpus.CASES[student]["points"] for student in STUDENTS}

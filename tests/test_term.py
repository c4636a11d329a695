"""A term of the course: late penalties exactly as nbgrader's, files handed back after grading as
root, and one whole term end to end with real Unix users through nbgrader's exchange."""

import datetime
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from aecourse.grader import late, ownership

pytestmark = pytest.mark.xdist_group("term")

ROOT = Path(__file__).resolve().parents[1]
NBGRADER = [sys.executable, "-m", "nbgrader"]
BIN = os.path.dirname(sys.executable)  # nbgrader runs `alembic` to create a gradebook
DUE = datetime.datetime(2026, 3, 1, 12, 0)

SOLUTION = "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION"
TEST = "assert add(1, 2) == 3\n### BEGIN HIDDEN TESTS\nassert add(-1, 1) == 0\n### END HIDDEN TESTS"
POLICY = '''
from nbgrader.plugins import LateSubmissionPlugin


class HalfPerDay(LateSubmissionPlugin):
    """Half the score per started day late (more than the score after two days)."""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return score * 0.5 * -(-total_seconds_late // 86400)
'''


def cell(source, grade_id, *, solution=False, points=None):
    meta = {"grade_id": grade_id, "solution": solution, "grade": points is not None,
            "locked": not solution, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})


def tiny_course(path, extra_config=""):
    """A course with one assignment ``tiny`` (2 points), released, due ``DUE``."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", path)
    with open(path / "nbgrader_config.py", "a") as fh:
        fh.write("\n" + extra_config + "\n")
    (path / "late_policy.py").write_text(POLICY)
    nb = nbformat.v4.new_notebook(cells=[cell(SOLUTION, "add", solution=True),
                                         cell(TEST, "test_add", points=2)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    source = path / "solutions" / "tiny" / "tiny.ipynb"
    source.parent.mkdir(parents=True)
    nbformat.write(nb, source)
    run_nbgrader(path, "db", "assignment", "add", "tiny", f"--duedate={DUE.isoformat()}")
    run_nbgrader(path, "generate_assignment", "tiny")
    return path


def run_nbgrader(course, *args):
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(course / ".no-user-config"),
           "PYTHONPATH": str(course), "PATH": BIN + os.pathsep + os.environ["PATH"]}
    return subprocess.run([*NBGRADER, *args], cwd=course, env=env, check=True,
                          capture_output=True, text=True, timeout=300)


def submit(course, student, late_by, *, correct=True):
    released = nbformat.read(course / "exercises" / "tiny" / "tiny.ipynb", as_version=4)
    if correct:
        released.cells[0].source = "def add(a, b):\n    return a + b"
    folder = course / "submitted" / student / "tiny"
    folder.mkdir(parents=True)
    nbformat.write(released, folder / "tiny.ipynb")
    stamp = (DUE + late_by).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    (folder / "timestamp.txt").write_text(stamp)


LATE_BY = {"ontime": datetime.timedelta(minutes=-5), "hour": datetime.timedelta(hours=1),
           "days": datetime.timedelta(days=2, seconds=1), "wrong": datetime.timedelta(hours=3)}


@pytest.fixture(scope="module")
def tiny_submitted(tmp_path_factory):
    """``tiny`` released, and four submissions: on time, an hour late, two days late, wrong."""
    course = tiny_course(tmp_path_factory.mktemp("tiny") / "course")
    for student, late_by in LATE_BY.items():
        submit(course, student, late_by, correct=student != "wrong")
    return course


@pytest.mark.slow
@pytest.mark.parametrize("policy_config, expected", [
    ("c.LateSubmissionPlugin.penalty_method = 'zero'",
     {"ontime": None, "hour": 2.0, "days": 2.0, "wrong": 0.0}),
    ("c.AssignLatePenalties.plugin_class = 'late_policy.HalfPerDay'",
     {"ontime": None, "hour": 1.0, "days": 2.0, "wrong": 0.0}),
])
def test_late_penalty_is_the_one_nbgrader_autograde_assigns(
        tiny_submitted, tmp_path, monkeypatch, policy_config, expected):
    course = Path(shutil.copytree(tiny_submitted, tmp_path / "course"))
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write("\n" + policy_config + "\n")
    run_nbgrader(course, "autograde", "tiny")

    monkeypatch.syspath_prepend(str(course))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(course / ".no-user-config"))
    config = late.course_config(course)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        by_nbgrader = {s: gb.find_submission_notebook("tiny", "tiny", s).late_submission_penalty
                       for s in LATE_BY}
        for student in LATE_BY:
            gb.find_submission_notebook("tiny", "tiny", student).late_submission_penalty = 7.0
        gb.db.commit()
        ours = {s: late.apply_late_penalties(gb, "tiny", s, config) for s in LATE_BY}
        stored = {s: gb.find_submission_notebook("tiny", "tiny", s).late_submission_penalty
                  for s in LATE_BY}
    assert by_nbgrader == expected
    assert stored == by_nbgrader
    seconds = {s: LATE_BY[s].total_seconds() for s in LATE_BY}
    assert ours == {s: (max(0.0, seconds[s]), expected[s] or 0.0) for s in LATE_BY}


def test_late_penalty_of_an_on_time_notebook_is_none_whatever_the_policy(tmp_path):
    config = late.course_config(tmp_path)
    config.LateSubmissionPlugin.penalty_method = "zero"
    assert late.late_penalty(config, "alice", 5.0, 0.0) is None
    assert late.late_penalty(config, "alice", 5.0, 1.0) == 5.0


def test_course_config_makes_the_course_root_absolute_and_sets_the_exchange(monkeypatch):
    monkeypatch.chdir(ROOT / "book")
    monkeypatch.setenv("AECOURSE_EXCHANGE_ROOT", "/tmp/some-exchange")
    config = late.course_config(ROOT)
    assert config.CourseDirectory.root == str(ROOT)
    assert config.Exchange.root == "/tmp/some-exchange"
    assert config.CourseDirectory.db_url == f"sqlite:///{ROOT / 'gradebook.db'}"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_grading_as_root_hands_the_outputs_back_to_the_course_owner(tmp_path):
    course = tmp_path / "course"
    (course / "autograded" / "alice" / "ps1").mkdir(parents=True)
    (course / "autograded" / "alice" / "ps1" / "ps1.ipynb").write_text("{}")
    (course / "gradebook.db").write_text("")
    (course / "feedback").mkdir()
    os.symlink("/etc/hostname", course / "autograded" / "alice" / "link")
    owner = (4242, 4243)
    os.chown(course, *owner)
    before = os.stat("/etc/hostname")

    assert ownership.hand_back(course) == 7
    outputs = [course / "gradebook.db", course / "feedback", *(course / "autograded").rglob("*")]
    for entry in outputs:
        info = os.lstat(entry)
        assert (info.st_uid, info.st_gid) == owner, entry
    assert (os.stat("/etc/hostname").st_uid, os.stat("/etc/hostname").st_gid) == \
        (before.st_uid, before.st_gid)
    assert ownership.hand_back(course) == 0
    os.chown(course, 0, 0)
    assert ownership.hand_back(course) == 0


# ----------------------------------------------------------------------------- one whole term
WRITTEN = "Explain in one sentence what `add` computes."
TERM_CELLS = [
    (SOLUTION, "add", {"solution": True}),
    ("assert add(1, 2) == 3", "test_visible", {"points": 1}),
    ("### BEGIN HIDDEN TESTS\nassert add(-1, 1) == 0\nassert add(2.5, 0.5) == 3.0\n"
     "### END HIDDEN TESTS", "test_hidden", {"points": 2}),
]
WORK = {  # what each student writes: the function, the written answer (None: does nothing)
    "s1": ("def add(a, b):\n    return a + b", "S1-ANSWER: it returns the sum a + b."),
    "s2": ("def add(a, b):\n    return abs(a) + b", "S2-ANSWER: it adds numbers."),
    "s3": None,
}
PROBE = """
import json, os, sys
result = {}
for path in sys.argv[1:]:
    try:
        result[path] = sorted(os.listdir(path)) if os.path.isdir(path) else len(open(path).read())
    except OSError as error:
        result[path] = type(error).__name__
print(json.dumps(result))
"""


def term_course(course, users):
    """The instructor's course: the repository's config with the 'zero' late policy, ``tiny``."""
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write("\nc.LateSubmissionPlugin.penalty_method = 'zero'\n")
    cells = [cell(source, grade_id, **options) for source, grade_id, options in TERM_CELLS]
    answer = nbformat.v4.new_markdown_cell(WRITTEN + "\n\n### BEGIN SOLUTION\nThe sum.\n"
                                           "### END SOLUTION")
    answer.metadata["nbgrader"] = {"grade_id": "explain", "solution": True, "grade": True,
                                   "locked": False, "points": 2, "schema_version": 3}
    nb = nbformat.v4.new_notebook(cells=[*cells, answer])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    (course / "solutions" / "tiny").mkdir(parents=True)
    nbformat.write(nb, course / "solutions" / "tiny" / "tiny.ipynb")
    (course / "students.csv").write_text(
        "id,first_name,last_name,email,lms_user_id\n"
        + "".join(f"{users[s]},{s.upper()},Student,{s}@uni.edu,{100 + i}\n"
                  for i, s in enumerate(WORK)))


def do_work(path, work):
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source, nb.cells[-1].source = work
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def term():
    """One term with real Unix users: every step's result, in order (steps never raise)."""
    from unix_users import as_user, class_accounts, home, unavailable
    if unavailable():
        pytest.skip(unavailable())
    with class_accounts(["inst", "s1", "s2", "s3"]) as users:
        base = Path(users["base"])
        exchange = base / "exchange"
        subprocess.run(["sh", str(ROOT / "deploy" / "jupyterhub" / "setup_exchange.sh"),
                        str(exchange)], check=True, capture_output=True)
        env = {"AECOURSE_EXCHANGE_ROOT": str(exchange)}
        student_env = {**env, "JUPYTER_CONFIG_PATH": str(ROOT / "deploy/jupyterhub/student")}
        course = Path(home(users["inst"])) / "aecourse"
        term_course(course, users)
        subprocess.run(["chown", "-R", f"{users['inst']}:", str(course)], check=True)
        steps = {"users": users, "course": course, "exchange": exchange}

        def inst(step, *args):
            steps[step] = as_user(users["inst"], [sys.executable, *args], park=users["park"],
                                  cwd=course, env=env, check=False)

        def student(step, who, *args):
            steps[step, who] = as_user(users[who], [sys.executable, *args], check=False,
                                       park=users["park"], env=student_env)

        inst("generate", "-m", "nbgrader", "generate_assignment", "tiny")
        inst("roster", "-m", "aecourse.cli", "roster", "import", "students.csv")
        inst("release", "-m", "nbgrader", "release_assignment", "tiny")
        for who in WORK:
            student("fetch", who, "-m", "nbgrader", "fetch_assignment", "tiny")
        for who in ("s2", "s1"):  # s2 on time; the due date passes; s1 submits late
            do_work(Path(home(users[who])) / "tiny" / "tiny.ipynb", WORK[who])
            student("submit", who, "-m", "nbgrader", "submit", "tiny")
            time.sleep(1.1)
            if who == "s2":
                due = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
                time.sleep(1.1)
        steps["due"] = due
        inst("duedate", "-m", "nbgrader", "db", "assignment", "add", "tiny",
             f"--duedate={due.isoformat()} UTC")
        inst("collect", "-m", "nbgrader", "collect", "tiny")
        steps["grade"] = subprocess.run(  # as root, as `sudo make grade` does
            [os.path.join(BIN, "aecourse"), "grade", "tiny", "--course-dir", str(course),
             "--jobs", "2"], cwd=course, capture_output=True, text=True, timeout=600,
            env={**os.environ, **env, "PATH": BIN + os.pathsep + os.environ["PATH"]})
        inst("manual", "-c", MANUAL_GRADING, users["s1"], users["s2"])
        inst("feedback", "-m", "nbgrader", "generate_feedback", "tiny", "--force")
        inst("release_feedback", "-m", "nbgrader", "release_feedback", "tiny")
        for who in WORK:
            student("fetch_feedback", who, "-m", "nbgrader", "fetch_feedback", "tiny")
        inst("export", "-m", "aecourse.cli", "export", "--format", "canvas")
        for who in WORK:
            others = [w for w in WORK if w != who]
            paths = [exchange / "aecourse" / "inbound", exchange / "aecourse" / "feedback",
                     course / "solutions" / "tiny" / "tiny.ipynb",
                     course / "submitted" / others[0] / "tiny" / "tiny.ipynb",
                     Path(home(users[others[0]])) / "tiny"]
            student("probe", who, "-c", PROBE, *map(str, paths))
        student("rename", "s2", "-c", "import os, sys; os.rename(sys.argv[1], sys.argv[2])",
                str(exchange / "aecourse"), str(exchange / "fake"))
        yield steps


MANUAL_GRADING = """
import sys
from nbgrader.api import Gradebook
with Gradebook("sqlite:///gradebook.db") as gb:
    for student, points in zip(sys.argv[1:], (2.0, 0.5)):
        grade = gb.find_grade("explain", "tiny", "tiny", student)
        grade.manual_score = points
        grade.needs_manual_grade = False
    gb.db.commit()
"""


def ok(result):
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.mark.slow
def test_term_release_fetch_submit_collect_as_each_user(term):
    users, course = term["users"], term["course"]
    for step in ("generate", "roster", "release", "duedate", "collect"):
        ok(term[step])
    for who in WORK:
        ok(term["fetch", who])
    for who in ("s1", "s2"):
        ok(term["submit", who])
        stamp = (course / "submitted" / users[who] / "tiny" / "timestamp.txt").read_text()
        assert (course / "submitted" / users[who] / "tiny" / "tiny.ipynb").is_file()
        assert stamp
    assert not (course / "submitted" / users["s3"]).exists()


def scores(term):
    users = term["users"]
    with Gradebook(f"sqlite:///{term['course'] / 'gradebook.db'}") as gb:
        table = {}
        for who in ("s1", "s2"):
            sub = gb.find_submission("tiny", users[who])
            table[who] = {g.name: g.score for g in sub.notebooks[0].grades} | {
                "penalty": sub.notebooks[0].late_submission_penalty,
                "late": sub.total_seconds_late > 0}
        table["students"] = sorted(s.id for s in gb.students)
    return table


@pytest.mark.slow
def test_term_grades_every_part_and_the_late_penalty(term):
    ok(term["grade"])
    ok(term["manual"])
    table = scores(term)
    assert table["students"] == sorted(term["users"][w] for w in WORK)  # the roster
    assert table["s2"] == {"test_visible": 1.0, "test_hidden": 0.0, "explain": 0.5,
                           "penalty": None, "late": False}
    assert {k: table["s1"][k] for k in ("test_visible", "test_hidden", "explain", "late")} == \
        {"test_visible": 1.0, "test_hidden": 2.0, "explain": 2.0, "late": True}
    # nbgrader's 'zero' policy, applied when autograding: the score at that moment (3 points)
    assert table["s1"]["penalty"] == 3.0


@pytest.mark.slow
def test_term_grading_as_root_leaves_the_course_to_its_owner(term):
    ok(term["grade"])
    owner = os.stat(term["course"]).st_uid
    wrong = [str(p) for p in term["course"].rglob("*") if os.lstat(p).st_uid != owner]
    assert wrong == []


@pytest.mark.slow
def test_term_feedback_reaches_each_student_and_only_their_own(term):
    from unix_users import home
    ok(term["feedback"])
    ok(term["release_feedback"])
    users = term["users"]
    for who in WORK:
        ok(term["fetch_feedback", who])
        pages = list((Path(home(users[who])) / "tiny" / "feedback").rglob("*.html"))
        if WORK[who] is None:
            assert pages == []
            continue
        assert len(pages) == 1, pages
        text = pages[0].read_text()
        assert WORK[who][1].split(":")[0] in text
        assert all(WORK[o][1].split(":")[0] not in text for o in WORK if o != who and WORK[o])


@pytest.mark.slow
def test_term_export_has_every_student_with_the_late_penalty_and_the_missing_zero(term):
    ok(term["export"])
    rows = (term["course"] / "grades_canvas.csv").read_text().splitlines()
    users = term["users"]
    assert rows[:2] == ["Student,ID,SIS User ID,SIS Login ID,Section,tiny",
                        "Points Possible,,,,,5"]
    assert rows[2:] == [f'"Student, S1",100,,{users["s1"]},,2',
                        f'"Student, S2",101,,{users["s2"]},,1.5',
                        f'"Student, S3",102,,{users["s3"]},,0']


@pytest.mark.slow
def test_term_no_student_reads_another_submission_or_the_solutions(term):
    import json
    for who in WORK:
        seen = json.loads(ok(term["probe", who]).stdout)
        assert set(seen.values()) == {"PermissionError"}, (who, seen)
    # the sticky exchange: a student cannot move the course away to put a fake one in its place
    assert "PermissionError" in term["rename", "s2"].stderr
    assert (term["exchange"] / "aecourse" / "outbound" / "tiny").is_dir()


def test_make_passes_options_and_works_with_an_environment():
    def make(target, *args):
        env = {k: v for k, v in os.environ.items()        # as a shell runs it, not a sub-make
               if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
        return subprocess.run(["make", "--no-print-directory", "-n", target, *args], cwd=ROOT,
                              env=env, capture_output=True, text=True,
                              check=True).stdout.splitlines()

    assert make("grade", "ASSIGNMENT=ps1", "ARGS=--jobs 2 --student alice", "BIN=/opt/env/bin",
                "STAMP=") == ["/opt/env/bin/aecourse grade ps1 --jobs 2 --student alice"]
    assert make("grade", "ASSIGNMENT=ps1", "VENV=/opt/env")[-1].rstrip() == \
        "/opt/env/bin/aecourse grade ps1"
    assert make("release", "BIN=/opt/env/bin", "STAMP=") == ["/opt/env/bin/aecourse release"]


@pytest.mark.slow
def test_validate_shows_whole_messages_and_exits_0_even_on_failure(tmp_path):
    message = "expected the sum of a and b; " * 10  # 290 characters: more than nbgrader's 90
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    nb = nbformat.v4.new_notebook(cells=[cell(f"assert 1 == 2, {message!r}", "t", points=1)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "hw.ipynb")
    result = run_nbgrader(tmp_path, "validate", "hw.ipynb")  # check=True: exit status 0
    assert "VALIDATION FAILED ON 1 CELL(S)!" in result.stdout
    assert message.strip() in result.stdout


# ------------------------------------------------------------------ the guide is run by tests
# Every command of book/instructors.md (its bash blocks, and the `nbgrader ...`, `aecourse ...`
# and `make ...` it quotes) -> (test file, the test or fixture that runs it, words that call
# contains). A command added to the guide fails test_every_command_of_the_guide_is_run_by_a_test
# until a test runs it and is listed here.
GRADE_SYNOPSIS = ("aecourse grade ps1 [--student ID ...] [--jobs N] [--timeout S] "
                  "[--submission-timeout S] [--cpu S] [--memory MB] [--fsize MB] [--db-url URL] "
                  "[--course-dir DIR] [--allow-changed-source] [--skip-solution-check] "
                  "[--only-missing] [--scheduler ADDRESS | --cluster local]")
REGRADE = "test_regrading_gives_identical_grades_and_one_row_per_student_and_cell"
RUN_BY = {
    "sh deploy/jupyterhub/setup_exchange.sh /srv/nbgrader/exchange":
        ("test_hub.py", "hub", ["setup_exchange.sh"]),
    "groupadd aecourse-instructors": ("unix_users.py", "class_accounts", ["groupadd"]),
    "usermod -a -G aecourse-instructors <you>":
        ("unix_users.py", "class_accounts", ["usermod", "-a", "-G"]),
    "groupadd aecourse-students": ("unix_users.py", "class_accounts", ["groupadd"]),
    "usermod -a -G aecourse-students <each student>":
        ("unix_users.py", "class_accounts", ["usermod", "-a", "-G"]),
    "jupyterhub -f deploy/jupyterhub/jupyterhub_config.py":
        ("test_hub.py", "hub", ["jupyterhub", "-f", "jupyterhub_config.py"]),
    "aecourse roster import students.csv": ("test_term.py", "term", ["roster", "import"]),
    "make release": ("test_term.py", "test_make_passes_options_and_works_with_an_environment",
                     ["release"]),
    "aecourse release ps1": ("test_guards.py",
                             "test_a_change_recorded_with_aecourse_release_is_graded",
                             ["release"]),
    "nbgrader db assignment add ps1 --duedate=2026-03-01 23:59:00 UTC":
        ("test_term.py", "term", ["db", "assignment", "add", "--duedate"]),
    "nbgrader db student import students.csv":
        ("test_lms.py", "test_nbgrader_student_import_reads_the_roster", ["student", "import"]),
    "nbgrader release_assignment ps1": ("test_term.py", "term", ["release_assignment"]),
    "nbgrader fetch_assignment ps1": ("test_term.py", "term", ["fetch_assignment"]),
    "nbgrader submit ps1": ("test_term.py", "term", ["submit"]),
    "nbgrader collect ps1": ("test_term.py", "term", ["collect"]),
    "nbgrader zip_collect ps1": ("test_lms.py",
                                 "test_zip_collect_files_lms_download_names_under_roster_ids",
                                 ["zip_collect"]),
    "nbgrader zip_collect ps1 --LmsCollector.lms=moodle":
        ("test_lms.py", "test_zip_collect_files_lms_download_names_under_roster_ids",
         ["zip_collect", "--LmsCollector.lms=moodle"]),
    "make grade ASSIGNMENT=ps1 ARGS=--jobs 2 --student alice":
        ("test_term.py", "test_make_passes_options_and_works_with_an_environment",
         ["grade", "ASSIGNMENT=ps1", "ARGS=--jobs 2 --student alice"]),
    "make grade BIN=/usr/local/bin STAMP= ...":
        ("test_term.py", "test_make_passes_options_and_works_with_an_environment",
         ["grade", "BIN=", "STAMP="]),
    "make grade VENV=/opt/course-env ...":
        ("test_term.py", "test_make_passes_options_and_works_with_an_environment",
         ["grade", "VENV="]),
    "aecourse grade ps1 --student bob": ("test_autograde.py", REGRADE, ["--student"]),
    "aecourse grade ps1 --cluster local --jobs 2":
        ("test_grader_dask.py", "test_a_local_cluster_gives_the_hostile_cases_their_exact_scores",
         ["--cluster", "local", "--jobs"]),
    "aecourse grade ps1 --scheduler tcp://HOST:8786": (
        "test_grader_dask.py",
        "test_a_class_on_two_workers_survives_a_killed_worker_and_a_killed_client",
        ["--scheduler"]),
    "aecourse grade ps1 --scheduler tcp://HOST:8786 --only-missing": (
        "test_grader_dask.py",
        "test_a_class_on_two_workers_survives_a_killed_worker_and_a_killed_client",
        ["--scheduler", "--only-missing"]),
    "dask scheduler": ("test_grader_dask.py", "cluster", ["scheduler"]),
    "dask worker tcp://HOST:8786 --nthreads 1 --no-nanny --preload aecourse.grader.cluster":
        ("test_grader_dask.py", "cluster", ["worker", "--nthreads", "1", "--no-nanny",
                                            "--preload", "aecourse.grader.cluster"]),
    "python -m aecourse.grader.slurm --jobs 20 --memory 4GiB --walltime 02:00:00 --queue normal":
        ("test_grader_dask.py", "test_slurm_workers_are_single_threaded_warm_and_without_a_nanny",
         ["aecourse.grader.slurm", "--jobs", "--memory", "--walltime", "--queue"]),
    "python -m aecourse.grader.slurm --print-job-script --queue normal":
        ("test_grader_dask.py", "test_slurm_workers_are_single_threaded_warm_and_without_a_nanny",
         ["aecourse.grader.slurm", "--print-job-script", "--queue"]),
    "aecourse grade ps1 --db-url postgresql+psycopg2://...":
        ("test_autograde_postgres.py", "test_db_url_flag_overrides_the_config", ["--db-url"]),
    "nbgrader autograde ps1": ("test_term.py",
                               "test_late_penalty_is_the_one_nbgrader_autograde_assigns",
                               ["autograde"]),
    "nbgrader generate_feedback ps1 --force": ("test_term.py", "term",
                                               ["generate_feedback", "--force"]),
    "nbgrader generate_feedback ps1": (
        "test_guards.py",
        "test_a_regrade_keeps_manual_grades_of_unchanged_answers_and_drops_stale_feedback",
        ["generate_feedback"]),
    "nbgrader release_feedback ps1": ("test_term.py", "term", ["release_feedback"]),
    "nbgrader fetch_feedback ps1": ("test_term.py", "term", ["fetch_feedback"]),
    "aecourse export --format canvas --roster students.csv":
        ("test_lms.py", "test_canvas_export_has_canvas_import_columns_and_only_released_"
                        "assignments", ["--format", "canvas", "--roster"]),
    "aecourse export --format moodle": (
        "test_lms.py",
        "test_moodle_export_has_an_identifier_column_per_user_field_and_a_column_per_item",
        ["--format", "moodle"]),
    "aecourse export --format csv": ("test_lms.py", "test_csv_export_marks_missing_distinct_"
                                                    "from_blank_and_late", ["--format", "csv"]),
    "aecourse release": ("test_guards.py",
                         "test_a_change_recorded_with_aecourse_release_is_graded", ["release"]),
    "nbgrader autograde": ("test_term.py",
                           "test_late_penalty_is_the_one_nbgrader_autograde_assigns",
                           ["autograde"]),
    "nbgrader generate_assignment": ("test_term.py", "tiny_course", ["generate_assignment"]),
    "nbgrader validate": ("test_term.py",
                          "test_validate_shows_whole_messages_and_exits_0_even_on_failure",
                          ["validate"]),
    GRADE_SYNOPSIS: ("test_guards.py", "test_the_guides_grade_synopsis_is_the_commands_options",
                     ["_parser", "--help"]),
    "make book": ("test_publish.py", "student_tree", ["make", "publish"]),  # the same target
}
NOT_RUN = {  # quoted by the guide, deliberately not run, and why
    "make test": "it runs this test suite",
    "nbgrader formgrade": "the guide says it does not exist in nbgrader 0.9",
    "aecourse roster": "a name, not a command (see aecourse roster import)",
    "aecourse export": "a name, not a command (see aecourse export --format)",
    "aecourse grade": "a name, not a command (see aecourse grade ps1 ...)",
}


def guide_commands():
    """The commands of book/instructors.md: bash blocks (one per line, split at &&, comments
    removed) and the quoted `nbgrader ...`, `aecourse ...` and `make ...` spans."""
    import re
    import shlex
    text = (ROOT / "book" / "instructors.md").read_text()
    found = set()
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            for command in line.split("#")[0].split("&&"):
                if command.strip():
                    found.add(" ".join(shlex.split(command)))
    for span in re.findall(r"`((?:nbgrader|aecourse|make) [^`]*)`", text):
        found.add(" ".join(span.split()))
    return found


def test_every_command_of_the_guide_is_run_by_a_test():
    import ast
    commands = guide_commands()
    assert commands - set(RUN_BY) - set(NOT_RUN) == set(), "commands no test runs"
    assert set(RUN_BY) - commands == set(), "RUN_BY lists commands the guide no longer has"
    functions, wanted = {}, {(file, name) for file, name, _ in RUN_BY.values()}
    for file in {file for file, _ in wanted}:       # (file, name) -> its source
        text = Path(__file__).with_name(file).read_text()
        lines = text.splitlines()
        functions |= {(file, n.name): "\n".join(lines[n.lineno - 1:n.end_lineno])
                      for n in ast.walk(ast.parse(text))
                      if isinstance(n, ast.FunctionDef) and (file, n.name) in wanted}
    for command, (file, name, words) in RUN_BY.items():
        assert (file, name) in functions, f"{command!r}: no {name} in {file}"
        body = functions[file, name]
        missing = [w for w in words if w not in body]
        assert missing == [], f"{command!r}: {file}::{name} does not contain {missing}"

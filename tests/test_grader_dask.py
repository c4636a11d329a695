"""Grading on a Dask cluster: a real ``dask scheduler`` and two ``dask worker`` processes on
loopback, the ps1 class of the end-to-end test graded through them.

One class, one story (each step costs real grading time, so nothing is graded twice):

0. both workers are warm (their fork servers started) before the first submission;
1. ``aecourse grade ps1 --scheduler ...``; as soon as worker ``w0`` is in the middle of a
   submission it is killed (SIGKILL, by its pid); after some students are written the client
   itself is killed (an instructor's laptop closed mid-class);
2. ``aecourse grade ps1 --scheduler ... --only-missing`` grades exactly the students left;
3. every student then has exactly the scores local ``aecourse grade`` gives them (the
   expectations of tests/test_assignments.py: the solution all, the blank none, each bug all
   but its cells), one submission and one row per test cell in the report; a student whose
   code kills its own process loses that part only (with a reason) and takes no worker down.
"""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from assignments import harness
from nbgrader.api import Gradebook

distributed = pytest.importorskip("distributed")

PS = "ps1"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1",
       "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
KILLER = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"


def _wait(condition, seconds, what):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(address, {worker name: Popen}) of a scheduler and two single-threaded workers."""
    tmp = tmp_path_factory.mktemp("dask")
    log = open(tmp / "dask.log", "w")
    started = []

    def start(*args):
        process = subprocess.Popen([str(BIN / "dask"), *args], stdout=log, stderr=log,
                                   env=ENV, cwd=tmp)
        started.append(process)
        return process

    start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
          "--scheduler-file", str(tmp / "scheduler.json"))
    _wait(lambda: (tmp / "scheduler.json").exists(), 60, "the scheduler")
    import json
    address = _wait(lambda: json.loads((tmp / "scheduler.json").read_text() or "{}")
                    .get("address"), 30, "the scheduler's address")
    # w0 as the instructors' guide starts a worker (warm from the start), w1 without the preload
    preload = {"w0": ["--preload", "aecourse.grader.cluster"], "w1": []}
    workers = {name: start("worker", address, "--nthreads", "1", "--no-nanny", "--name", name,
                           "--no-dashboard", "--host", "127.0.0.1", *preload[name])
               for name in ("w0", "w1")}
    with distributed.Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=120)
    yield address, workers
    for process in started:
        process.kill()
        process.wait()
    log.close()


def _processing(address, name):
    """Is worker ``name`` in the middle of a task?"""
    with distributed.Client(address, timeout="30s") as client:
        info = client.scheduler_info(n_workers=-1)["workers"]
        busy = client.processing()
    return any(w.get("name") == name and busy.get(a) for a, w in info.items())


def _is_warm(pid: int) -> bool:
    """Has the worker ``pid`` imported torch, itself or in a child (its fork server, as root)?"""
    def parent(stat: Path) -> int:
        try:
            return int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return -1
    family = [pid] + [int(s.parent.name) for s in Path("/proc").glob("[0-9]*/stat")
                      if parent(s) == pid]
    def has_torch(p: int) -> bool:
        try:
            return "libtorch" in Path(f"/proc/{p}/maps").read_text()
        except OSError:
            return False
    return any(map(has_torch, family))


def test_workers_are_warm_before_their_first_submission(cluster):
    """A worker started with ``--preload aecourse.grader.cluster`` warms up as it joins; one
    started without it, when ``aecourse grade`` connects. Either way the first submission does
    not wait for torch, scikit-learn and nbgrader to import."""
    from aecourse.grader import cluster as on_dask
    address, workers = cluster
    _wait(lambda: _is_warm(workers["w0"].pid), 120, "w0 to import torch (--preload)")
    assert not _is_warm(workers["w1"].pid), "w1 has torch before anything asked for it"
    on_dask.disconnect(on_dask.connect(address, 2))
    _wait(lambda: _is_warm(workers["w1"].pid), 120, "w1 to import torch (warmed on connect)")


def test_a_class_on_two_workers_survives_a_killed_worker_and_a_killed_client(cluster, tmp_path):
    address, workers = cluster
    source = harness.read(harness.SOLUTIONS / PS / f"{PS}.ipynb")
    release = harness.read(harness.EXERCISES / PS / f"{PS}.ipynb")
    points = harness.test_cells(source)
    students = {"solution": harness.submission(release, source), "blank": release}
    expected = {"solution": set(), "blank": set(points)}
    for bug in harness.load_bugs(PS, source)[:2]:
        students[f"bug-{bug['name']}"] = harness.submission(release, source, bug)
        expected[f"bug-{bug['name']}"] = set(bug["loses"])
    killer = harness.submission(release, source)
    first = next(c for c in killer.cells if c.metadata.get("nbgrader", {}).get("solution")
                 and c.cell_type == "code")
    first.source = KILLER + first.source
    students["kills-its-sandbox"] = killer
    course = harness.new_course(tmp_path / "course")
    harness.generate(course, PS)
    for student, nb in students.items():
        folder = course / "submitted" / student / PS
        folder.mkdir(parents=True)
        nbformat.write(nb, str(folder / f"{PS}.ipynb"))
    grade = [str(BIN / "aecourse"), "grade", PS, "--scheduler", address, "--timeout",
             str(harness.TIMEOUT), "--skip-solution-check"]   # the class has the solution

    # 1. a worker dies mid-submission, then the client dies mid-class
    client = subprocess.Popen(grade, cwd=course, env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    _wait(lambda: _processing(address, "w0"), 180, "worker w0 to start a submission")
    workers["w0"].send_signal(signal.SIGKILL)
    workers["w0"].wait()
    written = course / "autograded"
    _wait(lambda: written.is_dir() and len(list(written.iterdir())) >= 3 or client.poll(),
          600, "three students written")
    client.kill()
    first_output = client.communicate()[0]
    before = {p.name for p in written.iterdir()}

    # 2. the same command with --only-missing finishes the class
    done = subprocess.run([*grade, "--only-missing"], cwd=course, env=ENV, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    again = [line for line in done.stdout.splitlines() if line.startswith("--only-missing")]
    assert again, done.stdout
    graded_before = int(again[0].split(":")[1].split()[0])
    assert 1 <= graded_before <= len(before), (again, sorted(before))
    assert f"{len(students) - graded_before} submissions graded" in done.stdout, done.stdout

    # 3. every student exactly once, with local grading's scores
    assert workers["w1"].poll() is None, "the remaining worker died"
    with open(written / f"aecourse_report_{PS}.csv", newline="", encoding="utf-8") as handle:
        report = list(csv.DictReader(handle))
    problems = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert len(gb.find_assignment(PS).submissions) == len(students)
        for student in students:
            cells = {g.name: g.score
                     for g in gb.find_submission_notebook(PS, PS, student).grades}
            if student == "kills-its-sandbox":       # loses the killed cell's part only
                earned = sum(cells[k] for k in points)
                if not 0 < earned < sum(points.values()):
                    problems.append(f"{student}: scored {cells}")
                continue
            want = {k: (0.0 if k in expected[student] else p) for k, p in points.items()}
            if {k: cells.get(k) for k in points} != want:
                problems.append(f"{student}: {cells} != {want}")
    for student in set(students) - before:
        rows = [r["cell"] for r in report if r["student"] == student]
        if sorted(rows) != sorted(points):
            problems.append(f"{student}: report rows {rows}")
    killed = [r for r in report if r["student"] == "kills-its-sandbox"]
    if "kills-its-sandbox" not in before and not any(r["reason"] for r in killed):
        problems.append(f"kills-its-sandbox: no reason in {killed}")
    assert not problems, "\n".join(problems) + "\n" + first_output[-2000:] + done.stdout[-2000:]


def test_a_local_cluster_gives_the_hostile_cases_their_exact_scores(tmp_path):
    """``--cluster local``: sandbox-killing, memory-eating and unreadable submissions cost
    their own points only (the scores tests/test_autograde.py asserts locally)."""
    from hostile import corpus
    cases = {name: corpus.CASES[name] for name in
             ("honest", "blank", "kernel_kill", "kernel_exit", "memory_bomb", "invalid_json")}
    course = corpus.make_course(tmp_path / "course")
    corpus.submit(course, cases)
    done = subprocess.run([str(BIN / "aecourse"), "grade", "hw", "--cluster", "local",
                           "--jobs", "2", "--timeout", "5", "--memory", "1024",
                           "--skip-solution-check"], cwd=course, env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="hostile") as gb:
        got = {s: sum(g.auto_score or 0.0 for nb in gb.find_submission("hw", s).notebooks
                      for g in nb.grades if g.cell_type == "code") for s in cases}
    assert got == {s: case["points"] for s, case in cases.items()}, done.stdout[-3000:]


def test_slurm_workers_are_single_threaded_warm_and_without_a_nanny():
    """The guide's Slurm deployment (no Slurm here): the job script ``aecourse.grader.slurm``
    would submit starts one worker set up as the grader needs, in this environment."""
    pytest.importorskip("dask_jobqueue")
    slurm = [sys.executable, "-m", "aecourse.grader.slurm"]
    done = subprocess.run([*slurm, "--print-job-script", "--queue", "normal", "--memory", "2GiB",
                           "--walltime", "01:00:00"], env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    script = done.stdout
    for directive in ("#SBATCH -p normal", "#SBATCH --mem=2G", "#SBATCH -t 01:00:00",
                      "#SBATCH --cpus-per-task=1", "export OMP_NUM_THREADS=1"):
        assert directive in script, script
    worker = next(line for line in script.splitlines() if "dask_worker" in line)
    assert worker.startswith(f"{sys.executable} -m distributed.cli.dask_worker tcp://"), worker
    for option in ("--nthreads 1", "--no-nanny", "--preload aecourse.grader.cluster"):
        assert option in worker, worker
    wrong = subprocess.run([*slurm, "--jobs", "0"], env=ENV, capture_output=True, text=True,
                           timeout=120)
    assert wrong.returncode == 2 and "--jobs must be at least 1, got 0" in wrong.stderr

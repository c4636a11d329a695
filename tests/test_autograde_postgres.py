"""``aecourse grade`` with the gradebook on a real PostgreSQL server (nbgrader's ``db_url``).

The fixture starts a private PostgreSQL cluster (``initdb`` + ``pg_ctl``, as user ``postgres``
when we are root) on a free loopback port in a temporary directory, installing the Debian package
``postgresql`` first when it is missing and we may. Where that is impossible the tests are skipped
with a loud reason.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("test_autograde_helpers", HERE / "test_autograde.py")
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)
corpus = helpers.corpus

STUDENTS = ["honest", "blank", "kernel_exit", "invalid_json", "redefines_helpers",
            "surrogate_written", "metadata_string"]       # text and metadata PostgreSQL must take
pytestmark = pytest.mark.xdist_group("grader_postgres")     # one server for the module


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _install_postgres() -> str | None:
    """Install the Debian package; the reason when impossible."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "PostgreSQL is not installed and we are not root on a Debian system"
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if done.returncode != 0:
            return f"`{' '.join(command)}` failed: {done.stderr[-500:]}"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    bindir = _pg_bin()
    if bindir is None:
        reason = _install_postgres()
        bindir = _pg_bin()
        if bindir is None:
            message = f"SKIPPING the PostgreSQL gradebook tests: {reason or 'no pg_ctl found'}"
            warnings.warn(message, stacklevel=2)
            print(message, file=sys.stderr)
            pytest.skip(message)
    home = Path(tempfile.mkdtemp(prefix="aecourse-pg-"))
    os.chmod(home, 0o755)
    as_user = []
    if os.geteuid() == 0:                        # initdb refuses to run as root
        import pwd
        user = pwd.getpwnam("postgres")
        shutil.chown(home, user.pw_uid, user.pw_gid)
        as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                   "--clear-groups"]
    port, data = _free_port(), home / "data"
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust"], check=True, capture_output=True, env=env)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(home / "log"),
                    "-w", "-o", f"-p {port} -k {home} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, env=env)
    try:
        import psycopg2
        connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres",
                                      dbname="postgres")
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE gradebook")
        connection.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/gradebook"  # psycopg2-binary
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, env=env)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_grades_land_in_postgres_once_and_survive_a_regrade(tmp_path, postgres_url):
    course = corpus.make_course(tmp_path / "course", db_url=postgres_url)
    corpus.submit(course, {name: corpus.CASES[name] for name in STUDENTS})
    assert not (course / "gradebook.db").exists()           # really not SQLite
    helpers.grade(course)
    scores, rows = helpers.gradebook_scores(postgres_url)
    assert {s: helpers.auto_points(c) for s, c in scores.items()} == \
        {s: corpus.CASES[s]["points"] for s in STUDENTS}
    helpers.grade(course, "hw", "--student", "honest", "kernel_exit")
    again, rows = helpers.gradebook_scores(postgres_url)
    assert again == scores
    assert set(rows.values()) == {1} and len(rows) == len(STUDENTS) * 4


@pytest.mark.slow
def test_db_url_flag_overrides_the_config(tmp_path, postgres_url):
    course = corpus.make_course(tmp_path / "course2", db_url=postgres_url)
    corpus.submit(course, {"honest_too": corpus.CASES["honest_too"]})
    config = (course / "nbgrader_config.py").read_text()
    (course / "nbgrader_config.py").write_text(config.replace(postgres_url, "sqlite:///nowhere.db"))
    helpers.grade(course, "hw", "--db-url", postgres_url)
    scores, _ = helpers.gradebook_scores(postgres_url)
    assert helpers.auto_points(scores["honest_too"]) == 6
    assert not (course / "nowhere.db").exists()

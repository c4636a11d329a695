"""``aecourse grade <assignment>``: grade a class, isolated, in parallel, into nbgrader's gradebook.

Plain ``nbgrader autograde`` runs a submission's code and the tests in one kernel: the student's
code can then change how the tests behave. Here the two are split:

* The student's code (the answers, matched by nbgrader ``grade_id``) runs in a worker process
  (:mod:`aecourse.sandbox`) started under ``unshare``: no network, its own PID and mount
  namespaces (the gradebook, ``solutions/``, ``submitted/``, ``autograded/``, ``tests/`` ...
  hidden, the course tree read-only, a private ``/tmp``), its own unprivileged user, and limits
  on CPU time, memory, file size and processes; a wall-clock limit per cell is enforced here.
* The test cells are taken from the **source** notebook and run in *this* (trusted) process. Every
  name the reference solution defines (``pca_svd``, ...) is a proxy: calling it sends the
  arguments to the worker, which runs the student's function and answers with plain data only
  (JSON + ``.npy``, never pickle). So edited or deleted test cells, redefined assertion helpers,
  trace hooks or patched builtins cannot change a verdict.
* After each test's verdict is fixed, the same test also runs inside the worker, as nbgrader
  would run it; when that *in-kernel* verdict differs, the submission is flagged.

Verdicts go to nbgrader's gradebook (``db_url`` of ``nbgrader_config.py``: SQLite or PostgreSQL)
by this one process, with an ``autograded/<student>/<ps>/`` notebook per submission, so that
``nbgrader generate_feedback``, ``export`` and formgrader keep working.

Chapter: instructor guide (grading a whole class).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import io
import os
import pickle
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import types
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from aecourse import sandbox

__all__ = ["Limits", "grade_submission", "grade_assignment", "main"]

MAX_NOTEBOOK_BYTES = 20 * 2**20
OUTPUT_CAP = 64 * 1024
VISIBLE_IN_SANDBOX = {".venv", "aecourse", "aecourse.egg-info", "exercises", "pyproject.toml",
                      "README.md", "book"}


class Limits:
    """Resource limits of one worker: wall seconds per cell, CPU seconds, memory MB, file MB."""

    def __init__(self, timeout=60.0, cpu=600, memory=4096, fsize=64, restarts=3):
        self.timeout, self.cpu, self.memory, self.fsize = timeout, cpu, memory, fsize
        self.restarts = restarts


class WorkerDied(RuntimeError):
    """The student's process stopped (timeout, memory, crash, exit) during a request."""


class StudentError(RuntimeError):
    """The student's code raised; the message carries its own traceback."""


# ---------------------------------------------------------------- the worker, seen from here
def _isolation_available() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") and shutil.which("setpriv") is not None


def _mount_script(hidden: list[Path], course: Path) -> str:
    """Shell commands run as root inside the new mount namespace, before dropping to the user."""
    lines = ["set -e", "mount --make-rprivate /",
             f"mount --bind {shlex.quote(str(course))} {shlex.quote(str(course))}",
             f"mount -o remount,bind,ro {shlex.quote(str(course))}"]
    for path in hidden:
        q = shlex.quote(str(path))
        if path.is_dir():
            lines.append(f"mount -t tmpfs -o size=4k,mode=000 none {q}")
        elif path.exists():
            lines.append(f"mount --bind /dev/null {q}")
    tmps = [t for t in ("/tmp", "/var/tmp", "/dev/shm", "/run") if os.path.isdir(t)]
    # The course, the Python environment and the aecourse package may live under one of them
    # (a CI checkout in /tmp, say) and would vanish with it: park each (with its hidden
    # submounts) on /mnt, then move it back into the new, empty /tmp, read-only.
    keep = sorted({course.resolve(), Path(sys.prefix).resolve(),
                   Path(__file__).resolve().parents[1]})
    keep = [k for k in keep if not any(k != o and k.is_relative_to(o) for o in keep)]
    parked = [k for k in keep if any(k.is_relative_to(t) for t in tmps)]
    if parked:
        lines += ["mkdir -p /mnt", "mount -t tmpfs -o size=4k none /mnt"]
    for i, path in enumerate(parked):
        lines += [f"mkdir /mnt/{i}", f"mount --rbind {shlex.quote(str(path))} /mnt/{i}"]
    for tmp in tmps:
        lines.append(f"mount -t tmpfs -o size=256m,mode=1777 none {tmp}")
    for i, path in enumerate(parked):
        q = shlex.quote(str(path))
        lines += [f"mkdir -p {q}", f"mount --move /mnt/{i} {q}", f"mount -o remount,bind,ro {q}"]
    # the scratch copy (this shell's cwd, hidden by the new /tmp) comes back as /tmp/work
    lines += ["mkdir /tmp/work", "mount --bind /proc/1/cwd /tmp/work", "cd /tmp/work"]
    return "\n".join(lines)


class Session:
    """One submission's worker process and the request/answer loop with it."""

    def __init__(self, scratch: Path, hidden: list[Path], course: Path, limits: Limits, uid: int):
        self.scratch, self.hidden, self.course, self.limits, self.uid = (
            scratch, hidden, course, limits, uid)
        self.isolated = _isolation_available()
        self.proc = None
        self.generation = 0
        self.restarts = 0
        self.replay: list[dict] = []       # setup and answer cells run so far (for a restart)
        self.output = bytearray()
        self.callbacks: dict[int, object] = {}
        self.death = None

    # -- process life
    def _limits(self):
        import resource
        memory = self.limits.memory * 2**20
        for kind, value in [(resource.RLIMIT_CPU, self.limits.cpu),
                            (resource.RLIMIT_DATA, memory),      # heap + anonymous maps (Linux)
                            (resource.RLIMIT_FSIZE, self.limits.fsize * 2**20),
                            (resource.RLIMIT_NPROC, 512), (resource.RLIMIT_CORE, 0)]:
            resource.setrlimit(kind, (value, value))

    def start(self) -> None:
        request_r, self.request_w = os.pipe()
        self.answer_r, answer_w = os.pipe()
        python = [sys.executable, "-m", "aecourse.sandbox", str(request_r), str(answer_w)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp/work",
               "MPLBACKEND": "Agg", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        if self.isolated:
            user = [f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                    "--no-new-privs"]
            # not `exec`: the shell stays PID 1 of the namespace, so the worker can be signalled
            script = _mount_script(self.hidden, self.course) + "\nsetpriv " + " ".join(
                shlex.quote(a) for a in user + python)
            command = ["unshare", "--net", "--mount", "--pid", "--ipc", "--uts", "--fork",
                       "--kill-child", "--mount-proc", "sh", "-c", script]
        else:
            env["HOME"] = str(self.scratch)
            command = python
        self.proc = subprocess.Popen(
            command, cwd=self.scratch, env=env, pass_fds=(request_r, answer_w),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=self._limits, start_new_session=True)
        os.close(request_r)
        os.close(answer_w)
        self.generation += 1
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()

    def _drain(self, stream) -> None:
        """Keep the first OUTPUT_CAP bytes of the student's output; discard the rest (floods)."""
        while chunk := stream.read1(1 << 16):
            if len(self.output) < OUTPUT_CAP:
                self.output += chunk[:OUTPUT_CAP - len(self.output)]

    def kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for fd in (self.request_w, self.answer_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError, WorkerDied):
                self._write(pickle.dumps({"op": "quit"}), time.monotonic() + 2)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)
        self.kill()

    def _died(self, what: str, timed_out: bool = False) -> WorkerDied:
        status = self.proc.poll() if self.proc else None
        if status is None and not timed_out:
            with contextlib.suppress(subprocess.TimeoutExpired):
                status = self.proc.wait(timeout=2)
        self.kill()
        if timed_out:
            reason = (f"your code was stopped after {self.limits.timeout:g} s of wall-clock time "
                      f"in {what} (an endless loop, or far too slow)")
        elif status is not None and (status < 0 or status > 128):
            number = -status if status < 0 else status - 128
            name = signal.Signals(number).name if number in signal.valid_signals() else number
            reason = (f"your code's process was killed by signal {name} in {what} (over its CPU "
                      f"time of {self.limits.cpu} s or memory of {self.limits.memory} MB, "
                      "or it killed itself)")
        else:
            reason = f"your code ended its Python process (exit status {status}) in {what}"
        self.death = reason
        return WorkerDied(reason)

    # -- messages
    def _write(self, data: bytes, deadline: float) -> None:
        view = memoryview(struct.pack("<Q", len(data)) + data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self.request_w], [], left)[1]:
                raise TimeoutError
            view = view[os.write(self.request_w, view[:1 << 16]):]

    def _reader(self, deadline: float):
        def read(fd, n):
            chunks, left = [], n
            while left:
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                    raise TimeoutError
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    raise sandbox.ProtocolError("closed")
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        return read

    def _pickle(self, message: dict) -> bytes:
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.persistent_id = self._reference
        pickler.dump(message)
        return buffer.getvalue()

    def _reference(self, obj):
        if isinstance(obj, Remote):
            session, reference, generation = object.__getattribute__(obj, "_where")
            if generation != self.generation and reference[0] == "handle":
                raise StudentError("an object your code returned was lost when your code "
                                   "was restarted after a crash")
            return reference
        if isinstance(obj, types.FunctionType) and not _importable(obj):
            # defined in a test (or a lambda in a library): the worker calls it back here
            number = len(self.callbacks) + 1
            self.callbacks[number] = obj
            return ("callback", number)
        return None

    def ensure_running(self, what: str) -> None:
        if self.proc is not None:
            return
        if self.death and self.restarts >= self.limits.restarts:
            raise WorkerDied(f"{self.death}; not restarted again (too many restarts)")
        self.restarts += bool(self.death)
        self.start()
        for message in self.replay:
            header, _ = self._exchange(message, f"restoring cell {message['cell']}")

    def _exchange(self, message: dict, what: str):
        deadline = time.monotonic() + self.limits.timeout
        try:
            self._write(self._pickle(message), deadline)
            while True:
                header, payloads = sandbox.recv_data(self.answer_r, self._reader(deadline))
                if header.get("op") != "callback":
                    return header, payloads
                self._answer_callback(header, payloads, deadline)
        except TimeoutError:
            raise self._died(what, timed_out=True) from None
        except (sandbox.ProtocolError, OSError, struct.error):
            raise self._died(what) from None

    def _answer_callback(self, header, payloads, deadline) -> None:
        function = self.callbacks[int(header["id"])]
        args, kwargs = sandbox.decode(header["args"], payloads, self.make_handle)
        try:
            reply = {"ok": True, "value": function(*args, **kwargs)}
        except Exception as error:  # noqa: BLE001  (reported to the student's code)
            reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        self._write(self._pickle(reply), deadline)

    def make_handle(self, number: int, is_callable: bool, type_name: str):
        return Remote(self, ("handle", number), type_name)

    def request(self, message: dict, what: str):
        """Send one request (starting the worker when needed); the decoded value or raise."""
        self.ensure_running(what)
        header, payloads = self._exchange(message, what)
        if not header.get("ok"):
            error = header.get("error", {})
            raise StudentError(f"{error.get('type', 'Error')}: {error.get('message', '')}\n"
                               f"{error.get('traceback', '')}")
        if "value" in header:
            return sandbox.decode(header["value"], payloads, self.make_handle)
        return header, payloads


def _importable(function) -> bool:
    """Whether pickle can send ``function`` by reference (module + qualified name)."""
    target = sys.modules.get(function.__module__)
    for part in function.__qualname__.split("."):
        target = getattr(target, part, None)
    return target is function


TEST_MODULE = "__aecourse_test__"


class Remote:
    """A student object living in the worker: a function they wrote, or a non-plain result."""

    def __init__(self, session: Session, reference: tuple, type_name: str = "function"):
        object.__setattr__(self, "_where", (session, reference, session.generation))
        object.__setattr__(self, "_type", type_name)

    def _ask(self, op: str, **fields):
        session, reference, _ = object.__getattribute__(self, "_where")
        message = {"op": op, "target": reference, **fields, **_context(session)}
        return session.request(message, f"a call of {reference[1]!r}")

    def __call__(self, *args, **kwargs):
        return self._ask("call", args=args, kwargs=kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __getitem__(self, key):
        return self._ask("getitem", key=key)

    def __len__(self):
        return self._ask("len")

    def __iter__(self):
        return iter(self._ask("list"))

    def __repr__(self):
        return f"<student {object.__getattribute__(self, '_type')}>"


_GRADED = re.compile(r"while your (.*) is graded")
_CURRENT: dict = {}


def _context(session: Session) -> dict:
    """What the trusted test currently has in force, to apply around a forwarded call."""
    from aecourse import grading
    disabled = []
    for func, (_, tokens) in list(grading._ACTIVE.items()):
        if tokens:
            match = _GRADED.search(tokens[-1][0])
            disabled.append((f"{func.__module__}.{func.__qualname__}",
                             match.group(1) if match else "function"))
    namespace, installed = _CURRENT.get("namespace", {}), _CURRENT.get("installed", {})
    overrides = {name: namespace[name] for name in installed
                 if name in namespace and namespace[name] is not installed[name]}
    return {"disabled": disabled, "overrides": overrides}


# ---------------------------------------------------------------- notebooks: plan and answers
def _meta(cell) -> dict:
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def _kind(cell) -> str:
    """'test', 'answer' (student code), 'written' (student text), 'setup' (other code) or 'text'."""
    meta = _meta(cell)
    if meta.get("solution"):
        return "answer" if cell.cell_type == "code" else "written"
    if meta.get("grade") and cell.cell_type == "code":
        return "test"
    return "setup" if cell.cell_type == "code" else "text"


def _defined_names(source: str) -> set[str]:
    """Top-level names a reference answer binds (def, class, assignment, import)."""
    names: set[str] = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return names
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def read_submission(path: Path, source_nb):
    """The student's answers by grade_id, and notes on what was wrong with the file.

    Returns ``(answers, notes, fatal)``: ``answers`` maps grade_id -> source for answer cells found
    with the right cell type; ``fatal`` is a reason when nothing can be graded (no file, bad JSON).
    """
    import nbformat
    if not path.is_file():
        return {}, [], f"the notebook {path.name} is missing from the submission"
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        return {}, [], f"{path.name} is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB"
    try:
        with warnings_ignored():
            nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        cells = list(nb.cells)
    except Exception as error:  # noqa: BLE001  (any unreadable file is the student's)
        return {}, [], f"{path.name} is not a valid notebook ({type(error).__name__}: {error})"
    expected = {_meta(c)["grade_id"]: c for c in source_nb.cells if _meta(c).get("grade_id")}
    seen, answers, notes = [], {}, []
    for cell in cells:
        if not isinstance(cell, dict) or not isinstance(cell.get("source", ""), str):
            continue
        grade_id = _meta(cell).get("grade_id")
        if grade_id not in expected:
            continue
        seen.append(grade_id)
        reference = expected[grade_id]
        if _kind(reference) in ("answer", "written"):
            if cell.get("cell_type") != reference.cell_type:
                notes.append(f"answer cell {grade_id!r} was changed to a {cell.get('cell_type')} "
                             "cell: graded as empty")
            elif grade_id not in answers:
                answers[grade_id] = cell.get("source", "")
        elif _kind(reference) == "test" and _strip_hidden(cell.get("source", "")) != \
                _strip_hidden(reference.source):
            notes.append(f"test cell {grade_id!r} was edited (ignored: tests come from the source)")
    for grade_id, reference in expected.items():
        if grade_id not in seen:
            notes.append(f"{_kind(reference)} cell {grade_id!r} was deleted"
                         + (" (graded as empty)" if _kind(reference) in ("answer", "written")
                            else " (ignored: tests come from the source)"))
    order = [g for g in seen if g in expected]
    if order != [g for g in expected if g in order]:
        notes.append("cells were reordered (answers matched by grade_id, run in source order)")
    return answers, notes, None


@contextlib.contextmanager
def warnings_ignored():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)


def _strip_hidden(source: str) -> str:
    return _HIDDEN.sub("", source).strip()


# ---------------------------------------------------------------- grading one notebook
def _run_trusted(code: str, namespace: dict, name: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(code, f"<{name}>", "exec"), namespace)  # noqa: S102  (instructor's code)


def _failure(error: BaseException) -> str:
    if isinstance(error, (WorkerDied, StudentError)):
        return str(error)
    return f"{type(error).__name__}: {error}"


def grade_notebook(source_nb, answers: dict, session: Session, *, compare: bool = True):
    """Run one notebook: answers in the worker, tests here. Returns a list of cell results."""
    student_names = set()
    for cell in source_nb.cells:
        if _kind(cell) == "answer":
            student_names |= _defined_names(cell.source)
    namespace = {"__name__": TEST_MODULE}
    installed: dict = {}
    _CURRENT.update(namespace=namespace, installed=installed)
    results = []
    for cell in source_nb.cells:
        kind, meta = _kind(cell), _meta(cell)
        grade_id = meta.get("grade_id", "")
        if kind == "setup":
            with contextlib.suppress(Exception):
                _run_trusted(cell.source, namespace, f"setup {grade_id}")
            _worker_exec(session, cell.source, grade_id or "setup", [], replay=True)
        elif kind == "answer":
            code = answers.get(grade_id, "")
            header = _worker_exec(session, code, grade_id, sorted(student_names), replay=True)
            for name in student_names:
                namespace.pop(name, None)
                installed.pop(name, None)
            for name, tree in (header or {}).get("names", {}).items():
                value = (Remote(session, ("global", name)) if tree.get("t") == "callable"
                         else sandbox.decode(tree, header["_payloads"], session.make_handle))
                namespace[name] = installed[name] = value
            error = (header or {}).get("error") or {}
            results.append({"grade_id": grade_id, "kind": kind,
                            "error": f"{error.get('type')}: {error.get('message')}"
                            if error else (session.death if header is None else None)})
        elif kind == "written":
            results.append({"grade_id": grade_id, "kind": kind})
        elif kind == "test":
            points = float(meta.get("points", 0))
            try:
                _run_trusted(cell.source, namespace, f"test {grade_id}")
                passed, reason = True, None
            except BaseException as error:  # noqa: BLE001  (SystemExit from a test is a failure)
                passed, reason = False, _failure(error)
            in_kernel = None
            if compare and session.proc is not None:
                header = _worker_exec(session, cell.source, grade_id, [], replay=False)
                in_kernel = bool(header and header.get("ok"))
            results.append({"grade_id": grade_id, "kind": kind, "points": points if passed else 0.0,
                            "max_points": points, "passed": passed, "reason": reason,
                            "in_kernel": in_kernel})
    _CURRENT.clear()
    return results


def _worker_exec(session: Session, code: str, cell: str, names: list, *, replay: bool):
    """Run code in the worker; the answer header (with '_payloads'), or None if it died."""
    message = {"op": "exec", "cell": cell, "code": code, "names": names}
    try:
        session.ensure_running(f"cell {cell!r}")
        header, payloads = session._exchange(message, f"cell {cell!r}")
    except WorkerDied:
        return None
    if replay:
        session.replay.append(message)
    header["_payloads"] = payloads
    return header


# ---------------------------------------------------------------- one submission (pool process)
def _error_output(reason: str) -> dict:
    import nbformat
    return nbformat.v4.new_output("error", ename="GradingFailure", evalue=reason.split("\n")[0],
                                  traceback=reason.split("\n"))


def _autograded_notebook(source_nb, release_nb, answers: dict, results: list):
    """The source notebook with the student's answers, and the isolated verdicts as outputs."""
    import copy

    import nbformat
    release = {_meta(c).get("grade_id"): c for c in release_nb.cells if _meta(c).get("grade_id")}
    by_id = {r["grade_id"]: r for r in results}
    nb = copy.deepcopy(source_nb)
    for cell in nb.cells:
        grade_id = _meta(cell).get("grade_id")
        if grade_id in release:                       # release metadata carries the checksums
            cell.metadata["nbgrader"] = copy.deepcopy(release[grade_id].metadata["nbgrader"])
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if _kind(cell) in ("answer", "written"):
            cell.source = answers.get(grade_id, release[grade_id].source if grade_id in release
                                      else "")
        result = by_id.get(grade_id, {})
        if result.get("kind") == "test" and not result["passed"]:
            cell.outputs = [_error_output(result["reason"] or "failed")]
        elif result.get("kind") == "answer" and result.get("error"):
            cell.outputs = [_error_output(result["error"])]
    return nbformat.writes(nb)


def grade_submission(task: dict) -> dict:
    """Grade one student's submission of one assignment (all its notebooks). Plain-data result."""
    import nbformat
    started = time.monotonic()
    course, student, ps = Path(task["course"]), task["student"], task["assignment"]
    limits = Limits(**task["limits"])
    submitted = Path(task["submitted"]) / student / ps
    scratch_root = Path(tempfile.mkdtemp(prefix="aecourse-grade-"))
    os.chmod(scratch_root, 0o711)
    uid = 60000 + os.getpid() % 5000
    result = {"student": student, "assignment": ps, "notebooks": {}, "flags": [], "notes": [],
              "isolated": _isolation_available(), "output": ""}
    try:
        for source_path in sorted(Path(task["source"]).glob("*.ipynb")):
            name = source_path.stem
            source_nb = nbformat.read(source_path, as_version=4)
            release_path = Path(task["release"]) / source_path.name
            release_nb = (nbformat.read(release_path, as_version=4) if release_path.is_file()
                          else source_nb)
            answers, notes, fatal = read_submission(submitted / source_path.name, source_nb)
            result["notes"] += [f"{name}: {note}" for note in notes]
            if fatal:
                results = [{"grade_id": _meta(c)["grade_id"], "kind": "test", "passed": False,
                            "points": 0.0, "max_points": float(_meta(c).get("points", 0)),
                            "reason": fatal, "in_kernel": None}
                           for c in source_nb.cells if _kind(c) == "test"]
                result["notes"].append(f"{name}: {fatal}")
                result["notebooks"][name] = {"cells": results, "answers": {}, "missing": True,
                                             "autograded": None}
                continue
            scratch = scratch_root / name
            shutil.copytree(submitted, scratch, ignore=shutil.ignore_patterns("*.ipynb"),
                            dirs_exist_ok=True) if submitted.is_dir() else scratch.mkdir()
            for path in [scratch, *scratch.rglob("*")]:
                os.chown(path, uid, uid)
            os.chmod(scratch, 0o700)
            session = Session(scratch, [Path(p) for p in task["hidden"]],
                              course, limits, uid)
            try:
                results = grade_notebook(source_nb, answers, session, compare=task["compare"])
            finally:
                session.close()
                result["output"] += session.output.decode("utf-8", "replace")
            for r in results:
                if r["kind"] == "test" and r["in_kernel"] is not None \
                        and r["in_kernel"] != r["passed"]:
                    verdict = "passes" if r["in_kernel"] else "fails"
                    result["flags"].append(f"{r['grade_id']}: {verdict} inside the student's "
                                           "kernel, not when isolated (isolated verdict counts)")
            result["notebooks"][name] = {"cells": results, "answers": answers, "missing": False,
                                         "autograded": _autograded_notebook(
                                             source_nb, release_nb, answers, results)}
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)
    result["seconds"] = time.monotonic() - started
    return result


# ---------------------------------------------------------------- the one writer
def write_result(result: dict, config: dict) -> None:
    """Write the autograded notebooks and replace this student's scores in the gradebook."""
    import nbformat
    from nbgrader.api import Gradebook
    student, ps = result["student"], result["assignment"]
    folder = Path(config["autograded"]) / student / ps
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    submitted = Path(config["submitted"]) / student / ps
    timestamp = None
    if (submitted / "timestamp.txt").is_file():
        shutil.copy(submitted / "timestamp.txt", folder / "timestamp.txt")
        timestamp = (submitted / "timestamp.txt").read_text().strip() or None
    with Gradebook(config["db_url"], course_id=config["course_id"]) as gb, warnings_ignored():
        gb.update_or_create_student(student)
        gb.update_or_create_submission(ps, student, **({"timestamp": timestamp} if timestamp
                                                       else {}))
        for name, notebook in result["notebooks"].items():
            if notebook["autograded"] is not None:
                (folder / f"{name}.ipynb").write_text(notebook["autograded"], encoding="utf-8")
            source = nbformat.read(Path(config["source"]) / f"{name}.ipynb", as_version=4)
            release_path = Path(config["release"]) / f"{name}.ipynb"
            release = {_meta(c).get("grade_id"): c for c in
                       (nbformat.read(release_path, as_version=4).cells
                        if release_path.is_file() else [])}
            by_id = {r["grade_id"]: r for r in notebook["cells"]}
            for cell in source.cells:
                kind, grade_id = _kind(cell), _meta(cell).get("grade_id")
                if not grade_id:
                    continue
                answer = notebook["answers"].get(grade_id)
                stub = release[grade_id].source if grade_id in release else None
                empty = answer is None or answer.strip() == (stub or "").strip()
                if kind in ("answer", "written"):
                    comment = gb.find_comment(grade_id, name, ps, student)
                    comment.auto_comment = "No response." if empty else None
                if not _meta(cell).get("grade"):
                    continue
                grade = gb.find_grade(grade_id, name, ps, student)
                if kind == "test":
                    grade.auto_score = by_id.get(grade_id, {}).get("points", 0.0)
                else:                                   # written / manually graded answers
                    grade.auto_score = 0.0 if empty else None
                grade.needs_manual_grade = (grade.manual_score is not None
                                            or grade.auto_score is None)
            flagged = bool(result["flags"])
            gb.find_submission_notebook(name, ps, student).flagged = flagged
        gb.db.commit()


# ---------------------------------------------------------------- the batch
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


def _hidden_paths(config: dict) -> list[str]:
    """What the worker must not see: everything in the course root but the library and release,
    the gradebook file, and the grading folders wherever they are."""
    root = Path(config["course"])
    hidden = {p for p in root.iterdir() if p.name not in VISIBLE_IN_SANDBOX}
    for key in ("source_root", "submitted", "autograded", "feedback"):
        hidden.add(Path(config[key]))
    if config["db_url"].startswith("sqlite:///"):
        hidden.add(Path(config["db_url"][len("sqlite:///"):]).resolve())
    return sorted(str(p) for p in hidden if p.exists())


def grade_assignment(assignment: str, config: dict, *, students=None, jobs=None, limits=None,
                     compare=True, progress=True) -> list[dict]:
    """Grade every (or the named) submission of ``assignment``; write them; return the results."""
    from nbgrader.api import Gradebook, MissingEntry
    source = Path(config["source_root"]) / assignment
    if not list(source.glob("*.ipynb")):
        raise SystemExit(f"aecourse grade: no source notebooks in {source}")
    try:
        with Gradebook(config["db_url"], course_id=config["course_id"]) as gb:
            gb.find_assignment(assignment)
    except MissingEntry:
        raise SystemExit(  # noqa: B904  (a message, not a crash)
            f"aecourse grade: {assignment} is not in the gradebook "
            f"({config['db_url']}); run `aecourse release {assignment}` first.")
    config = {**config, "source": str(source),
              "release": str(Path(config["release_root"]) / assignment)}
    submitted = Path(config["submitted"])
    found = sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir()) \
        if submitted.is_dir() else []
    students = list(students) if students else found
    limits = limits or Limits()
    base = {"course": config["course"], "assignment": assignment, "source": config["source"],
            "release": config["release"], "submitted": config["submitted"],
            "limits": vars(limits), "hidden": _hidden_paths(config), "compare": compare}
    tasks = [{**base, "student": s} for s in students]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks) or 1))
    from tqdm.auto import tqdm
    bar = tqdm(total=len(tasks), desc=f"grading {assignment}", unit="submission",
               disable=not progress or None)
    results = []
    if jobs == 1:
        outcomes = (grade_submission(t) for t in tasks)
    else:
        import multiprocessing
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("forkserver"))
        outcomes = (f.result() for f in as_completed([pool.submit(grade_submission, t)
                                                      for t in tasks]))
    try:
        for result in outcomes:                      # the one writer: this loop
            write_result(result, config)
            results.append(result)
            bar.update()
    finally:
        bar.close()
        if jobs > 1:
            pool.shutdown(cancel_futures=True)
    results.sort(key=lambda r: r["student"])
    return results


def summary(results: list[dict]) -> str:
    """A fixed-width table: student, points, max, flags, reasons."""
    rows = [("student", "points", "max", "flags", "reasons")]
    for r in results:
        cells = [c for nb in r["notebooks"].values() for c in nb["cells"] if c["kind"] == "test"]
        reasons = [f"{c['grade_id']}: {c['reason'].splitlines()[0][:70]}" for c in cells
                   if not c["passed"] and c["reason"]]
        rows.append((r["student"], f"{sum(c['points'] for c in cells):g}",
                     f"{sum(c['max_points'] for c in cells):g}", str(len(r["flags"])),
                     "; ".join(reasons[:2]) + (" ..." if len(reasons) > 2 else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
             for row in rows]
    return "\n".join(lines)


def write_report(results: list[dict], path: Path) -> None:
    """One CSV row per (student, graded cell), with reasons, flags and notes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["student", "notebook", "cell", "points", "max_points", "reason",
                      "in_kernel_passed", "flags", "notes"])
        for r in results:
            for name, nb in r["notebooks"].items():
                for c in nb["cells"]:
                    if c["kind"] == "test":
                        out.writerow([r["student"], name, c["grade_id"], c["points"],
                                      c["max_points"], (c["reason"] or "")[:500], c["in_kernel"],
                                      " | ".join(r["flags"]), " | ".join(r["notes"])])


def main(argv=None) -> int:
    """``aecourse grade``: see ``aecourse grade --help``."""
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
    parser.add_argument("--cpu", type=int, default=600,
                        help="CPU seconds per submission (default 600)")
    parser.add_argument("--memory", type=int, default=4096,
                        help="memory limit per submission in MB (default 4096)")
    parser.add_argument("--db-url", help="gradebook URL (default: nbgrader_config.py's db_url, "
                                         "else sqlite:///<course>/gradebook.db)")
    parser.add_argument("--course-dir", default=".", help="course directory (with "
                                                           "nbgrader_config.py; default: .)")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the in-kernel re-run of each test (faster; no tamper flags)")
    args = parser.parse_args(argv)
    course = Path(args.course_dir).resolve()
    if not (course / "nbgrader_config.py").is_file():
        parser.error(f"no nbgrader_config.py in {course} (use --course-dir)")
    config = load_config(course, args.db_url)
    limits = Limits(timeout=args.timeout, cpu=args.cpu, memory=args.memory)
    if not _isolation_available():
        print("aecourse grade: WARNING: not root or no unshare/setpriv: submissions run with "
              "resource limits and a scratch directory only, NOT isolated from the network, "
              "the gradebook or other files.", file=sys.stderr)
    started = time.monotonic()
    results = grade_assignment(args.assignment, config, students=args.student, jobs=args.jobs,
                               limits=limits, compare=not args.no_compare)
    report = Path(config["autograded"]) / f"aecourse_report_{args.assignment}.csv"
    write_report(results, report)
    print(summary(results))
    for r in results:
        for line in r["flags"] + r["notes"]:
            print(f"  {r['student']}: {line}")
    print(f"{len(results)} submissions graded in {time.monotonic() - started:.1f} s; "
          f"details in {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

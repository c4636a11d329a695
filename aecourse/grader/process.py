"""Starting, watching and stopping one confined worker process.

:func:`spawn` forks. The child closes every descriptor but its channel and output pipe, clears
its environment, is confined (:func:`aecourse.grader.isolation.isolate`) and then serves
(:func:`aecourse.grader.worker.serve`) in the forked interpreter, which has numpy, torch and
aecourse already imported, or, for a restart after a crash, ``exec``\\ s a fresh
``python -m aecourse.grader.worker`` (the forking process holds the tests by then).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from aecourse.grader import isolation
from aecourse.grader.protocol import Channel

__all__ = ["Spawn", "WorkerProcess", "spawn"]

OUTPUT_CAP = 64 * 1024
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp/work", "MPLBACKEND": "Agg",
       "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8", "NBGRADER_EXECUTION": "autograde"}


@dataclass(frozen=True)
class Spawn:
    """Everything needed to start a worker: the mount plan (None: no root), the submission's
    files, the work directory, the worker's uid, limits and cgroup name."""

    plan: list | None
    files: list
    work: Path
    uid: int | None
    limits: isolation.Limits
    cgroup: str | None = None


@dataclass
class WorkerProcess:
    """A running worker: its pid, the channel to it, and its (capped) output."""

    pid: int
    channel: Channel
    output_fd: int
    output: bytearray = field(default_factory=bytearray)
    status: int | None = None

    def drain(self) -> None:
        """Keep the first OUTPUT_CAP bytes the worker prints; discard the rest (floods)."""
        while True:
            try:
                chunk = os.read(self.output_fd, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            if len(self.output) < OUTPUT_CAP:
                self.output += chunk[:OUTPUT_CAP - len(self.output)]

    def kill(self) -> int | None:
        """Stop the worker (its whole PID namespace dies with it); its exit status."""
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                self.status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        for fd in (self.channel.read_fd, self.channel.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        return self.status

    def wait(self, seconds: float) -> int | None:
        """The exit status if the worker ends within ``seconds``, else None."""
        import time
        end = time.monotonic() + seconds
        while self.status is None and time.monotonic() < end:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.01)
        return self.status


def _child(spec: Spawn, request_r: int, answer_w: int, output_w: int, fresh: bool,
           namespace: dict | None) -> None:
    os.dup2(output_w, 1)
    os.dup2(output_w, 2)
    keep = {0, 1, 2, request_r, answer_w}
    for fd in map(int, os.listdir("/proc/self/fd")):
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
    os.setsid()
    os.environ.clear()
    os.environ.update(ENV if spec.plan is not None else {**ENV, "HOME": str(spec.work)})
    isolation.isolate(plan=spec.plan, files=spec.files, work=spec.work, uid=spec.uid,
                      limits=spec.limits, cgroup=spec.cgroup)
    if fresh:
        os.set_inheritable(request_r, True)
        os.set_inheritable(answer_w, True)
        os.execve(sys.executable, [sys.executable, "-m", "aecourse.grader.worker",
                                   str(request_r), str(answer_w)], dict(os.environ))
    from aecourse.grader.worker import serve
    os._exit(serve(request_r, answer_w, namespace))


def spawn(spec: Spawn, *, fresh: bool = False, namespace: dict | None = None) -> WorkerProcess:
    """Fork a confined worker (``fresh``: a new interpreter, for restarts) whose student
    namespace starts as (a copy, by fork, of) ``namespace``: the release's setup, run once."""
    request_r, request_w = os.pipe()
    answer_r, answer_w = os.pipe()
    output_r, output_w = os.pipe()
    pid = os.fork()
    if pid == 0:                                       # the child never returns
        try:
            _child(spec, request_r, answer_w, output_w, fresh, namespace)
        except BaseException:  # noqa: BLE001
            with contextlib.suppress(BaseException):
                os.write(2, traceback.format_exc().encode()[-4000:])
        os._exit(70)
    for fd in (request_r, answer_w, output_w):
        os.close(fd)
    worker = WorkerProcess(pid, Channel(answer_r, request_w,
                                        max_arrays=spec.limits.answer_mb * 2**20), output_r)
    threading.Thread(target=worker.drain, daemon=True).start()
    return worker

"""Grading a class on a Dask cluster: ``aecourse grade PS --scheduler tcp://HOST:8786``.

Each submission is one Dask task. On a worker, :func:`grade_on_worker` grades it exactly as
``aecourse grade`` does on one machine (a fresh, isolated process from that worker's
forkserver; a process that dies or overruns costs that student only) and returns the
:class:`~aecourse.grader.run.SubmissionResult`: plain data. The client that submitted the
tasks stays the **single writer**: it writes each result into the gradebook as it arrives
(:class:`DaskBatch` is a :class:`~aecourse.grader.batch.Batch` whose processes run elsewhere).

Faults. A worker that dies in the middle of a submission (killed, its machine lost) loses
nothing: the scheduler runs that task again on another worker (up to Dask's
``distributed.scheduler.allowed-failures``, 3 by default, then the student gets 0 with the
reason). A submission that kills its own sandbox only ends its own process, as locally.

What a worker needs (see the instructors' guide): the same Python environment as the client
(``aecourse[grader]``, with ``distributed``), the course directory at the same absolute path
(a shared filesystem: the tasks carry paths, not files) and, for isolation, root. Start
workers with one thread each, and so that they may start the per-submission processes:
without a nanny, or with ``DASK_DISTRIBUTED__WORKER__DAEMON=False`` (a nanny's worker is a
daemon process by default, and daemons may not have children)::

    dask scheduler
    dask worker tcp://HOST:8786 --nthreads 1 --no-nanny --preload aecourse.grader.cluster

Warm workers. ``--preload aecourse.grader.cluster`` runs :func:`dask_setup` as the worker
starts: its fork server imports torch, scikit-learn and nbgrader then, once per worker life,
not during the first submission of each class. Workers started without it are warmed by the
client as it connects (:func:`connect`), before it checks the course.

Nothing here is imported unless ``--scheduler``/``--cluster`` is given.
"""

from __future__ import annotations

import fcntl
import functools
import os
import sys
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path

from aecourse.grader.batch import Batch, failed
from aecourse.grader.run import SubmissionResult, Task

__all__ = ["DaskBatch", "connect", "dask_setup", "disconnect", "grade_on_worker", "warm", "SLOTS"]

SLOTS = range(2000, 4000)   # worker slots (unprivileged uids) of Dask workers on one machine


@functools.cache
def _machine_slot() -> int:
    """A worker slot no other grading process on this machine holds (held until exit).

    A local ``aecourse grade --jobs N`` uses slots 0..N-1; Dask workers take the first free
    slot of :data:`SLOTS`, found by an exclusive lock on a file per slot, so that two workers
    on one machine never run two students under the same uid.
    """
    folder = Path(tempfile.gettempdir()) / "aecourse-grader-slots"
    folder.mkdir(mode=0o700, exist_ok=True)
    for slot in SLOTS:
        handle = os.open(folder / str(slot), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            continue
        return slot                     # the descriptor stays open: the lock lives with us
    raise RuntimeError(f"no free grading slot in {SLOTS} on this machine")


def warm() -> None:
    """Start this process's fork server now (it imports the preload while we go on); a
    second call does nothing."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    from aecourse.grader import batch, lean
    lean.lighten()
    batch.start_processes()


def dask_setup(worker=None) -> None:
    """``dask worker ... --preload aecourse.grader.cluster``: warm this worker as it starts."""
    warm()


def connect(scheduler: str, jobs: int):
    """A Dask client of ``scheduler`` (an address, or ``"local"``: a ``LocalCluster`` of
    ``jobs`` single-threaded worker processes), each of whose workers is warm."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler != "local":
        client = Client(scheduler, timeout="30s")
        client.run(warm)        # workers started without the preload; a no-op on warm ones
        return client
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               dashboard_address=None, preload=[__name__])
    return Client(cluster)


def disconnect(client) -> None:
    """Close ``client``, and its ``LocalCluster`` if :func:`connect` started one."""
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()


def grade_on_worker(task: Task) -> SubmissionResult:
    """Grade one submission on this Dask worker, isolated as ``aecourse grade`` does locally."""
    warm()                  # at once on a warm worker; a worker that joined late warms here
    batch = Batch([replace(task, slot=_machine_slot())], {}, jobs=1, progress=False, write=False)
    return batch.run()[0]


class DaskBatch(Batch):
    """:class:`Batch` whose submissions are graded by a Dask cluster; written here, one by one.

    ``client`` comes from :func:`connect` (close it with :func:`disconnect`).
    """

    def __init__(self, tasks: list[Task], config: dict, *, client, progress: bool = True,
                 log=sys.stderr):
        super().__init__(tasks, config, jobs=1, progress=progress, log=log)
        self.client = client

    def run(self) -> list[SubmissionResult]:
        from distributed import as_completed
        from tqdm.auto import tqdm
        bar = tqdm(total=len(self.tasks), desc="grading on the cluster", unit="submission",
                   disable=not self.progress or None)
        client = self.client
        try:
            run = uuid.uuid4().hex         # keys never meet an earlier run's tasks
            futures = {client.submit(grade_on_worker, task, pure=False, retries=1,
                                     key=f"aecourse-grade-{run}-{i}"): task
                       for i, task in enumerate(self.tasks)}
            for future in as_completed(futures):
                task = futures[future]
                try:
                    result = future.result()
                except Exception as error:  # noqa: BLE001  (contained: this student only)
                    result = failed(task, f"grading failed on the cluster "
                                          f"({type(error).__name__}: {str(error)[:300]})")
                self._write(task, result)
                bar.update()
        finally:
            bar.close()
        self.results.sort(key=lambda r: r.student)
        return self.results

"""Dask workers for ``aecourse grade --scheduler`` from a Slurm queue (``dask-jobqueue``).

Run on the cluster's login node, from the course directory, in the course's environment::

    python -m aecourse.grader.slurm --jobs 20 --memory 4GiB --walltime 02:00:00 --queue Q

It starts a Dask scheduler here, submits ``--jobs`` Slurm jobs, each one single-threaded
``dask worker`` set up as the grader needs it (no nanny, so that it may start a process per
submission; warm, ``--preload aecourse.grader.cluster``; one BLAS thread), prints the
``aecourse grade ... --scheduler ADDRESS`` command to run in a second shell, and keeps the
workers until Ctrl-C. ``--print-job-script`` only prints the script Slurm would run, and
submits nothing.

The workers need the course at the same path (a shared file system) and this same Python
(``--python``, default: this interpreter). Slurm jobs run as you, not root: each submission
then runs with resource limits only, not isolated from other files (see the guide).
"""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["slurm_cluster", "main"]


def slurm_cluster(*, memory: str, walltime: str, queue: str | None = None,
                  account: str | None = None, python: str = sys.executable, port: int = 8786):
    """A ``dask_jobqueue.SLURMCluster`` whose jobs are each one grading worker (no jobs yet:
    ``cluster.scale(jobs=N)`` submits them)."""
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(
        cores=1, processes=1, memory=memory, walltime=walltime, queue=queue,
        account=account, python=python, nanny=False,
        worker_extra_args=["--preload", "aecourse.grader.cluster"],
        job_script_prologue=["export OMP_NUM_THREADS=1", "export TQDM_DISABLE=1"],
        scheduler_options={"port": port, "dashboard_address": None})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aecourse.grader.slurm",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10, help="Slurm jobs = workers")
    parser.add_argument("--memory", default="4GiB", help="memory per job (default 4GiB)")
    parser.add_argument("--walltime", default="02:00:00", help="per job (default 02:00:00)")
    parser.add_argument("--queue", help="Slurm partition")
    parser.add_argument("--account", help="Slurm account")
    parser.add_argument("--python", default=sys.executable,
                        help="the course environment's Python on the nodes")
    parser.add_argument("--port", type=int, default=8786, help="the scheduler's port")
    parser.add_argument("--print-job-script", action="store_true",
                        help="print the job script and exit, submitting nothing")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    cluster = slurm_cluster(memory=args.memory, walltime=args.walltime, queue=args.queue,
                            account=args.account, python=args.python,
                            port=0 if args.print_job_script else args.port)
    with cluster:
        if args.print_job_script:
            print(cluster.job_script())
            return 0
        cluster.scale(jobs=args.jobs)
        print(f"{args.jobs} Slurm jobs submitted; grade with:\n\n"
              f"    aecourse grade PS --scheduler {cluster.scheduler_address}\n\n"
              "Ctrl-C here ends the workers.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())

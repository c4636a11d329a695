"""``aecourse grade --scheduler`` (Dask) versus local ``aecourse grade``, on this machine.

Run from the repository root (also ``bench_grading.py --scheduler``)::

    .venv/bin/python benchmarks/bench_grading_dask.py [--assignment ps1] [--n 8] [--rounds 1]

One course with ``--n`` submissions (the solution and the bug variants, cycled, as
``bench_grading.py`` builds it), graded in separate copies of the course by:

* local ``aecourse grade --jobs 1`` and ``--jobs 2``;
* ``aecourse grade --scheduler`` against a ``dask scheduler`` with 1, then 2 single-threaded
  ``dask worker`` processes on loopback, started (warm: ``--preload aecourse.grader.cluster``,
  as the instructors' guide starts them) before the clock starts, as on a long-lived cluster.

Reports submissions per minute for each, and the Dask path's per-submission overhead: the
1-worker Dask run against ``--jobs 1`` (same number of grading processes; goal <= 1.1x).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_grading as bench  # noqa: E402  (its course builder, runner and table)


@contextmanager
def dask_cluster(tmp: Path, workers: int):
    """The address of a scheduler with ``workers`` single-threaded workers on loopback."""
    env = {**bench.ENV, "DASK_DISTRIBUTED__WORKER__DAEMON": "False", "OMP_NUM_THREADS": "1"}
    file = tmp / f"scheduler-{workers}.json"
    file.unlink(missing_ok=True)           # an earlier round's scheduler left its address
    log = open(tmp / f"dask-{workers}.log", "w")
    dask = str(bench.BIN / "dask")
    processes = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--no-dashboard", "--scheduler-file", str(file)],
                                  stdout=log, stderr=log, env=env)]
    try:
        while not (file.exists() and file.read_text()):
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        processes += [subprocess.Popen([dask, "worker", address, "--nthreads", "1",
                                        "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                                        "--preload", "aecourse.grader.cluster"],
                                       stdout=log, stderr=log, env=env)
                      for _ in range(workers)]
        from distributed import Client
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=300)
        yield address
    finally:
        for process in processes:
            process.kill()
            process.wait()
        log.close()


def rows(args, tmp: Path) -> list[tuple]:
    tmp.mkdir(parents=True, exist_ok=True)
    course = bench.class_course(args, tmp)
    grade = [str(bench.BIN / "aecourse"), "grade", args.assignment, "--timeout", "600"]
    times: dict[str, list[float]] = {}
    for round_ in range(args.rounds):          # interleaved: every arm sees the same load
        for jobs in (1, 2):
            name = f"local --jobs {jobs}"
            times.setdefault(name, []).append(bench.run(
                [*grade, "--jobs", str(jobs)], bench.copy_course(course, tmp / f"l{jobs}{round_}")))
            with dask_cluster(tmp, jobs) as address:
                name = f"Dask, {jobs} worker{'s' * (jobs > 1)}"
                times.setdefault(name, []).append(bench.run(
                    [*grade, "--scheduler", address],
                    bench.copy_course(course, tmp / f"d{jobs}{round_}")))
            print(f"  round {round_}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()),
                  flush=True)
    best = {name: min(t) for name, t in times.items()}
    out = [(f"{name}, {args.n} submissions", f"{t:.1f} s", f"{60 * args.n / t:.1f} per minute")
           for name, t in best.items()]
    ratio = best["Dask, 1 worker"] / best["local --jobs 1"]
    out.append(("Dask 1 worker / local --jobs 1", f"{ratio:.2f}x", "goal <= 1.1x"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assignment", default="ps1")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1,
                        help="interleaved rounds; each arm's minimum is reported")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        print(bench.table(rows(args, Path(tmp)), ("run", "wall time", "throughput")))


if __name__ == "__main__":
    main()

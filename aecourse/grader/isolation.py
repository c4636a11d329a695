"""Confining a student's worker: limits, the mount plan, users, namespaces and cgroups.

As root, the worker gets new mount, network, IPC, UTS and PID namespaces (it is PID 1 of its
own, so every process it starts dies with it), a mount plan that hides the gradebook, the
solutions, every submission and the grading folders, shows the course read-only and gives it a
private, size-capped ``/tmp`` whose ``/tmp/work`` holds a copy of the submission's files; then
its own unprivileged user (one per worker slot), no new privileges, a memory and process cgroup
when one is writable, and rlimits (CPU, address space, file size, processes). Without root only
the rlimits and a scratch directory apply (the caller prints a warning).
"""

from __future__ import annotations

import ctypes
import os
import resource
from dataclasses import dataclass
from pathlib import Path

from aecourse.grader.cgroups import join_cgroups
from aecourse.grader.files import write_files

__all__ = ["Limits", "mount_plan", "uid_for_slot", "isolate", "is_root"]

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 32, 4096, 8192, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
FIRST_UID = 61000
TMPS = ("/tmp", "/var/tmp", "/dev/shm", "/run")
HOMES = ("/root", "/home")


@dataclass(frozen=True)
class Limits:
    """What one submission may use.

    timeout: wall seconds per cell (every request and callback of the cell); submission: wall
    seconds for the whole submission; cpu: CPU seconds of the worker; memory: MB; fsize: MB of
    files (and of the private ``/tmp``); nproc: processes; answer_mb: MB of arrays per answer;
    restarts: restarts of a crashed worker.
    """

    timeout: float = 60.0
    submission: float = 1800.0
    cpu: int = 600
    memory: int = 4096
    fsize: int = 64
    nproc: int = 64
    answer_mb: int = 64
    restarts: int = 3

    def __post_init__(self):
        for name in ("timeout", "submission", "cpu", "memory", "fsize", "nproc", "answer_mb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)!r}")


def is_root() -> bool:
    return os.geteuid() == 0


def uid_for_slot(slot: int) -> int:
    """The user id of worker slot ``slot`` (0, 1, ... jobs - 1): distinct for distinct slots."""
    if not isinstance(slot, int) or not 0 <= slot < 4000:
        raise ValueError(f"a worker slot is an int in [0, 4000), got {slot!r}")
    return FIRST_UID + slot


def mount_plan(course: str, hidden: list[tuple[str, bool]], keep: list[str], tmps: list[str],
               work_mb: int, homes: list[str] = ()) -> list[tuple]:
    """The mount operations that confine a worker, in order (a pure function of its inputs).

    ``hidden``: (path, is_directory) to hide; ``keep``: trees that must stay visible
    (read-only) even when they live under one of ``tmps`` or ``homes`` (a CI checkout in
    ``/tmp``, Python under ``/root``); ``tmps``: the existing temporary directories, each
    replaced by an empty private tmpfs; ``homes``: home directories, replaced by an empty
    read-only one.
    """
    plan = [("private", "/"), ("bind_ro", course)]
    for path, is_dir in hidden:
        plan.append(("hide_dir", path) if is_dir else ("hide_file", path))
    keep = sorted(set(keep))
    keep = [k for k in keep if not any(k != o and Path(k).is_relative_to(o) for o in keep)]
    parked = [k for k in keep if any(Path(k).is_relative_to(t) for t in [*tmps, *homes])]
    if parked:
        plan.append(("tmpfs", "/mnt", 1, 0o755))
    for i, path in enumerate(parked):
        plan += [("mkdir", f"/mnt/{i}"), ("rbind", path, f"/mnt/{i}")]
    for tmp in tmps:
        plan.append(("tmpfs", tmp, work_mb, 0o1777))
    for home in homes:
        plan.append(("tmpfs", home, 1, 0o755))
    for i, path in enumerate(parked):
        plan += [("mkdir", path), ("move", f"/mnt/{i}", path), ("ro", path)]
    plan += [("ro", home) for home in homes]
    plan += [("mkdir", "/tmp/work"), ("proc", "/proc")]
    return plan


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    def enc(text):
        return None if text is None else str(text).encode()

    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags),
                      enc(data)), f"mount {target}")


def apply_mounts(plan: list[tuple]) -> None:
    """Carry out :func:`mount_plan`'s operations (root, in a new mount namespace)."""
    libc = _libc()
    for op, *args in plan:
        if op == "private":
            _mount(libc, None, args[0], None, MS_REC | MS_PRIVATE)
        elif op == "bind_ro":
            _mount(libc, args[0], args[0], None, MS_BIND | MS_REC)
            _mount(libc, None, args[0], None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        elif op == "hide_dir":
            _mount(libc, "none", args[0], "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,mode=000")
        elif op == "hide_file":
            _mount(libc, "/dev/null", args[0], None, MS_BIND)
        elif op == "tmpfs":
            os.makedirs(args[0], exist_ok=True)
            _mount(libc, "none", args[0], "tmpfs", MS_NOSUID | MS_NODEV,
                   f"size={args[1]}m,mode={args[2]:o}")
        elif op == "mkdir":
            os.makedirs(args[0], exist_ok=True)
        elif op == "rbind":
            _mount(libc, args[0], args[1], None, MS_BIND | MS_REC)
        elif op == "move":
            _mount(libc, args[0], args[1], None, MS_MOVE)
        elif op == "ro":
            _mount(libc, None, args[0], None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        elif op == "proc":
            _mount(libc, "proc", args[0], "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        else:
            raise ValueError(f"unknown mount operation {op!r}")


def _rlimits(limits: Limits, own_user: bool) -> None:
    with open("/proc/self/statm") as handle:                 # address space already mapped
        mapped = int(handle.read().split()[0]) * resource.getpagesize()
    nproc = limits.nproc
    if not own_user:                       # RLIMIT_NPROC counts every process of the user
        nproc += sum(1 for p in Path("/proc").glob("[0-9]*")
                     if _owner(p) == os.getuid())
    for kind, value in [(resource.RLIMIT_CPU, limits.cpu),
                        (resource.RLIMIT_AS, mapped + limits.memory * 2**20),
                        (resource.RLIMIT_FSIZE, limits.fsize * 2**20),
                        (resource.RLIMIT_NPROC, nproc), (resource.RLIMIT_CORE, 0)]:
        resource.setrlimit(kind, (value, value))


def _owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except OSError:
        return None


def _wait_in_parent(child: int, reap: bool = False) -> None:
    """In the parent of a fork: wait for ``child`` (reaping any other process meanwhile) and
    exit with its status; in the child: return."""
    if child == 0:
        return
    os.closerange(3, 65536)
    while True:
        pid, status = os.waitpid(-1 if reap else child, 0)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


def isolate(*, plan: list | None, files: list, work: Path, uid: int | None, limits: Limits,
            cgroup: str | None) -> None:
    """Confine this (freshly forked, single-threaded) process; returns in the confined child.

    With a ``plan`` (root): joins the cgroups, unshares namespaces, forks (this process waits
    and exits with the child's status), mounts, forks again (the PID 1 of the namespace stays
    as its init: when it ends, every process of the namespace dies; the worker is not PID 1,
    so signals reach it as usual), copies ``files`` to ``work``, and becomes ``uid``.
    Without: copies the files and sets the rlimits only.
    """
    libc = _libc()
    if plan is not None:
        if cgroup:
            join_cgroups(cgroup, memory_mb=limits.memory, nproc=limits.nproc)
        _check(libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
                            | CLONE_NEWPID), "unshare")
        _wait_in_parent(os.fork())                           # outside: waits, reports
        _check(libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl")
        apply_mounts(plan)                                   # PID 1 of the new namespace:
        _wait_in_parent(os.fork(), reap=True)                # stays as its init, reaping
        _check(libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl")
    work.mkdir(parents=True, exist_ok=True)
    write_files(work, files, uid if plan is not None else None)
    os.chdir(work)
    _rlimits(limits, own_user=plan is not None)
    if plan is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl")

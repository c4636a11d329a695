"""A submission's files, copied without ever following a link.

The folder is walked with ``os.scandir``; symbolic links, hard-linked files and anything that is
not a regular file are left out (each a note); regular files are opened with ``O_NOFOLLOW``;
the total size is bounded. The notebooks themselves are read by the grader, not copied.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["collect_files", "write_files", "read_file"]


def collect_files(folder: Path, max_bytes: int) -> tuple[list, list[str]]:
    """The regular files under ``folder`` (but notebooks) as (relative path, bytes, mode), and
    notes on what was left out. Links are never followed: symlinks and hard-linked files are
    skipped, files are opened with ``O_NOFOLLOW``."""
    files, notes, total, stack = [], [], 0, [(folder, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as error:
            notes.append(f"could not list {prefix or '.'} ({error.strerror})")
            continue
        for entry in entries:
            name = prefix + entry.name
            if entry.is_symlink():
                notes.append(f"{name!r} is a symbolic link: left out")
            elif entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, name + "/"))
            elif not entry.is_file(follow_symlinks=False):
                notes.append(f"{name!r} is not a regular file: left out")
            elif not entry.name.endswith(".ipynb") and entry.name != "timestamp.txt":
                try:
                    fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                except OSError as error:
                    notes.append(f"{name!r} could not be opened ({error.strerror}): left out")
                    continue
                with os.fdopen(fd, "rb") as handle:
                    info = os.fstat(fd)
                    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
                        notes.append(f"{name!r} is a hard link or special file: left out")
                        continue
                    data = handle.read(max_bytes - total + 1)
                total += len(data)
                if total > max_bytes:
                    notes.append(f"the submission's files exceed {max_bytes // 2**20} MB: "
                                 f"{name!r} and later files left out")
                    return files, notes
                files.append((name, data, info.st_mode & 0o755))
    return files, notes


def write_files(work: Path, files: list, uid: int | None) -> None:
    for name, data, mode in files:
        target = work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        os.chmod(target, mode | 0o600)
    if uid is not None:
        for path in [work, *work.rglob("*")]:
            os.lchown(path, uid, uid)
        os.chmod(work, 0o700)


def read_file(path: Path, limit: int) -> bytes | None:
    """At most ``limit`` bytes of the regular file ``path``; None if it is a link, missing, or
    not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return handle.read(limit)

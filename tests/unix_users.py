"""Real Unix accounts for the tests of a class (the hub and the term): created, used, removed.

Not a test module: ``tests/test_hub.py`` and ``tests/test_term.py`` import it. Needs root and
``useradd``; :func:`unavailable` says why not when it cannot run.
"""

import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager

BIN = os.path.dirname(sys.executable)


def unavailable():
    """Why real Unix users cannot be created here, or ``""``."""
    if os.geteuid() != 0:
        return "creating Unix users needs root (CI runs the suite as root)"
    missing = [tool for tool in ("useradd", "userdel", "groupadd", "groupdel")
               if shutil.which(tool) is None]
    return f"missing {missing}" if missing else ""


@contextmanager
def class_accounts(roles, *, group_role=None):
    """Create one account per role (``{role: name}``) under a fresh 0755 base folder.

    Each home is ``<base>/home/<name>``, mode 0700. With ``group_role``, that role's user is also
    in a new group (its name is ``accounts["group"]``). Everything is removed on exit.
    """
    tag = secrets.token_hex(3)
    base = tempfile.mkdtemp(prefix=f"aecourse-class-{tag}-")
    os.chmod(base, 0o755)
    names = {role: f"aec{tag}{role}"[:32] for role in roles}
    group = f"aec{tag}grp"
    created, group_created = [], False
    try:
        os.makedirs(os.path.join(base, "home"), mode=0o755)
        os.makedirs(os.path.join(base, "park"), mode=0o700)
        for name in names.values():
            home = os.path.join(base, "home", name)
            subprocess.run(["useradd", "--create-home", "--home-dir", home, "--shell", "/bin/sh",
                            "--user-group", name], check=True, capture_output=True)
            created.append(name)
            os.chmod(home, 0o700)
        if group_role is not None:
            subprocess.run(["groupadd", group], check=True, capture_output=True)
            group_created = True
            subprocess.run(["usermod", "-a", "-G", group, names[group_role]],
                           check=True, capture_output=True)
        yield {"base": base, "group": group, "park": os.path.join(base, "park"), **names}
    finally:
        for name in created:
            subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
            subprocess.run(["userdel", "--remove", name], capture_output=True)
        if group_created:
            subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _blocked(path):
    """The ancestors of ``path`` that other users cannot traverse (no ``o+x``), and root's home.

    Root's home counts even when it is traversable now: a test elsewhere may be opening it for a
    moment, and a process started in that moment would lose its standard library mid-run.
    """
    parts = os.path.realpath(path).split(os.sep)[1:]
    folders = [os.sep + os.path.join(*parts[:i]) for i in range(1, len(parts))]
    root_home = os.path.realpath(os.path.expanduser("~root"))
    return [folder for folder in folders
            if not os.stat(folder).st_mode & 0o001 or folder == root_home]


def reachable(args, park, keep=()):
    """``args`` wrapped so every user can reach this Python (and ``keep``), as on a real hub.

    CI builds the environment from a Python under ``/root`` (mode 0700), which no other user can
    traverse. Without changing the machine, run ``args`` in a private mount namespace where each
    such folder is an empty 0755 tmpfs into which only the needed paths are put back (parked
    under ``park`` meanwhile). Where every path is reachable already, ``args`` is unchanged.
    """
    needed = [os.path.realpath(p) for p in (sys.base_prefix, *keep)]
    blocked = sorted({folder for path in needed for folder in _blocked(path)}, key=len)
    blocked = [b for b in blocked if not any(b != o and b.startswith(o + os.sep) for o in blocked)]
    if not blocked:
        return list(args)
    moved = [p for p in needed if any(p.startswith(b + os.sep) for b in blocked)]
    lines = ["set -e"]
    for i, path in enumerate(moved):
        lines += [f"mkdir -p {park}/{i}", f"mount --rbind '{path}' {park}/{i}"]
    lines += [f"mount -t tmpfs -o mode=0755,size=1m none '{b}'" for b in blocked]
    for i, path in enumerate(moved):
        lines += [f"mkdir -p '{path}'", f"mount --move {park}/{i} '{path}'"]
    lines.append('exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines),
            "sh", *args]


def home(name):
    return pwd.getpwnam(name).pw_dir


def as_user(name, args, *, park, cwd=None, env=None, check=True, timeout=300):
    """Run ``args`` as the Unix user ``name`` (its uid, its groups), output captured.

    ``park`` is an empty folder for :func:`reachable`.
    """
    entry = pwd.getpwnam(name)
    environment = {"HOME": entry.pw_dir, "USER": name, "LOGNAME": name, "LANG": "C.UTF-8",
                   "PATH": BIN + os.pathsep + "/usr/bin:/bin", **(env or {})}
    drop = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups",
            "--", *args]
    return subprocess.run(reachable(drop, park), cwd=cwd or entry.pw_dir, env=environment,
                          check=check, capture_output=True, text=True, timeout=timeout)

"""Shared pytest fixtures for the aecourse test suite."""

import os
import socket

import matplotlib
import pytest

# Files whose tests are spread over the workers one by one (each graded batch is a few minutes
# and needs no module fixture); every other file is one unit of work, so a module fixture (the
# student edition's build, the hostile batch, nbgrader's fixtures) is built once.
SPREAD = {"tests/test_assignments.py"}


def pytest_xdist_make_scheduler(config, log):
    """``make test``'s scheduling on two workers: files as units, the files of SPREAD test by test.

    xdist's own ``--dist loadgroup`` relies on renaming test ids, which this pytest ignores: its
    groups were split, and the big module fixtures built on both workers."""
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            file = nodeid.split("::")[0]
            return nodeid if file in SPREAD else file

    return FileScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def _quiet_headless_session():
    """Draw figures off screen (Agg) and silence tqdm progress bars in every test."""
    matplotlib.use("Agg")
    old = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    yield
    if old is None:
        os.environ.pop("TQDM_DISABLE", None)
    else:
        os.environ["TQDM_DISABLE"] = old


@pytest.fixture
def no_network(monkeypatch):
    """Make every socket connection fail, to prove that code runs offline."""

    def refuse(*args, **kwargs):
        raise OSError("network blocked in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)

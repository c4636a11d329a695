"""Shared pytest fixtures for the aecourse test suite."""

import os
import socket

import matplotlib
import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """With ``--dist loadgroup`` (make test), a test without an ``xdist_group`` stays with its
    file, so a module-scoped fixture is built once; grouped tests (one graded batch per
    assignment, say) spread over both workers even when they share a file."""
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


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

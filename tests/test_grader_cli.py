"""The ``aecourse`` console script: a table of subcommands, each a module's ``main(argv)``."""

from __future__ import annotations

import sys
import types

import pytest

from aecourse import cli


def test_each_subcommand_gets_its_arguments(monkeypatch):
    calls = []
    fake = types.ModuleType("fake_grade")
    fake.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "fake_grade", fake)
    monkeypatch.setitem(cli.COMMANDS, "grade", ("fake_grade", "grade"))
    assert cli.main(["grade", "ps1", "--jobs", "2"]) == 0
    assert calls == [["ps1", "--jobs", "2"]]


def test_help_lists_the_subcommands_and_unknown_ones_fail(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "release" in out and "grade" in out
    assert cli.main(["publsh"]) == 2
    assert "unknown command 'publsh'" in capsys.readouterr().err


def test_release_outside_a_course_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="no nbgrader_config.py"):
        cli.main(["release"])


def test_grade_refuses_nonsense_limits(tmp_path, capsys):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    with pytest.raises(SystemExit):
        cli.main(["grade", "ps1", "--memory", "0", "--course-dir", str(tmp_path)])
    assert "Limits.memory must be positive, got 0" in capsys.readouterr().err

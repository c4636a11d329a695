"""The grader's isolation: limits, the mount plan (a pure function), uids by slot, copying a
submission without following links."""

from __future__ import annotations

import os

import pytest

from aecourse.grader import files, isolation


def test_limits_are_frozen_and_refuse_nonsense():
    limits = isolation.Limits(timeout=5)
    with pytest.raises(AttributeError):
        limits.timeout = 10
    with pytest.raises(ValueError, match="memory"):
        isolation.Limits(memory=0)


def test_worker_slots_get_distinct_uids():
    uids = [isolation.uid_for_slot(slot) for slot in range(64)]
    assert len(set(uids)) == 64 and min(uids) >= 1000
    with pytest.raises(ValueError, match="slot"):
        isolation.uid_for_slot(-1)


def test_the_mount_plan_hides_secrets_after_the_read_only_course():
    plan = isolation.mount_plan("/srv/course", [("/srv/course/solutions", True),
                                                ("/srv/course/gradebook.db", False)],
                                ["/srv/course", "/srv/course/.venv"], ["/tmp", "/dev/shm"], 32)
    assert plan[:4] == [("private", "/"), ("bind_ro", "/srv/course"),
                        ("hide_dir", "/srv/course/solutions"),
                        ("hide_file", "/srv/course/gradebook.db")]
    assert ("tmpfs", "/tmp", 32, 0o1777) in plan and ("tmpfs", "/dev/shm", 32, 0o1777) in plan
    assert plan[-2:] == [("mkdir", "/tmp/work"), ("proc", "/proc")]
    assert not any(op[0] in ("rbind", "move") for op in plan)          # nothing under /tmp


def test_a_course_under_tmp_is_parked_and_comes_back_read_only():
    plan = isolation.mount_plan("/tmp/ci/course", [("/tmp/ci/course/solutions", True)],
                                ["/tmp/ci/course", "/tmp/ci/course/.venv", "/opt/lib"],
                                ["/tmp"], 64)
    ops = [op[0] for op in plan]
    park, tmp = plan.index(("rbind", "/tmp/ci/course", "/mnt/0")), plan.index(
        ("tmpfs", "/tmp", 64, 0o1777))
    move = plan.index(("move", "/mnt/0", "/tmp/ci/course"))
    assert ops.index("hide_dir") < park < tmp < move < plan.index(("ro", "/tmp/ci/course"))
    assert not any("/tmp/ci/course/.venv" in op for op in plan)        # nested: moved with it
    assert not any("/opt/lib" in op for op in plan)                    # not under a tmp


def test_collecting_a_submission_never_follows_links(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the solution")
    folder = tmp_path / "submission"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "x.csv").write_text("1,2")
    (folder / "hw.ipynb").write_text("{}")                  # notebooks are read by the grader
    (folder / "link.txt").symlink_to(secret)
    (folder / "dangling").symlink_to(tmp_path / "nowhere")
    (folder / "linked_dir").symlink_to(tmp_path)
    os.link(secret, folder / "hard.txt")
    os.mkfifo(folder / "fifo")
    copied, notes = files.collect_files(folder, 2**20)
    assert [(name, data) for name, data, _ in copied] == [("data/x.csv", b"1,2")]
    for name in ("link.txt", "dangling", "linked_dir", "hard.txt", "fifo"):
        assert any(name in note for note in notes), (name, notes)


def test_collecting_stops_at_the_size_limit(tmp_path):
    for i in range(3):
        (tmp_path / f"f{i}.bin").write_bytes(b"x" * 600)
    copied, notes = files.collect_files(tmp_path, 1000)
    assert [name for name, _, _ in copied] == ["f0.bin"] and "exceed" in notes[0]

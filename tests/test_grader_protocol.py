"""The grader's channel: plain data by value with exact types, limits checked before reading,
and nothing a worker sends can crash the grader."""

from __future__ import annotations

import io
import json
import os
import struct
import threading

import numpy as np
import pytest
import torch

from aecourse.grader.protocol import Channel, ProtocolError, decode, encode


def handle(value):
    return {"t": "handle", "id": 7, "type": type(value).__name__}


def round_trip(value, **limits):
    """``value`` encoded by a worker and decoded by the grader, over a real pipe."""
    read_fd, write_fd = os.pipe()
    sender, receiver = Channel(-1, write_fd), Channel(read_fd, -1, **limits)
    payloads: list = []
    tree = encode(value, payloads, handle)

    def send():
        try:
            sender.send_data({"value": tree}, payloads)
        except BrokenPipeError:                  # the receiver refused the rest
            pass

    thread = threading.Thread(target=send)
    thread.start()
    try:
        _, (header, arrays) = receiver.receive(deadline=None)
    finally:
        os.close(read_fd)
        thread.join()
        os.close(write_fd)
    return decode(header["value"], arrays, lambda number, type_name: ("handle", number,
                                                                      type_name))


def raw_frame(header: dict, arrays: list[bytes]) -> bytes:
    head = json.dumps({**header, "n": len(arrays)}).encode()
    body = struct.pack("<I", len(head)) + head + b"".join(
        struct.pack("<Q", len(a)) + a for a in arrays)
    return b"D" + struct.pack("<Q", len(body)) + body


def receive_bytes(data: bytes, **limits):
    read_fd, write_fd = os.pipe()
    os.write(write_fd, data)
    os.close(write_fd)
    try:
        return Channel(read_fd, -1, **limits).receive(deadline=None)
    finally:
        os.close(read_fd)


def test_plain_data_travels_by_value_with_exact_types():
    value = {"a": [1, 2.5, None, True, "s"], 3: (np.arange(6).reshape(2, 3), np.float32(1.5)),
             "z": complex(1, -2), "nan": float("nan"), "big": 2**80}
    back = round_trip(value)
    assert back["a"] == [1, 2.5, None, True, "s"] and type(back["a"][3]) is bool
    assert isinstance(back[3], tuple) and back[3][0].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert type(back[3][1]) is np.float32 and back[3][1] == np.float32(1.5)
    assert back["z"] == complex(1, -2) and np.isnan(back["nan"]) and back["big"] == 2**80
    tensor = round_trip(torch.nn.Parameter(torch.ones(2, 3)))
    assert type(tensor) is torch.Tensor and tensor.tolist() == [[1.0] * 3] * 2


def test_subclasses_arrive_as_their_base_type():
    class Liar(float):
        def __eq__(self, other):
            return True

    class Words(str):
        pass

    back = round_trip([Liar(0.5), Words("x")])
    assert type(back[0]) is float and back[0] != 0.25 and type(back[1]) is str


def test_other_objects_stay_behind_as_handles():
    assert round_trip((object(), 1)) == (("handle", 7, "object"), 1)


def test_lone_surrogates_decode_without_error():
    assert round_trip("a\ud800b") == "a\ud800b"


def test_an_answer_holding_a_pickled_array_is_refused(tmp_path):
    marker = tmp_path / "unpickled"

    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    buffer = io.BytesIO()
    np.save(buffer, np.array([Bomb()], dtype=object), allow_pickle=True)
    with pytest.raises(ProtocolError, match="malformed array"):
        receive_bytes(raw_frame({"value": {"t": "nd", "i": 0}}, [buffer.getvalue()]))
    assert not marker.exists()


def test_an_oversized_answer_is_refused_before_it_is_read():
    header = b"D" + struct.pack("<Q", 10**12)
    with pytest.raises(ProtocolError, match="bytes"):
        receive_bytes(header)
    frame = raw_frame({"x": "y" * 5000}, [])
    with pytest.raises(ProtocolError, match="header"):
        receive_bytes(frame, max_header=1000)


def test_arrays_beyond_the_per_answer_limit_are_refused():
    with pytest.raises(ProtocolError, match="arrays|bytes"):
        round_trip(np.zeros(300_000), max_arrays=2**20)        # 2.4 MB of arrays, limit 1 MB
    assert round_trip(np.zeros(100_000), max_arrays=2**20).shape == (100_000,)


def test_a_pickle_frame_from_the_worker_is_refused():
    with pytest.raises(ProtocolError, match="frame kind"):
        receive_bytes(b"P" + struct.pack("<Q", 3) + b"abc")


@pytest.mark.parametrize("tree", [
    {"t": "dict", "v": [[{"t": "list", "v": []}, {"t": "v", "v": 1}]]},    # unhashable key
    {"t": "dict", "v": [[{"t": "nd", "i": 0}, {"t": "v", "v": 1}]]},       # array as a key
    {"t": "v", "v": [1, 2]},                                               # raw JSON list
    {"t": "nd", "i": 5},                                                   # no such array
    {"t": "nope"},
    {"no": "kind"},
    "text",
    {"t": "list", "v": 3},
])
def test_malformed_values_are_protocol_errors_not_crashes(tree):
    with pytest.raises(ProtocolError):
        decode(tree, [np.zeros(2)], lambda number, type_name: None)


def test_a_read_past_its_deadline_times_out():
    import time
    read_fd, write_fd = os.pipe()
    try:
        with pytest.raises(TimeoutError):
            Channel(read_fd, -1).receive(deadline=time.monotonic() + 0.05)
    finally:
        os.close(read_fd)
        os.close(write_fd)

"""Fuzzing: random and mutated frames and message records only ever raise the library's typed errors.

Deterministic (seeded) so a failure reproduces; each input's CPU time is measured (CPU, not wall
clock, so a loaded CI machine does not fail the test) and the whole run's allocations are traced, so
a runaway loop or an unbounded buffer fails the test instead of the machine.
"""

import gc
import random
import struct
import time
import tracemalloc
from collections.abc import Callable

from remoting_support import captured, captured_command

from rocketmq_retry.remoting.codes import SerializeType
from rocketmq_retry.remoting.errors import ProtocolError, UnsupportedCompression
from rocketmq_retry.remoting.frame import FrameDecoder, RemotingCommand, encode
from rocketmq_retry.remoting.message import HostPort, MessageExt, decode_messages, encode_message

CAP = 4096
MAX_CPU_SECONDS_PER_INPUT = 5.0  # one input decodes in < 1 ms; the margin absorbs CPU steal on loaded CI hosts
SEED_FRAMES = [captured(name) for name in (
    "v550_cluster_info_response", "v497_not_supported_response", "v497_binary_header_response",
    "v550_max_offset_binary_request_json_response", "v550_pull_response")]


def _synthetic_frames(rng: random.Random) -> list[bytes]:
    frames = []
    for serialize_type in SerializeType:
        for _ in range(20):
            ext = {f"k{i}": "v" * rng.randrange(10) for i in range(rng.randrange(4))}
            frames.append(encode(RemotingCommand(code=rng.randrange(400), opaque=rng.randrange(2**31),
                                                 remark=rng.choice([None, "remark"]), ext_fields=ext,
                                                 body=rng.randbytes(rng.randrange(64)),
                                                 serialize_type=serialize_type)))
    return frames


def _mutate(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    buf = bytearray(data)
    kind = rng.randrange(8)
    if kind == 0 and buf:
        for _ in range(rng.randrange(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == 1:
        del buf[rng.randrange(len(buf) + 1):]
    elif kind == 2:
        buf += rng.randbytes(rng.randrange(64))
    elif kind == 3 and len(buf) >= 4:
        buf[0:4] = struct.pack(">i", rng.choice([rng.randrange(-(2**31), 2**31), rng.randrange(-8, 64)]))
    elif kind == 4 and len(buf) >= 8:
        buf[4:8] = struct.pack(">I", rng.randrange(2**32))
    elif kind == 5:
        other = rng.choice(others)
        buf = buf[:rng.randrange(len(buf) + 1)] + other[rng.randrange(len(other) + 1):]
    elif kind == 6:
        return rng.randbytes(rng.randrange(200))
    else:
        buf += rng.choice(others)
    return bytes(buf)


def _run(inputs: int, make: Callable[[random.Random], bytes], consume: Callable[[bytes, random.Random], object],
         expected: tuple[type[Exception], ...]) -> dict[str, int]:
    rng = random.Random(20240229)
    outcomes = {"accepted": 0, "rejected": 0}
    gc.collect()
    gc.freeze()  # the test process's large heap would otherwise make the odd full collection look like a hang
    tracemalloc.start()
    try:
        for _ in range(inputs):
            data = make(rng)
            started = time.thread_time()
            try:
                consume(data, rng)
                outcomes["accepted"] += 1
            except expected:
                outcomes["rejected"] += 1
            assert time.thread_time() - started < MAX_CPU_SECONDS_PER_INPUT, f"slow input: {data.hex()}"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.unfreeze()
    assert peak < 8 * 1024 * 1024, f"decoding allocated {peak} bytes at peak"
    return outcomes


def _feed_in_chunks(data: bytes, rng: random.Random) -> None:
    decoder = FrameDecoder(max_frame_size=CAP)
    pos = 0
    while pos < len(data):
        step = rng.randrange(1, 128)
        decoder.feed(data[pos:pos + step])
        pos += step
        assert decoder.buffered <= CAP + 128


def test_ten_thousand_mutated_frames_raise_only_protocol_errors() -> None:
    rng = random.Random(7)
    seeds = SEED_FRAMES + _synthetic_frames(rng)
    outcomes = _run(10_000, lambda r: _mutate(r, r.choice(seeds), seeds), _feed_in_chunks, (ProtocolError,))
    assert outcomes["accepted"] > 500, outcomes
    assert outcomes["rejected"] > 3000, outcomes


def _seed_records() -> list[bytes]:
    records = [captured_command(name).body for name in ("v550_pull_response", "v497_pull_response",
                                                        "v550_zlib_pull_response")]
    records.append(encode_message(MessageExt(topic="T" * 200, body=b"b" * 300, properties={"UNIQ_KEY": "x"},
                                             store_host=HostPort("::1", 1), born_host=HostPort("10.0.0.1", 2),
                                             sys_flag=0x301, magic=-626843477)))
    return records


def test_five_thousand_mutated_message_records_raise_only_typed_errors() -> None:
    seeds = _seed_records()
    outcomes = _run(5_000, lambda r: _mutate(r, r.choice(seeds), seeds),
                    lambda data, _: decode_messages(data, max_body_size=CAP), (ProtocolError, UnsupportedCompression))
    assert outcomes["accepted"] > 200, outcomes
    assert outcomes["rejected"] > 2000, outcomes

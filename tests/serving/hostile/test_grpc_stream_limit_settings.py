"""The concurrent-stream limit as each gRPC front end advertises it (issue 12: tfrelay's front
end advertised 2^31-1, grpc-core advertises no limit unless `grpc.max_concurrent_streams` is
set): 100 by default on both, and `--grpc_channel_arguments=grpc.max_concurrent_streams=N`
changes it. Read from the server's first SETTINGS frame over a raw socket."""

from __future__ import annotations

import struct

import pytest

from support import raw_h2
from support.models import write_half_plus_two
from support.raw_h2 import RawClient
from support.servers import ModelServerProcess, wait_for_version

MODEL = "half_plus_two"
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3


def _advertised_streams(port: int) -> int | None:
    client = RawClient("127.0.0.1", port)
    frames = client.read_until(lambda fs: any(f[0] == raw_h2.SETTINGS and not f[1] for f in fs))
    client.close()
    payload = next(f[3] for f in frames if f[0] == raw_h2.SETTINGS and not f[1])
    settings = dict(struct.unpack_from(">HI", payload, i) for i in range(0, len(payload), 6))
    return settings.get(SETTINGS_MAX_CONCURRENT_STREAMS)


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--grpc_implementation=grpcio"], 100),
        (["--grpc_channel_arguments=grpc.max_concurrent_streams=7"], 7),
    ],
    ids=["grpcio-default", "tfrelay-channel-argument"],
)
def test_advertised_concurrent_stream_limit(tmp_path, flags, expected):
    write_half_plus_two(tmp_path / MODEL / "1", a=0.5, b=2.0)
    base = [f"--model_name={MODEL}", f"--model_base_path={tmp_path / MODEL}"]
    with ModelServerProcess(base + flags, log_path=tmp_path / "server.log") as process:
        wait_for_version(process.url, MODEL, 1)
        assert _advertised_streams(process.grpc_port) == expected

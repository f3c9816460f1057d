"""Attack: unauthenticated gRPC calls on a server with `--auth_token_file` (issue 12: the token
was checked only after the whole body was buffered, and after the method lookup, so an unknown
method told a client without a token UNIMPLEMENTED). A raw HTTP/2 client sends only the request
headers: the answer must come at once, before any body, UNAUTHENTICATED whatever the method."""

from __future__ import annotations

import time

import httpx
import psutil
import pytest

from support import raw_h2
from support.models import write_half_plus_two
from support.raw_h2 import RawClient, frame
from support.servers import ModelServerProcess, wait_until
from tfrelay.serving.security import UNAUTHENTICATED_MESSAGE

MODEL = "half_plus_two"
TOKEN = "hostile-suite-token"
UNAUTHENTICATED = ("16", UNAUTHENTICATED_MESSAGE)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-auth")
    write_half_plus_two(root / MODEL / "1", a=0.5, b=2.0)
    (root / "tokens").write_text(f"{TOKEN}\n")
    flags = [
        f"--model_name={MODEL}",
        f"--model_base_path={root / MODEL}",
        f"--auth_token_file={root / 'tokens'}",
    ]
    with ModelServerProcess(flags, log_path=root / "server.log") as process:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        wait_until(
            lambda: (
                "AVAILABLE"
                in httpx.get(f"{process.url}/v1/models/{MODEL}", headers=headers, timeout=2).text
            ),
            60,
            what="half_plus_two AVAILABLE",
        )
        yield process


def _headers_only(process, path: str, extra=()) -> RawClient:
    """Sends one call's HEADERS (no END_STREAM, no body) and reads its answer."""
    client = RawClient("127.0.0.1", process.grpc_port)
    block = client.request_headers(path, extra)
    client.send(frame(raw_h2.HEADERS, raw_h2.END_HEADERS, 1, block))
    client.read_until(lambda frames: 1 in client.statuses, timeout=5)
    client.close()
    return client


def test_no_token_is_unauthenticated_from_the_headers_before_any_body(auth_server):
    started = time.monotonic()
    client = _headers_only(auth_server, "/tensorflow.serving.PredictionService/Predict")
    assert client.statuses[1] == UNAUTHENTICATED
    assert time.monotonic() - started < 1.0
    assert client.resets() == {1: raw_h2.NO_ERROR}  # "stop sending": the body is never needed


def test_an_unknown_method_without_a_token_is_unauthenticated_not_unimplemented(auth_server):
    client = _headers_only(auth_server, "/tensorflow.serving.PredictionService/NoSuchMethod")
    assert client.statuses[1] == UNAUTHENTICATED


def test_an_unknown_method_with_a_token_is_unimplemented_before_the_body(auth_server):
    client = _headers_only(
        auth_server,
        "/tensorflow.serving.PredictionService/NoSuchMethod",
        [("authorization", f"Bearer {TOKEN}")],
    )
    assert client.statuses[1] == ("12", "Method not found!")


def test_a_wrong_token_with_a_large_body_is_refused_without_buffering_it(auth_server):
    process = psutil.Process(auth_server.process.pid)
    before = process.memory_info().rss
    client = RawClient("127.0.0.1", auth_server.grpc_port)
    block = client.request_headers(extra=[("authorization", "Bearer wrong")])
    client.send(frame(raw_h2.HEADERS, raw_h2.END_HEADERS, 1, block))
    # 4 MiB of body follows (the whole initial window): dropped, never buffered.
    message = raw_h2.grpc_message(b"\0" * ((4 << 20) - 5))
    client.send(
        b"".join(
            frame(raw_h2.DATA, 0, 1, message[i : i + 16_384])
            for i in range(0, len(message), 16_384)
        )
    )
    client.read_until(lambda frames: 1 in client.statuses, timeout=5)
    client.close()
    assert client.statuses[1] == UNAUTHENTICATED
    assert process.memory_info().rss - before < 16 << 20

"""The attack suite's shared parts (issue 12): one real `tfrelay-model-server` process with
default flags, and the checks every attack ends with.

Each attack runs real sockets against the started server; afterwards the server must still be
alive, answer a normal REST and gRPC predict within a second, and its RSS must stay bounded.
Attacks are bounded in count and time and send nothing but to 127.0.0.1.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator

import grpc
import httpx
import psutil
import pytest

from support.grpc_clients import predict_request, stubs
from support.models import write_half_plus_two
from support.servers import LOOPBACK, ModelServerProcess, wait_for_version

MODEL = "half_plus_two"
# What "still answering" means during and after an attack.
ANSWER_WITHIN_SECONDS = 1.0


class HostileTarget:
    """A started server and the probes an attack uses.

    Attributes:
      process: the running `tfrelay-model-server`.
      host: 127.0.0.1.
      rest_port: the REST port.
      grpc_port: the gRPC port.
    """

    def __init__(self, process: ModelServerProcess) -> None:
        self.process = process
        self.host = LOOPBACK
        self.rest_port = process.rest_port
        self.grpc_port = process.grpc_port
        self._channel = grpc.insecure_channel(f"{LOOPBACK}:{process.grpc_port}")
        self._predict_stub, _ = stubs(self._channel)

    @property
    def url(self) -> str:
        return self.process.url

    def rss_bytes(self) -> int:
        """The server's resident set size now."""
        assert self.process.process is not None
        return psutil.Process(self.process.process.pid).memory_info().rss

    def assert_alive(self) -> None:
        """The process has not exited."""
        assert self.process.process is not None
        assert self.process.process.poll() is None, f"server died:\n{self.process.log()[-4000:]}"

    def rest_predict_seconds(self) -> float:
        """One normal REST predict on a new connection: asserts the answer, returns its time."""
        start = time.monotonic()
        response = httpx.post(
            f"{self.url}/v1/models/{MODEL}:predict",
            json={"instances": [1.0, 2.0]},
            timeout=ANSWER_WITHIN_SECONDS * 5,
        )
        elapsed = time.monotonic() - start
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [2.5, 3.0]}
        return elapsed

    def grpc_predict_seconds(self) -> float:
        """One normal gRPC Predict through TF Serving's stub: asserts the answer, returns its time."""
        start = time.monotonic()
        response = self._predict_stub.Predict(
            predict_request(MODEL, x=[1.0]), timeout=ANSWER_WITHIN_SECONDS * 5
        )
        elapsed = time.monotonic() - start
        assert list(response.outputs["y"].float_val) == [2.5]
        return elapsed

    def assert_serving_others(self) -> None:
        """Alive, and a normal REST and gRPC predict each answer within a second."""
        self.assert_alive()
        rest = self.rest_predict_seconds()
        grpc_seconds = self.grpc_predict_seconds()
        assert rest < ANSWER_WITHIN_SECONDS, f"REST predict took {rest:.2f}s"
        assert grpc_seconds < ANSWER_WITHIN_SECONDS, f"gRPC predict took {grpc_seconds:.2f}s"

    def close(self) -> None:
        self._channel.close()


@pytest.fixture(scope="session")
def hostile_target(tmp_path_factory) -> Iterator[HostileTarget]:
    """A `tfrelay-model-server` with default flags serving half_plus_two (x/2 + 2)."""
    root: pathlib.Path = tmp_path_factory.mktemp("hostile")
    write_half_plus_two(root / MODEL / "1", a=0.5, b=2.0)
    flags = [f"--model_name={MODEL}", f"--model_base_path={root / MODEL}"]
    with ModelServerProcess(flags, log_path=root / "server.log") as process:
        wait_for_version(process.url, MODEL, 1)
        target = HostileTarget(process)
        target.assert_serving_others()
        yield target
        target.close()


@pytest.fixture
def target(hostile_target: HostileTarget) -> Iterator[HostileTarget]:
    """The shared server, checked to still serve others after each attack."""
    yield hostile_target
    hostile_target.assert_serving_others()


# Short REST timeouts for the slow-client attacks (the defaults are nginx's 60 s).
SHORT_TIMEOUT_FLAGS = [
    "--rest_api_header_timeout_seconds=1",
    "--rest_api_body_timeout_seconds=1",
    "--rest_api_send_timeout_seconds=2",
]


@pytest.fixture(scope="module")
def short_timeout_target(tmp_path_factory) -> Iterator[HostileTarget]:
    """A second server with short REST timeouts (SHORT_TIMEOUT_FLAGS), checked after its module."""
    root: pathlib.Path = tmp_path_factory.mktemp("hostile-short-timeouts")
    write_half_plus_two(root / MODEL / "1", a=0.5, b=2.0)
    flags = [f"--model_name={MODEL}", f"--model_base_path={root / MODEL}", *SHORT_TIMEOUT_FLAGS]
    with ModelServerProcess(flags, log_path=root / "server.log") as process:
        wait_for_version(process.url, MODEL, 1)
        target = HostileTarget(process)
        yield target
        target.assert_serving_others()
        target.close()

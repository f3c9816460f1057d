"""The load generators, both C: `wrk` (HTTP/1.1 keep-alive, a Lua script POSTs the body) and
`h2load` (HTTP/2, gRPC: a pre-serialized, length-prefixed PredictRequest with gRPC's headers).

Both are closed-loop: `concurrency` connections, each sending its next request when the answer
to the last one arrives, one thread, pinned to the load generator's core.

h2load counts an HTTP 200 as a success even when the gRPC status in the trailers is an error, so
gRPC answers are checked separately (a real gRPC call before the run, the server's request
counts by status around it: see throughput.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import signal
import subprocess
import tempfile

from benchmarks.procs import BENCH

WRK_SCRIPT = BENCH / "lua" / "post.lua"
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")
JSON_HEADERS = ("content-type: application/json",)


@dataclasses.dataclass
class LoadResult:
    """One measured run.

    Attributes:
      tool: "wrk" or "h2load".
      concurrency: connections (h2load: clients, `streams` each).
      seconds: measured duration.
      requests: answers received (h2load: responses, whatever their status).
      rps: requests per second.
      p50_ms, p90_ms, p99_ms, max_ms, mean_ms: latency of the answered requests.
      errors: connection, read and write errors and timeouts (no answer).
      non_2xx: answers with another HTTP status.
    """

    tool: str
    concurrency: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int
    non_2xx: int

    @property
    def failed(self) -> int:
        return self.errors + self.non_2xx

    def as_dict(self) -> dict[str, float | int | str]:
        return {**dataclasses.asdict(self), "failed": self.failed}


class WrkRun:
    """A running `wrk`; `result()` waits for it (or stops it early with `stop()`).

    Args:
      url: the full predict URL.
      body_file: the request body.
      concurrency: connections.
      seconds: how long to run (an upper bound when stopped early).
      cpu: the core to pin wrk to.
      timeout_s: a request unanswered this long counts as a timeout.
    """

    def __init__(
        self,
        url: str,
        body_file: pathlib.Path,
        concurrency: int,
        seconds: float,
        cpu: int,
        timeout_s: float = 30.0,
    ) -> None:
        self.concurrency = concurrency
        argv = [
            "taskset", "-c", str(cpu), "wrk", "-t1", f"-c{concurrency}",
            f"-d{max(1, math.ceil(seconds))}s", f"--timeout={timeout_s:g}s",
            "-s", str(WRK_SCRIPT), url, "--", str(body_file),
        ]  # fmt: skip
        self.popen = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def stop(self) -> None:
        """Ends the run now; wrk prints its summary on SIGINT."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)

    def result(self) -> LoadResult:
        stdout, stderr = self.popen.communicate()
        line = next((ln for ln in stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk failed ({self.popen.returncode}): {stderr or stdout}")
        data = json.loads(line.removeprefix("WRK_JSON "))
        seconds = data["duration_us"] / 1e6
        latency = data["latency_us"]
        return LoadResult(
            tool="wrk",
            concurrency=self.concurrency,
            seconds=round(seconds, 3),
            requests=data["requests"],
            rps=round(data["requests"] / seconds, 1) if seconds else 0.0,
            p50_ms=latency["p50"] / 1000,
            p90_ms=latency["p90"] / 1000,
            p99_ms=latency["p99"] / 1000,
            max_ms=latency["max"] / 1000,
            mean_ms=round(latency["mean"] / 1000, 3),
            errors=data["connect_errors"]
            + data["read_errors"]
            + data["write_errors"]
            + data["timeouts"],
            non_2xx=data["non_2xx"],
        )


def wrk(
    url: str, body_file: pathlib.Path, concurrency: int, seconds: float, cpu: int
) -> LoadResult:
    """Runs wrk for `seconds` and returns its figures."""
    return WrkRun(url, body_file, concurrency, seconds, cpu).result()


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))
    return float(sorted_values[index])


def h2load(
    url: str,
    body_file: pathlib.Path,
    concurrency: int,
    seconds: float,
    cpu: int,
    headers: tuple[str, ...] = GRPC_HEADERS,
    streams: int = 1,
    http1: bool = False,
) -> LoadResult:
    """Runs h2load for `seconds` (POSTing `body_file` with `headers`) and returns its figures.

    With `http1`, h2load speaks HTTP/1.1 (`--h1`, one request at a time per connection): a
    second opinion on wrk's REST figures.

    Latency percentiles come from h2load's per-request log (h2load itself prints only
    min/max/mean).
    """
    with tempfile.TemporaryDirectory() as tmp:
        log_file = pathlib.Path(tmp) / "requests.tsv"
        argv = [
            "taskset", "-c", str(cpu), "h2load", *(["--h1"] if http1 else []),
            "-t1", f"-c{concurrency}", f"-m{streams}",
            f"-D{max(1, math.ceil(seconds))}", "-d", str(body_file),
            *(arg for header in headers for arg in ("-H", header)),
            f"--log-file={log_file}", url,
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not log_file.exists():
            raise RuntimeError(f"h2load failed ({done.returncode}): {done.stderr or done.stdout}")
        latencies: list[int] = []
        non_2xx = errors = 0
        for row in log_file.read_text().splitlines():
            _, status, micros = row.split("\t")[:3]
            code = int(status)
            if code < 0:
                errors += 1
                continue
            latencies.append(int(micros))
            if not 200 <= code < 300:
                non_2xx += 1
    seconds_run = _h2load_seconds(done.stdout) or seconds
    latencies.sort()
    count = len(latencies)
    return LoadResult(
        tool="h2load",
        concurrency=concurrency * streams,
        seconds=round(seconds_run, 3),
        requests=count,
        rps=round(count / seconds_run, 1),
        p50_ms=_percentile(latencies, 50) / 1000,
        p90_ms=_percentile(latencies, 90) / 1000,
        p99_ms=_percentile(latencies, 99) / 1000,
        max_ms=(latencies[-1] / 1000) if latencies else 0.0,
        mean_ms=round(sum(latencies) / count / 1000, 3) if count else 0.0,
        # Failed streams are in the log as status -1, and in the summary as errored/timeout.
        errors=max(
            errors, _h2load_count(done.stdout, "errored") + _h2load_count(done.stdout, "timeout")
        ),
        non_2xx=non_2xx,
    )


def _h2load_seconds(stdout: str) -> float | None:
    """The measured duration from h2load's `finished in 10.00s, ...` line."""
    for line in stdout.splitlines():
        if line.startswith("finished in "):
            token = line.split()[2].rstrip(",")
            if token.endswith("ms"):
                return float(token[:-2]) / 1000
            if token.endswith("s"):
                return float(token[:-1])
    return None


def _h2load_count(stdout: str, what: str) -> int:
    """A count from h2load's `requests: N total, ..., N errored, N timeout` line."""
    for line in stdout.splitlines():
        if line.startswith("requests:"):
            for part in line.removeprefix("requests:").split(","):
                number, _, label = part.strip().partition(" ")
                if label == what:
                    return int(number)
    return 0


def rest(
    url: str, body_file: pathlib.Path, concurrency: int, seconds: float, cpu: int, tool: str
) -> LoadResult:
    """Runs a REST load with `tool`: "wrk", or "h2load" speaking HTTP/1.1 with JSON headers.

    Args:
      url: the predict URL.
      body_file: the JSON body POSTed with every request.
      concurrency: connections.
      seconds: how long.
      cpu: the core the load generator is pinned to.
      tool: "wrk" or "h2load" (`--rest-loadgen`).

    Returns:
      Its figures.
    """
    if tool == "wrk":
        return wrk(url, body_file, concurrency, seconds, cpu)
    return h2load(url, body_file, concurrency, seconds, cpu, headers=JSON_HEADERS, http1=True)

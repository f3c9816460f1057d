"""Hot-swap scenario: tfrelay under steady load while N new versions are published.

tfrelay serves a local base path polled every `swap_poll_seconds`. wrk loads it for
`duration` seconds (the steady figures), then again while the harness publishes versions
2..N+1, alternating half_plus_three and half_plus_two so every new version changes the answer,
each the bucket-contract way (every file first, saved_model.pb last). A light prober (one request
every 20 ms on its own keep-alive connection) tells which version answered: the pickup delay is
from the moment saved_model.pb is written to the prober's first answer from the new version.
After each swap, once the old version is unloaded, the server's RSS is read from /proc.
"""

from __future__ import annotations

import bisect
import http.client
import json
import math
import pathlib
import shutil
import threading
import time
from typing import Any

from benchmarks import loadgen
from benchmarks.config import BenchConfig
from benchmarks.models import half_plus
from benchmarks.procs import LOOPBACK, rss_bytes, wait_until
from benchmarks.servers import (
    START_TIMEOUT,
    Server,
    failed_requests,
    start_tfrelay,
    version_states,
    wait_available,
)

MODEL = "half_plus"
X = 1.0
ANSWERS = {2: 0.5 * X + 2, 3: 0.5 * X + 3}  # intercept -> prediction for X
PICKUP_TIMEOUT = 120.0


def publish(source: pathlib.Path, base_path: pathlib.Path, version: int) -> pathlib.Path:
    """Copies a SavedModel to `<base_path>/<version>` as the bucket contract says: every other
    file first, `saved_model.pb` last."""
    target = base_path / str(version)
    last = None
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir():
            (target / relative).mkdir(parents=True, exist_ok=True)
        elif relative.as_posix() == "saved_model.pb":
            last = path
        else:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / relative)
    if last is None:
        raise ValueError(f"{source} has no saved_model.pb")
    shutil.copyfile(last, target / "saved_model.pb")
    return target


class Prober(threading.Thread):
    """Sends one predict request every `interval` seconds; records (t, latency, status, answer).

    Args:
      port: tfrelay's REST port.
      origin: the monotonic time t is measured from.
      interval: pause between requests.
    """

    def __init__(self, port: int, origin: float, interval: float = 0.02) -> None:
        super().__init__(name="prober", daemon=True)
        self.port = port
        self.origin = origin
        self.interval = interval
        self.samples: list[tuple[float, float, int, float | None]] = []
        self._stopping = threading.Event()
        self._body = json.dumps({"instances": [[X]]}).encode()

    def run(self) -> None:
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
        while not self._stopping.is_set():
            sent = time.monotonic()
            status, value = 0, None
            try:
                connection.request(
                    "POST",
                    f"/v1/models/{MODEL}:predict",
                    self._body,
                    {"Content-Type": "application/json"},
                )
                response = connection.getresponse()
                data = response.read()
                status = response.status
                if status == 200:
                    value = json.loads(data)["predictions"][0][0]
            except (OSError, http.client.HTTPException, ValueError, LookupError):
                connection.close()
                connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
            received = time.monotonic()
            self.samples.append((received - self.origin, (received - sent) * 1000, status, value))
            self._stopping.wait(self.interval)
        connection.close()

    def first_answer(self, value: float, after: float) -> float | None:
        """The time (since origin) of the first answer `value` received after `after`."""
        start = bisect.bisect_right(self.samples, (after, math.inf))
        for t, _, status, answer in self.samples[start:]:
            if status == 200 and answer == value:
                return t
        return None

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=60)


def _swap(
    server: Server,
    prober: Prober,
    base_path: pathlib.Path,
    version: int,
    source: pathlib.Path,
    answer: float,
    origin: float,
) -> dict[str, Any]:
    """Publishes one version, waits for its first answer and the old version's unload."""
    publish_start = time.monotonic() - origin
    publish(source, base_path, version)
    published = time.monotonic() - origin
    wait_until(
        lambda: prober.first_answer(answer, published) is not None,
        PICKUP_TIMEOUT,
        f"an answer from version {version}",
        interval=0.02,
    )
    picked_up = prober.first_answer(answer, published)
    assert picked_up is not None

    def old_unloaded() -> bool:
        states = version_states(server, MODEL)
        return states.get(version) == "AVAILABLE" and states.get(version - 1) != "AVAILABLE"

    wait_until(old_unloaded, PICKUP_TIMEOUT, f"version {version - 1} to unload", interval=0.05)
    return {
        "version": version,
        "published_at_s": round(published, 3),
        "publish_s": round(published - publish_start, 3),
        "pickup_delay_s": round(picked_up - published, 3),
        "rss_mb": round(rss_bytes(server.process.pid) / 2**20, 1),
    }


def run(config: BenchConfig) -> dict[str, Any]:
    """Runs the scenario; returns its figures (see README)."""
    work = config.work_dir / "hotswap"
    base_path = work / "models" / MODEL
    shutil.rmtree(base_path, ignore_errors=True)
    sources = {2: half_plus(config.work_dir, 2), 3: half_plus(config.work_dir, 3)}
    publish(sources[2], base_path, 1)
    flags = [
        f"--model_name={MODEL}",
        f"--model_base_path={base_path}",
        *config.tfrelay_flags,
        f"--file_system_poll_wait_seconds={config.swap_poll_seconds:g}",
    ]
    print(f"hotswap: {config.swaps} swaps under {config.swap_concurrency} connections", flush=True)
    body = work / "body.json"
    body.write_text(json.dumps({"instances": [[X]]}))
    log = config.log_dir / "tfrelay-hotswap.log"
    with start_tfrelay(flags, log, config.server_cpu, config.work_dir) as server:
        wait_available(server, MODEL, 1, START_TIMEOUT)
        rss_before = round(rss_bytes(server.process.pid) / 2**20, 1)
        url = server.predict_url(MODEL)
        if config.warmup > 0:
            loadgen.wrk(url, body, config.swap_concurrency, config.warmup, config.load_cpu)
        errors_before = failed_requests(server, MODEL) if server.metrics else 0.0
        origin = time.monotonic()
        prober = Prober(server.rest_port, origin)
        prober.start()
        steady = loadgen.wrk(url, body, config.swap_concurrency, config.duration, config.load_cpu)
        during_run = loadgen.WrkRun(
            url, body, config.swap_concurrency, PICKUP_TIMEOUT * (config.swaps + 1), config.load_cpu
        )
        swaps_started = time.monotonic() - origin
        swaps: list[dict[str, Any]] = []
        error = ""
        try:
            for version in range(2, config.swaps + 2):
                intercept = 3 if version % 2 == 0 else 2
                swaps.append(
                    _swap(
                        server,
                        prober,
                        base_path,
                        version,
                        sources[intercept],
                        ANSWERS[intercept],
                        origin,
                    )
                )
                last = swaps[-1]
                print(
                    f"  swap {version - 1:2}: picked up {last['pickup_delay_s']:.2f} s after "
                    f"publishing; RSS {last['rss_mb']:.0f} MB",
                    flush=True,
                )
        except (TimeoutError, RuntimeError) as err:
            error = str(err)
            print(f"  hotswap stopped: {error}", flush=True)
        finally:
            during_run.stop()
            during = during_run.result()
            prober.stop()
        server_errors = int(failed_requests(server, MODEL) - errors_before) if server.metrics else 0
    probes = prober.samples
    probe_failures = sum(1 for s in probes if s[2] != 200)
    rss_first = swaps[0]["rss_mb"] if swaps else 0.0
    rss_last = swaps[-1]["rss_mb"] if swaps else 0.0
    delays = sorted(s["pickup_delay_s"] for s in swaps)
    return {
        "swaps_requested": config.swaps,
        "swaps_done": len(swaps),
        "error": error,
        "concurrency": config.swap_concurrency,
        "poll_seconds": config.swap_poll_seconds,
        "steady": steady.as_dict(),
        "during": during.as_dict(),
        "requests": steady.requests + during.requests + len(probes),
        "failed": steady.failed + during.failed + probe_failures,
        "server_errors": server_errors,
        "prober": {"requests": len(probes), "failed": probe_failures},
        "pickup_delay_s": {
            "min": delays[0] if delays else None,
            "median": delays[len(delays) // 2] if delays else None,
            "max": delays[-1] if delays else None,
        },
        "rss_before_swaps_mb": rss_before,
        "rss_after_first_mb": rss_first,
        "rss_after_last_mb": rss_last,
        "rss_change": round((rss_last - rss_first) / rss_first, 4) if rss_first else 0.0,
        "swaps_started_at_s": round(swaps_started, 3),
        "swaps": swaps,
        "prober_samples": [[round(t, 3), round(ms, 3), status] for t, ms, status, _ in probes],
    }

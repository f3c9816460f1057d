"""`tfrelay demo`: the whole loop on this machine, with nothing started beforehand.

1. The pipeline trains on a first batch of penguins, validates, pushes version 1 to a local
   bucket directory, and the deployer starts a model server polling that bucket.
2. A client starts querying the server without pause.
3. New penguins arrive; a retrain validates against version 1, pushes version 2, and the same
   server (same process) swaps it in.
4. The client's tally (requests, failures) is printed, and what the demo started is stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

SAMPLE_PENGUIN = {
    "bill_length_mm": 46.5,
    "bill_depth_mm": 15.0,
    "flipper_length_mm": 220,
    "body_mass_g": 5000,
    "island": "Biscoe",
    "sex": "female",
}


@dataclass
class _Client:
    """Queries the model back to back, counting answers and failures."""

    url: str
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(self.url, json={"instances": [SAMPLE_PENGUIN]})
                    if response.status_code != 200:
                        self.failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as err:
                    self.failures.append(repr(err))
                self.requests += 1
                time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serving_version(endpoint: str, model: str) -> int:
    statuses = httpx.get(f"{endpoint}/v1/models/{model}", timeout=10).json()["model_version_status"]
    return max(int(s["version"]) for s in statuses if s["state"] == "AVAILABLE")


def _show_server(state_dir: str) -> None:
    # Which stack serves (issue 14): the deployer starts .venv-serving's server (Python 3.12+,
    # TensorFlow 2.21) although this pipeline runs on Python 3.10.
    for state_file in sorted(pathlib.Path(state_dir).glob("server-*.json")):
        state = json.loads(state_file.read_text())
        interpreter = os.path.basename(os.path.realpath(f"/proc/{state['pid']}/exe"))
        command = state.get("command") or ["?"]
        print(f"  server       {command[0]} on {interpreter} (pid {state['pid']})")


def _show_prediction(endpoint: str, model: str) -> None:
    answer = httpx.post(
        f"{endpoint}/v1/models/{model}:predict", json={"instances": [SAMPLE_PENGUIN]}, timeout=30
    ).json()["predictions"][0]
    probability = max(answer["probabilities"])
    print(f"  prediction   {SAMPLE_PENGUIN}")
    print(
        f"               -> {answer['classes']} (p={probability:.3f}) from version {_serving_version(endpoint, model)}"
    )


def run_demo(
    workdir: str, port: int | None = None, verbose: bool = False, keep_server: bool = False
) -> int:
    """Runs the demo in `workdir` (emptied first).

    Returns:
      0 when version 2 serves and the client saw no failure, 1 otherwise.
    """
    from tfrelay.pipelines import progress

    progress.configure(verbose)  # before TensorFlow is imported below
    from tfrelay.components.deployer.local_server import stop_local_server
    from tfrelay.pipelines.cli import _print_summary
    from tfrelay.pipelines.datasets import penguins
    from tfrelay.pipelines.pipeline import PipelineConfig
    from tfrelay.pipelines.runners.local import run_local

    workdir = os.path.abspath(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    endpoint = f"http://127.0.0.1:{port or _free_port()}"
    config = PipelineConfig(
        data_root=os.path.join(workdir, "data"),
        pipeline_root=os.path.join(workdir, "pipeline"),
        base_path=os.path.join(workdir, "bucket", "penguins"),
        server_state_dir=os.path.join(workdir, "servers"),
        endpoint=endpoint,
        poll_seconds=1,
        epochs=10,
    )
    started = time.monotonic()
    client: _Client | None = None
    thread = None
    try:
        penguins.write_initial_data(config.data_root)
        print(
            f"\n[1/3] Training on {penguins.INITIAL_ROWS} penguins; the deployer starts a model server polling {config.base_path}"
        )
        first = run_local(config)
        _print_summary(first, config)
        _show_server(config.server_state_dir)
        _show_prediction(endpoint, config.model_name)

        client = _Client(f"{endpoint}/v1/models/{config.model_name}:predict")
        thread = threading.Thread(target=client.run, daemon=True)
        thread.start()
        print(
            f"\n[2/3] New penguins arrived; retraining while a client queries {endpoint} without pause"
        )
        penguins.write_new_data(config.data_root)
        second = run_local(config)
        _print_summary(second, config)
        _show_prediction(endpoint, config.model_name)
        time.sleep(1.0)  # a few more requests on the new version
        client.stop()
        thread.join(timeout=30)

        serving = _serving_version(endpoint, config.model_name)
        print(
            f"\n[3/3] The same server now serves version {serving}; no restart, no rebuilt image."
        )
        print(
            f"  client       {client.requests} requests during the retrain and swap, {len(client.failures)} failed"
        )
        for failure in client.failures[:5]:
            print(f"               {failure}")
        print(f"  total        {time.monotonic() - started:.0f}s")
        ok = serving == 2 and not client.failures and first.pushed and second.pushed
        print("\nDemo " + ("succeeded." if ok else "FAILED."))
        return 0 if ok else 1
    finally:
        if client is not None:
            client.stop()
        if keep_server:
            print(
                f"The model server keeps running at {endpoint} (stop it with: kill $(jq .pid {config.server_state_dir}/server-*.json))"
            )
        elif stop_local_server(endpoint, config.server_state_dir):
            print(f"Stopped the model server at {endpoint}.")


def main(argv: Sequence[str] | None = None) -> int:
    """`tfrelay demo`."""
    parser = argparse.ArgumentParser(
        prog="tfrelay demo",
        description="Train, validate, push and serve penguin models on this machine: version 1, then a "
        "retrain on new data swaps in version 2 on the same server while a client queries it.",
    )
    parser.add_argument(
        "--workdir", default="tfrelay-demo", help="workspace, emptied first (default: tfrelay-demo)"
    )
    parser.add_argument(
        "--port", type=int, help="REST port of the model server (default: a free one)"
    )
    parser.add_argument(
        "--keep-server", action="store_true", help="leave the model server running afterwards"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show TFX, TensorFlow and Beam logs too"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return run_demo(args.workdir, args.port, args.verbose, args.keep_server)

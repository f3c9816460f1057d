"""The penguin pipeline compiled for Kubeflow Pipelines runs end to end the way KFP's launcher
runs it (tests/kubeflow/launcher.py): each task's command from the YAML, `{{$}}` replaced by the
ExecutorInput, a fresh pod root per task, the pipeline root and the model bucket on S3."""

from __future__ import annotations

import json
import os
import threading
import time

import httpx
import pytest
from kubeflow.environment import (
    BASE_PATH,
    BUCKET,
    DATA_ROOT,
    PIPELINE_ROOT,
    SECRET,
    make_launcher,
    upload_file,
)
from kubeflow.launcher import KFP_BACKEND_VERSION, TaskRun, placeholders_in

from support.servers import free_port
from tfrelay.components.deployer import artifacts
from tfrelay.components.deployer.local_server import stop_local_server
from tfrelay.pipelines.cli import main as pipeline_main
from tfrelay.pipelines.datasets import penguins

pytestmark = pytest.mark.slow

TASKS = [
    "CsvExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "Trainer",
    "Validator",
    "BucketPusher",
    "ServingDeployer",
]
ADELIE = {
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181,
    "body_mass_g": 3750,
    "island": "Torgersen",
    "sex": "male",
}


def _compile(path, workdir, endpoint: str, s3_env, *extra: str, epochs: int = 10):
    code = pipeline_main(
        [
            "compile",
            f"--output={path}",
            f"--workdir={workdir}",
            f"--pipeline-root={PIPELINE_ROOT}",
            f"--data-root={DATA_ROOT}",
            f"--base-path={BASE_PATH}",
            f"--endpoint={endpoint}",
            f"--epochs={epochs}",
            f"--set=step_secret={SECRET}",
            f"--set=step_secret_keys={json.dumps(sorted(s3_env))}",
            "--set=poll_seconds=1",
            "--set=deploy_timeout_seconds=120",
            # One in-memory Beam worker: the same transforms without a worker process start-up
            # per Beam pipeline (this machine has two cores).
            "--beam-arg=--direct_running_mode=in_memory",
            "--beam-arg=--direct_num_workers=1",
            *extra,
        ]
    )
    assert code == 0
    return path


@pytest.fixture(scope="module")
def kfp(s3_env, s3, tmp_path_factory):
    """The compiled packages (a normal one and one whose threshold cannot be met) and the
    deployer's endpoint; the model server the deployer starts is stopped at the end."""
    work = tmp_path_factory.mktemp("kfp")
    endpoint = f"http://127.0.0.1:{free_port()}"
    data = work / "data"
    upload_file(s3, penguins.write_initial_data(data), f"{DATA_ROOT}/penguins-initial.csv")
    state = {
        "work": work,
        "endpoint": endpoint,
        "state_dir": str(work / "servers"),
        "package": _compile(work / "pipeline.yaml", work, endpoint, s3_env),
        # No model meets 1.01, however long it trains.
        "strict_package": _compile(
            work / "strict.yaml", work, endpoint, s3_env, "--set=lower_bound=1.01", epochs=1
        ),
        "data": data,
    }
    try:
        yield state
    finally:
        stop_local_server(endpoint, state["state_dir"])


def _versions(s3) -> list[int]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="models/penguins/", Delimiter="/")
    names = [p["Prefix"].rstrip("/").rsplit("/", 1)[1] for p in listing.get("CommonPrefixes", [])]
    return sorted(int(n) for n in names if n.isdigit())


def _metadata(runs: dict[str, TaskRun], task: str, output: str) -> dict:
    return runs[task].outputs[output].metadata


def _server_pid(kfp) -> int:
    port = kfp["endpoint"].rsplit(":", 1)[1]
    with open(os.path.join(kfp["state_dir"], f"server-{port}.json")) as f:
        return json.load(f)["pid"]


def _assert_commands_are_the_yamls(launcher, runs: dict[str, TaskRun]) -> None:
    """Each container ran the YAML's command and arguments, only `{{$}}` filled in."""
    executors = launcher.package_yaml["deploymentSpec"]["executors"]
    for name, run in runs.items():
        container = executors[f"{name}_executor"]["container"]
        templates = [*container["command"], *container["args"]]
        assert placeholders_in(container) == {"{{$}}"}
        assert len(run.command) == len(templates)
        for template, value in zip(templates, run.command, strict=True):
            if template == "{{$}}":
                assert json.loads(value) == run.executor_input
            else:
                assert value == template


class Load:
    """Predict requests in a loop on a thread, counting failures, until stopped."""

    def __init__(self, url: str, max_requests: int = 20000, max_seconds: float = 600) -> None:
        self.url = url
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=10) as client:
            for _ in range(self.max_requests):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    response = client.post(self.url, json={"instances": [ADELIE]})
                    if response.status_code == 200 and "predictions" in response.json():
                        self.ok += 1
                    else:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as err:
                    self.failures.append(repr(err))
                time.sleep(0.05)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def launcher(kfp, s3_env, s3):
    return make_launcher(kfp["package"], kfp["work"] / "runs", s3_env, s3)


@pytest.fixture(scope="module")
def first(launcher) -> dict[str, TaskRun]:
    """The first run (an empty bucket): its tasks' runs."""
    return launcher.run("run-1")


def test_the_first_kubeflow_run_pushes_version_1_from_artifacts_on_s3_and_serves_it(
    kfp, launcher, first, s3
):
    assert KFP_BACKEND_VERSION == "2.17.0"
    assert list(first) == TASKS
    _assert_commands_are_the_yamls(launcher, first)
    examples = first["CsvExampleGen"].outputs["examples"]
    assert examples.uri.startswith(f"{PIPELINE_ROOT}/penguins/run-1/CsvExampleGen/")
    assert examples.uri.endswith("/examples")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=examples.uri.removeprefix(f"s3://{BUCKET}/"))
    assert listed.get("KeyCount", 0) > 0  # the artifact is in the bucket, not on a pod's disk
    model_uri = first["Trainer"].outputs["model"].uri
    blessing = _metadata(first, "Validator", "blessing")
    assert blessing["blessed"] == 1 and blessing["tfrelay_baseline_version"] == -1
    assert blessing["current_model"] == model_uri  # the artifact, not a pod's local copy
    pushed = _metadata(first, "BucketPusher", "pushed_model")
    assert pushed["pushed"] == 1 and pushed["pushed_version"] == "1", pushed
    assert pushed["tfrelay_pushed_model_uri"] == model_uri
    assert _metadata(first, "ServingDeployer", "serving_endpoint")[artifacts.SERVING_VERSION] == 1
    assert _versions(s3) == [1]
    record = json.loads(
        s3.get_object(Bucket=BUCKET, Key="models/penguins/1/assets.extra/tfrelay_push.json")[
            "Body"
        ].read()
    )
    assert record["source_model_uri"] == model_uri
    assert "/tmp/" not in json.dumps(record)
    url = f"{kfp['endpoint']}/v1/models/penguins"
    prediction = httpx.post(f"{url}:predict", json={"instances": [ADELIE]}).json()
    assert prediction["predictions"][0]["classes"] == "Adelie"


def test_a_second_kubeflow_run_is_validated_against_version_1_and_swapped_in_without_a_failed_request(
    kfp, launcher, first, s3
):
    url = f"{kfp['endpoint']}/v1/models/penguins"
    pid = _server_pid(kfp)
    upload_file(s3, penguins.write_new_data(kfp["data"]), f"{DATA_ROOT}/penguins-new.csv")
    with Load(f"{url}:predict") as load:
        second = launcher.run("run-2")
        time.sleep(1)  # requests after the swap too
    assert load.failures == [] and load.ok > 0, load.failures[:5]
    blessing = _metadata(second, "Validator", "blessing")
    assert blessing["blessed"] == 1 and blessing["tfrelay_baseline_version"] == 1, blessing
    assert blessing["baseline_model"] == f"{BASE_PATH}/1"
    pushed = _metadata(second, "BucketPusher", "pushed_model")
    assert pushed["pushed"] == 1 and pushed["pushed_version"] == "2", pushed
    assert _metadata(second, "ServingDeployer", "serving_endpoint")[artifacts.SERVING_VERSION] == 2
    assert _versions(s3) == [1, 2]
    assert _server_pid(kfp) == pid  # the same server, never restarted
    status = httpx.get(f"{url}/versions/2").json()["model_version_status"][0]
    assert status["state"] == "AVAILABLE"
    # The second run's outputs are its own: nothing of run 1's pods was reused.
    assert second["Trainer"].outputs["model"].uri.startswith(f"{PIPELINE_ROOT}/penguins/run-2/")


def test_a_kubeflow_run_failing_its_threshold_pushes_nothing(kfp, first, s3_env, s3):
    before = _versions(s3)
    assert before, "runs after the two-run test"
    launcher = make_launcher(kfp["strict_package"], kfp["work"] / "strict-runs", s3_env, s3)
    runs = launcher.run("run-strict")
    blessing = _metadata(runs, "Validator", "blessing")
    assert blessing["blessed"] == 0
    assert any("required >= 1.0100" in c for c in json.loads(blessing["tfrelay_failed_checks"]))
    pushed = _metadata(runs, "BucketPusher", "pushed_model")
    assert pushed["pushed"] == 0 and "not blessed" in pushed["tfrelay_push_reason"].lower()
    assert _versions(s3) == before
    endpoint = _metadata(runs, "ServingDeployer", "serving_endpoint")
    assert endpoint[artifacts.SERVING_VERSION] == before[-1]

"""`tfrelay pipeline schedule` (and `submit`): a KFP recurring run (a run), created through kfp's own client against a
loopback endpoint that checks each request body against kfp-server-api's models (the API's
recorded contract) and answers as the KFP API server does."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import kfp_server_api
import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from tfrelay.pipelines.cli import main as pipeline_main
from tfrelay.pipelines.runners.kubeflow import ENTRYPOINT_COMMAND, kfp_cron

PIPELINE_ROOT = "s3://tfrelay-ci/pipeline-root"
# int64 fields: the API's swagger says `type: string, format: int64` (proto3 JSON), so the
# generated models type them 'str'; the server's JSON decoding takes a number or a string.
INT64_FIELDS = {"max_concurrency", "interval_second"}


def check_against_model(data: object, type_name: str, where: str = "body") -> None:
    """Fails unless `data` fits kfp-server-api's model `type_name`, recursively.

    Args:
      data: the decoded JSON.
      type_name: an openapi type of kfp_server_api ('V2beta1RecurringRun', 'str', ...).
      where: the field path, for the failure message.
    """
    if type_name in ("str", "datetime"):
        assert isinstance(data, str), f"{where}: {data!r} is not a {type_name}"
    elif type_name == "bool":
        assert isinstance(data, bool), f"{where}: {data!r} is not a bool"
    elif type_name == "int":
        assert isinstance(data, int) and not isinstance(data, bool), f"{where}: {data!r}"
    elif type_name == "object":
        assert isinstance(data, dict), f"{where}: {data!r} is not an object"
    elif type_name.startswith("dict("):
        assert isinstance(data, dict), f"{where}: {data!r} is not a map"
    elif type_name.startswith("list["):
        assert isinstance(data, list), f"{where}: {data!r} is not a list"
        for index, item in enumerate(data):
            check_against_model(item, type_name[5:-1], f"{where}[{index}]")
    else:
        model = getattr(kfp_server_api, type_name)
        if not model.openapi_types:  # an enum
            assert data in model.allowable_values, f"{where}: {data!r} not in {type_name}"
            return
        assert isinstance(data, dict), f"{where}: {data!r} is not a {type_name}"
        keys = {json_key: attr for attr, json_key in model.attribute_map.items()}
        unknown = set(data) - set(keys)
        assert not unknown, f"{where}: {sorted(unknown)} are not fields of {type_name}"
        for json_key, value in data.items():
            attr = keys[json_key]
            field_type = model.openapi_types[attr]
            if attr in INT64_FIELDS and isinstance(value, int):
                continue
            check_against_model(value, field_type, f"{where}.{json_key}")


class _Response:
    """What `ApiClient.deserialize` reads: the body as `data`."""

    def __init__(self, body: dict) -> None:
        self.data = json.dumps(body)


def deserialize(body: dict, type_name: str):
    """The model object kfp-server-api's own deserializer makes of `body`."""
    return kfp_server_api.ApiClient().deserialize(_Response(body), type_name)


class FakeKfpApi:
    """The KFP v2beta1 API routes `kfp.Client` uses to schedule a run, on loopback.

    Args:
      experiments: experiments that exist already.
    """

    def __init__(self, experiments: list[dict] | None = None) -> None:
        self.experiments = list(experiments or [])
        self.requests: list[tuple[str, str, dict | None]] = []
        self.recurring_runs: list[dict] = []
        self.runs: list[dict] = []

    def handle(self, method: str, url: str, body: dict | None) -> tuple[int, dict]:
        parsed = urlparse(url)
        self.requests.append((method, parsed.path, body))
        if method == "GET" and parsed.path == "/apis/v2beta1/healthz":
            return 200, {"multi_user": False}
        if method == "GET" and parsed.path == "/apis/v2beta1/experiments":
            query = parse_qs(parsed.query)
            (predicate,) = json.loads(query["filter"][0])["predicates"]
            assert predicate["key"] == "display_name", predicate
            # The filter is a protojson api.Filter: either field name spelling decodes.
            wanted = predicate.get("stringValue", predicate.get("string_value"))
            found = [e for e in self.experiments if e["display_name"] == wanted]
            return 200, ({"experiments": found, "total_size": len(found)} if found else {})
        if method == "POST" and parsed.path == "/apis/v2beta1/experiments":
            check_against_model(body, "V2beta1Experiment")
            experiment = {**body, "experiment_id": f"experiment-{len(self.experiments) + 1}"}
            self.experiments.append(experiment)
            return 200, experiment
        if method == "POST" and parsed.path == "/apis/v2beta1/recurringruns":
            check_against_model(body, "V2beta1RecurringRun")
            recurring_run = {
                **body,
                "recurring_run_id": f"recurring-{len(self.recurring_runs) + 1}",
                "status": "ENABLED" if body.get("mode") == "ENABLE" else "DISABLED",
                "created_at": "2026-12-01T00:00:00Z",
            }
            self.recurring_runs.append(recurring_run)
            return 200, recurring_run
        if method == "POST" and parsed.path == "/apis/v2beta1/runs":
            check_against_model(body, "V2beta1Run")
            run = {**body, "run_id": f"run-{len(self.runs) + 1}", "state": "PENDING"}
            self.runs.append(run)
            return 200, run
        return 404, {"error": f"no route {method} {parsed.path}", "code": 5}


@contextlib.contextmanager
def serve(api: FakeKfpApi) -> Iterator[str]:
    """Serves `api` on 127.0.0.1 (a free port); yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            try:
                status, answer = api.handle(method, self.path, body)
            except AssertionError as err:
                # The API server rejects a body its models do not describe.
                status, answer = 400, {"error": str(err), "code": 3}
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    path = tmp_path_factory.mktemp("kfp-schedule") / "pipeline.yaml"
    assert (
        pipeline_main(
            [
                "compile",
                f"--output={path}",
                f"--pipeline-root={PIPELINE_ROOT}",
                "--base-path=s3://tfrelay-ci/models/penguins",
            ]
        )
        == 0
    )
    return path


def _schedule(url: str, *flags: str) -> int:
    return pipeline_main(
        [
            "schedule",
            f"--host={url}",
            f"--pipeline-root={PIPELINE_ROOT}",
            "--base-path=s3://tfrelay-ci/models/penguins",
            *flags,
        ]
    )


def test_a_cron_schedule_creates_the_experiment_and_a_recurring_run_the_api_models_accept(
    tmp_path, capsys
):
    api = FakeKfpApi()
    with serve(api) as url:
        # No --package: the pipeline is compiled here, as `submit` does.
        assert _schedule(url, "--cron=0 3 * * *", f"--workdir={tmp_path}") == 0
    assert [(m, p) for m, p, _ in api.requests] == [
        ("GET", "/apis/v2beta1/healthz"),
        ("GET", "/apis/v2beta1/experiments"),
        ("POST", "/apis/v2beta1/experiments"),
        ("POST", "/apis/v2beta1/recurringruns"),
    ]
    (body,) = [b for m, p, b in api.requests if p == "/apis/v2beta1/recurringruns"]
    recurring_run = deserialize(body, "V2beta1RecurringRun")
    assert recurring_run.display_name == "penguins retrain"
    assert recurring_run.experiment_id == "experiment-1"
    assert api.experiments[0]["display_name"] == "tfrelay"
    assert recurring_run.trigger.cron_schedule.cron == "0 0 3 * * *"  # KFP's seconds field
    assert recurring_run.trigger.periodic_schedule is None
    assert recurring_run.mode == "ENABLE"
    assert int(recurring_run.max_concurrency) == 1 and recurring_run.no_catchup is True
    assert recurring_run.runtime_config.pipeline_root == PIPELINE_ROOT
    spec = json_format.ParseDict(recurring_run.pipeline_spec, pipeline_spec_pb2.PipelineSpec())
    assert spec.schema_version == "2.1.0" and spec.pipeline_info.name == "penguins"
    executors = recurring_run.pipeline_spec["deploymentSpec"]["executors"]
    assert {e["container"]["command"][2] for e in executors.values()} == {ENTRYPOINT_COMMAND[2]}
    assert "Created recurring run recurring-1" in capsys.readouterr().out


def test_an_interval_schedule_in_an_existing_experiment_paused_with_catchup(package):
    existing = {"experiment_id": "experiment-42", "display_name": "retrains"}
    api = FakeKfpApi(experiments=[existing])
    with serve(api) as url:
        code = _schedule(
            url,
            f"--package={package}",
            "--interval-seconds=86400",
            "--experiment=retrains",
            "--name=nightly penguins",
            "--max-concurrency=2",
            "--catchup",
            "--paused",
            "--start-time=2027-01-01T00:00:00Z",
            "--service-account=pipeline-runner",
        )
    assert code == 0
    assert ("POST", "/apis/v2beta1/experiments") not in [(m, p) for m, p, _ in api.requests]
    recurring_run = deserialize(api.recurring_runs[0], "V2beta1RecurringRun")
    assert recurring_run.experiment_id == "experiment-42"
    assert recurring_run.display_name == "nightly penguins"
    periodic = recurring_run.trigger.periodic_schedule
    assert int(periodic.interval_second) == 86400 and recurring_run.trigger.cron_schedule is None
    assert periodic.start_time.isoformat() == "2027-01-01T00:00:00+00:00"
    assert recurring_run.mode == "DISABLE" and recurring_run.status == "DISABLED"
    assert int(recurring_run.max_concurrency) == 2 and recurring_run.no_catchup is False
    assert recurring_run.service_account == "pipeline-runner"
    # The package as compiled, except that kfp's client turns caching off in every task (the
    # pipeline's enable_cache is False; cachingOptions {} means no cache).
    sent = recurring_run.pipeline_spec
    for task in sent["root"]["dag"]["tasks"].values():
        assert not task.pop("cachingOptions").get("enableCache")
    with open(package) as f:
        assert sent == yaml.safe_load(f)


def test_the_contract_check_rejects_a_body_the_api_models_do_not_describe():
    with pytest.raises(AssertionError, match="not fields of V2beta1RecurringRun"):
        check_against_model({"display_name": "x", "schedule": "daily"}, "V2beta1RecurringRun")
    with pytest.raises(AssertionError, match="not in RecurringRunMode"):
        check_against_model({"mode": "ON"}, "V2beta1RecurringRun")
    with pytest.raises(AssertionError, match="is not a bool"):
        check_against_model({"no_catchup": "yes"}, "V2beta1RecurringRun")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("0 3 * * *", "0 0 3 * * *"), ("30 0 3 * * 1-5", "30 0 3 * * 1-5")],
)
def test_cron_expressions_get_kfps_seconds_field(given, expected):
    assert kfp_cron(given) == expected


def test_a_cron_expression_of_the_wrong_length_is_refused_before_any_request(package):
    api = FakeKfpApi()
    with serve(api) as url:
        with pytest.raises(SystemExit, match="KFP takes six fields"):
            _schedule(url, f"--package={package}", "--cron=every night")
    assert api.requests == []


def test_schedule_needs_exactly_one_of_cron_and_interval(package, capsys):
    with pytest.raises(SystemExit):
        _schedule("http://127.0.0.1:9", f"--package={package}")
    with pytest.raises(SystemExit):
        _schedule(
            "http://127.0.0.1:9",
            f"--package={package}",
            "--cron=0 3 * * *",
            "--interval-seconds=60",
        )
    assert "one of the arguments --cron --interval-seconds is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    "root", ["/home/me/tfrelay-work/pipeline", "minio://mlpipeline/v2/artifacts"]
)
def test_a_pipeline_root_the_pods_cannot_share_is_refused_before_any_request(package, root):
    api = FakeKfpApi()
    with serve(api) as url:
        for action, when in (("schedule", "--cron=0 3 * * *"), ("submit", None)):
            argv = [action, f"--host={url}", f"--package={package}", f"--pipeline-root={root}"]
            with pytest.raises(SystemExit, match="artifacts must be in a bucket"):
                pipeline_main(argv + ([when] if when else []))
    assert api.requests == []


def test_submit_creates_one_run_the_api_models_accept(package):
    api = FakeKfpApi()
    with serve(api) as url:
        code = pipeline_main(
            ["submit", f"--host={url}", f"--package={package}", f"--pipeline-root={PIPELINE_ROOT}"]
        )
    assert code == 0
    run = deserialize(api.runs[0], "V2beta1Run")
    assert run.experiment_id == "experiment-1"
    assert run.runtime_config.pipeline_root == PIPELINE_ROOT
    assert run.pipeline_spec["pipelineInfo"]["name"] == "penguins"

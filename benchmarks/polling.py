"""Polling-cost scenario: what one poll costs on a real S3 endpoint, against what the bucket holds.

The harness starts moto_server on loopback and fills one bucket with a model per (versions,
extra files per version) pair: every version a complete half_plus_two SavedModel plus that many
small padding files, published the bucket-contract way. One tfrelay-model-server serves every
model (a model config file) from s3:// with TF Serving's S3 variables, polling every
`poll_seconds`. Once every model is AVAILABLE, for `polling_window` seconds it counts, per model:
polls, storage listings (by kind) and bytes copied from the server's Prometheus metrics, and
the S3 requests moto logged (LIST, GET, HEAD) under the model's prefix, each divided by the polls.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import pathlib
import re
import time
import urllib.parse
from typing import Any

import boto3

from benchmarks.config import BenchConfig
from benchmarks.models import half_plus
from benchmarks.procs import LOOPBACK, PROJECT_BIN, Process, free_port, http_request, wait_until
from benchmarks.servers import (
    START_TIMEOUT,
    Server,
    metric_sum,
    scrape,
    start_tfrelay,
    wait_available,
)

BUCKET = "tfrelay-bench"
PADDING = b"p" * 256
_REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/[\d.]+" (\d+)')


def _model_name(versions: int, files: int) -> str:
    return f"v{versions}_f{files}"


def _objects(source: pathlib.Path, files: int) -> list[tuple[str, bytes]]:
    """(relative key, content) of one version, in publish order (saved_model.pb last)."""
    objects = [
        (path.relative_to(source).as_posix(), path.read_bytes())
        for path in sorted(source.rglob("*"))
        if path.is_file() and path.name != "saved_model.pb"
    ]
    objects += [(f"assets.extra/padding/{i:05d}.bin", PADDING) for i in range(files)]
    objects.append(("saved_model.pb", (source / "saved_model.pb").read_bytes()))
    return objects


def _fill_bucket(env: dict[str, str], config: BenchConfig) -> list[dict[str, Any]]:
    """Creates the bucket and one model per (versions, files); returns their descriptions."""
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{env['S3_ENDPOINT']}",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    s3.create_bucket(Bucket=BUCKET)
    source = half_plus(config.work_dir, 2)
    models = []
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for versions in config.polling_versions:
            for files in config.polling_files:
                name = _model_name(versions, files)
                objects = _objects(source, files)
                for version in range(1, versions + 1):
                    prefix = f"models/{name}/{version}/"
                    body, (last_key, last) = objects[:-1], objects[-1]
                    list(
                        pool.map(
                            lambda o, p=prefix: s3.put_object(
                                Bucket=BUCKET, Key=p + o[0], Body=o[1]
                            ),
                            body,
                        )
                    )
                    s3.put_object(Bucket=BUCKET, Key=prefix + last_key, Body=last)
                models.append(
                    {
                        "model": name,
                        "versions": versions,
                        "files_per_version": len(objects),
                        "objects": versions * len(objects),
                    }
                )
                print(f"  bucket: {name}: {versions * len(objects)} objects", flush=True)
    return models


def _model_config(models: list[dict[str, Any]], path: pathlib.Path) -> pathlib.Path:
    entries = "".join(
        f'  config {{ name: "{m["model"]}" base_path: "s3://{BUCKET}/models/{m["model"]}" '
        f'model_platform: "tensorflow" }}\n'
        for m in models
    )
    path.write_text(f"model_config_list {{\n{entries}}}\n")
    return path


def _s3_requests(log_path: pathlib.Path, start: int, end: int) -> dict[str, collections.Counter]:
    """Per model name: Counter of "LIST" / "GET" / "HEAD" / other requests moto logged between
    two byte offsets of its log."""
    with open(log_path, "rb") as log:
        log.seek(start)
        text = log.read(end - start).decode(errors="replace")
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for match in _REQUEST.finditer(text):
        method, target, _ = match.groups()
        url = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(url.query)
        path = urllib.parse.unquote(url.path).lstrip("/")
        if method == "GET" and path == BUCKET and "prefix" in query:
            key, kind = query["prefix"][0], "LIST"
        else:
            key, kind = path.removeprefix(f"{BUCKET}/"), method
        parts = key.split("/")
        model = parts[1] if len(parts) > 1 and parts[0] == "models" else "(other)"
        counts[model][kind] += 1
    return counts


def _moto(config: BenchConfig) -> tuple[Process, dict[str, str]]:
    """moto_server on a free loopback port (not started yet), and the S3 variables to reach it."""
    port = free_port()
    log = config.log_dir / "moto_server.log"
    log.unlink(missing_ok=True)
    argv = [str(PROJECT_BIN / "moto_server"), "-H", LOOPBACK, "-p", str(port)]
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "S3_ENDPOINT": f"{LOOPBACK}:{port}",
        "S3_USE_HTTPS": "0",
        "S3_VERIFY_SSL": "0",
    }
    return Process(argv, log, cpu=config.load_cpu), env


def _counters(server: Server, model: str) -> dict[str, float]:
    samples = scrape(server)
    prefix = ":tfrelay:serving:"
    return {
        "polls": metric_sum(samples, prefix + "storage_polls", model_name=model),
        "delimiter": metric_sum(
            samples, prefix + "storage_listings", model_name=model, kind="delimiter"
        ),
        "recursive": metric_sum(
            samples, prefix + "storage_listings", model_name=model, kind="recursive"
        ),
        # Issue 13: one HEAD of each aspired version's publish marker per poll, which detects a
        # number rewritten in place; counted apart from the listings whose cost is the goal.
        "head": metric_sum(samples, prefix + "storage_listings", model_name=model, kind="head"),
        "bytes": metric_sum(samples, prefix + "storage_bytes_copied", model_name=model),
    }


def run(config: BenchConfig) -> dict[str, Any]:
    """Runs the scenario; returns {"poll_seconds", "window_s", "models": [...]}."""
    print("polling: filling an S3 bucket on moto_server", flush=True)
    moto, env = _moto(config)
    with moto:
        wait_until(
            lambda: http_request(f"http://{env['S3_ENDPOINT']}/moto-api/", timeout=2)[0] != 0,
            60,
            "moto_server",
        )
        models = _fill_bucket(env, config)
        config_path = _model_config(models, config.work_dir / "polling-models.config")
        flags = [
            *config.tfrelay_flags,
            f"--model_config_file={config_path}",
            f"--file_system_poll_wait_seconds={config.poll_seconds:g}",
        ]
        log = config.log_dir / "tfrelay-polling.log"
        with start_tfrelay(flags, log, config.server_cpu, config.work_dir, env=env) as server:
            if not server.metrics:
                raise RuntimeError("the polling scenario needs the harness's monitoring config")
            listening = time.monotonic()
            for m in models:
                wait_available(server, m["model"], m["versions"], START_TIMEOUT)
                # From the server answering /healthz to this model's newest version AVAILABLE.
                m["seconds_to_available"] = round(time.monotonic() - listening, 2)
                m["to_available"] = _counters(server, m["model"])
            time.sleep(2 * config.poll_seconds)  # let loads and first-time listings settle
            before = {m["model"]: _counters(server, m["model"]) for m in models}
            log_start = os.path.getsize(moto.log_path)
            time.sleep(config.polling_window)
            after = {m["model"]: _counters(server, m["model"]) for m in models}
            log_end = os.path.getsize(moto.log_path)
    requests = _s3_requests(moto.log_path, log_start, log_end)
    for m in models:
        delta = {k: after[m["model"]][k] - before[m["model"]][k] for k in after[m["model"]]}
        polls = delta["polls"] or float("nan")
        counted = requests.get(m["model"], collections.Counter())
        m.update(
            polls=int(delta["polls"]),
            listings_per_poll=round((delta["delimiter"] + delta["recursive"]) / polls, 3),
            delimiter_listings_per_poll=round(delta["delimiter"] / polls, 3),
            recursive_listings_per_poll=round(delta["recursive"] / polls, 3),
            heads_per_poll=round(delta["head"] / polls, 3),
            bytes_per_poll=round(delta["bytes"] / polls, 1),
            s3_list_requests_per_poll=round(counted["LIST"] / polls, 3),
            s3_other_requests_per_poll=round((sum(counted.values()) - counted["LIST"]) / polls, 3),
            s3_requests=dict(counted),
        )
        print(
            f"  {m['model']:10} {m['objects']:6} objects: {m['polls']} polls, "
            f"{m['listings_per_poll']:.2f} listings/poll (moto: {m['s3_list_requests_per_poll']:.2f}"
            f" LIST + {m['s3_other_requests_per_poll']:.2f} other; "
            f"{m['heads_per_poll']:.2f} HEAD/poll), "
            f"{m['bytes_per_poll']:.0f} B/poll",
            flush=True,
        )
    return {
        "poll_seconds": config.poll_seconds,
        "window_s": config.polling_window,
        "unattributed_s3_requests": dict(requests.get("(other)", {})),
        "models": models,
    }

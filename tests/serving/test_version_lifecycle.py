"""Versions coming and going on local storage: hot swaps under load, half-written versions,
broken versions, and in-flight requests during an unload."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from support.load import ContinuousClient
from support.models import copy_version
from support.paths import TF_SERVING_TESTDATA
from support.servers import InProcessModelServer, wait_for_version, wait_until
from tfrelay.serving.core.states import VersionState
from tfrelay.serving.options import ServerOptions

# Conformance on TF Serving's test models, which `make test` runs on both stacks (issue 14).
pytestmark = pytest.mark.both_stacks

POLL_SECONDS = 0.5


def _options(base, **overrides) -> ServerOptions:
    values = dict(
        model_name="m",
        model_base_path=str(base),
        file_system_poll_wait_seconds=POLL_SECONDS,
    )
    values.update(overrides)
    return ServerOptions(**values)


def _status(url: str, model: str = "m") -> dict[str, tuple[str, str, str]]:
    statuses = httpx.get(f"{url}/v1/models/{model}").json()["model_version_status"]
    return {
        s["version"]: (s["state"], s["status"]["error_code"], s["status"]["error_message"])
        for s in statuses
    }


def _predict(url: str, x: float = 2.0) -> float:
    return httpx.post(f"{url}/v1/models/m:predict", json={"instances": [x]}).json()["predictions"][
        0
    ]


def test_hot_swaps_under_load_fail_no_request_and_pick_up_within_poll_plus_load(
    model_root, tmp_path
):
    base = tmp_path / "m"
    copy_version(model_root / "half_plus_two" / "123", base, 1)
    with InProcessModelServer(_options(base)) as server:
        wait_for_version(server.url, "m", 1)
        with ContinuousClient(server.url, "m", x=2.0, threads=4) as client:
            wait_until(lambda: client.count() > 50, 30, what="steady traffic")
            # Alternate the two models so every swap changes the answer: 3.0 <-> 4.0.
            for version in (2, 3, 4):
                source = "half_plus_three" if version % 2 == 0 else "half_plus_two"
                expected = 4.0 if version % 2 == 0 else 3.0
                published = time.monotonic()
                copy_version(model_root / source / "123", base, version)
                wait_until(
                    lambda e=expected, p=published: client.first_answer(e, p) is not None, 30
                )
                pickup = client.first_answer(expected, published).sent - published
                load = server.manager.load_seconds("m", version)
                assert load is not None
                # One poll interval plus the load, plus scheduling slack on a busy 2-core box.
                assert pickup <= POLL_SECONDS + load + 1.0, (pickup, load)
                wait_until(
                    lambda v=version: (
                        server.manager.version_state("m", v - 1).state == VersionState.END
                    ),
                    30,
                )
        assert client.count() > 100
        assert client.failures == []
        statuses = _status(server.url)
        assert statuses["4"] == ("AVAILABLE", "OK", "")
        assert all(statuses[v][0] == "END" for v in ("1", "2", "3"))


def test_half_written_version_is_never_served(model_root, tmp_path):
    base = tmp_path / "m"
    copy_version(model_root / "half_plus_two" / "123", base, 1)
    with InProcessModelServer(_options(base)) as server:
        wait_for_version(server.url, "m", 1)
        with ContinuousClient(server.url, "m") as client:
            # A careless writer: saved_model.pb first, the variables and assets later (TF Serving #1086).
            source = model_root / "half_plus_three" / "123"
            (base / "2").mkdir()
            shutil.copy2(source / "saved_model.pb", base / "2" / "saved_model.pb")
            polls = server.server.source.poll_count
            wait_until(lambda: server.server.source.poll_count >= polls + 4, 10)
            (base / "2" / "variables").mkdir()
            shutil.copy2(
                source / "variables" / "variables.index",
                base / "2" / "variables" / "variables.index",
            )
            polls = server.server.source.poll_count
            wait_until(lambda: server.server.source.poll_count >= polls + 4, 10)
            assert _predict(server.url) == 3.0
            assert "2" not in _status(server.url)
            listing = httpx.get(f"{server.url}/v1/models").json()["models"][0]
            assert listing["incomplete_versions"] == ["2"]

            shutil.copytree(source / "assets", base / "2" / "assets")
            shutil.copy2(
                source / "variables" / "variables.data-00000-of-00001",
                base / "2" / "variables" / "variables.data-00000-of-00001",
            )
            wait_for_version(server.url, "m", 2)
            assert _predict(server.url) == 4.0
    # Until the upload finished, every answer came from version 1; nothing failed.
    assert client.failures == []
    assert {a.value for a in client.answers} <= {3.0, 4.0}


def _write_session_bundle_version(target) -> None:
    """A version in TF's pre-SavedModel format, like TF Serving's bad_half_plus_two."""
    shared = TF_SERVING_TESTDATA / "bad_half_plus_two" / "00000123"
    if shared.is_dir():
        shutil.copytree(shared, target)
        return
    target.mkdir(parents=True)
    (target / "export.meta").write_bytes(b"\x0a\x04meta")
    (target / "export").write_bytes(b"not a checkpoint")
    (target / "checkpoint").write_text('model_checkpoint_path: "export"\n')


def test_version_without_a_savedmodel_leaves_previous_serving_and_shows_its_error(
    model_root, tmp_path
):
    base = tmp_path / "m"
    copy_version(model_root / "half_plus_two" / "123", base, 1)
    options = _options(base, incomplete_version_timeout_seconds=1.0)
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 1)
        _write_session_bundle_version(base / "2")
        wait_until(lambda: "2" in _status(server.url), 20, what="version 2 in the status")
        state, code, message = _status(server.url)["2"]
        assert (state, code) == ("END", "NOT_FOUND")
        assert "not a loadable SavedModel" in message and "export.meta" in message
        assert _status(server.url)["1"] == ("AVAILABLE", "OK", "")
        assert _predict(server.url) == 3.0


def test_unloadable_savedmodel_is_retried_then_fails_leaving_previous_serving(model_root, tmp_path):
    base = tmp_path / "m"
    copy_version(model_root / "half_plus_two" / "123", base, 1)
    options = _options(base, max_num_load_retries=2, load_retry_interval_micros=100_000)
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 1)
        (base / "2").mkdir()
        (base / "2" / "saved_model.pb").write_bytes(b"this is not a protocol buffer")
        wait_until(lambda: _status(server.url).get("2", ("",))[0] == "END", 30)
        state, code, message = _status(server.url)["2"]
        assert state == "END" and code != "OK" and message
        assert _status(server.url)["1"] == ("AVAILABLE", "OK", "")
        assert _predict(server.url) == 3.0


def test_in_flight_requests_finish_on_the_version_they_started_on(model_root, tmp_path):
    base = tmp_path / "m"
    copy_version(model_root / "half_plus_two" / "123", base, 1)
    with InProcessModelServer(_options(base)) as server:
        wait_for_version(server.url, "m", 1)
        manager = server.manager
        handle = manager.acquire("m")  # a request that started on version 1 and is still running
        copy_version(model_root / "half_plus_three" / "123", base, 2)
        wait_for_version(server.url, "m", 2)
        wait_until(lambda: manager.version_state("m", 1).state == VersionState.UNLOADING, 10)
        time.sleep(POLL_SECONDS * 2)
        # Still held: version 1 is draining, not gone, and the held servable still answers.
        assert manager.version_state("m", 1).state == VersionState.UNLOADING
        signature = handle.servable.signatures["serving_default"]
        import numpy as np

        result = handle.servable.run(signature, {"x": np.array([[2.0]], np.float32)}, ["y"])
        assert result["y"].tolist() == [[3.0]]
        handle.release()
        wait_until(lambda: manager.version_state("m", 1).state == VersionState.END, 10)
        assert _predict(server.url) == 4.0


@pytest.mark.parametrize("num_versions", [2])
def test_latest_n_policy_serves_the_n_highest_complete_versions(model_root, tmp_path, num_versions):
    base = tmp_path / "m"
    for version in (1, 2, 3):
        copy_version(model_root / "half_plus_two" / "123", base, version)
    config = tmp_path / "models.config"
    config.write_text(
        f"model_config_list {{ config {{ name: 'm' base_path: '{base}' "
        f"model_version_policy {{ latest {{ num_versions: {num_versions} }} }} }} }}"
    )
    with InProcessModelServer(
        ServerOptions(model_config_file=str(config), file_system_poll_wait_seconds=POLL_SECONDS)
    ) as server:
        wait_for_version(server.url, "m", 3)
        wait_for_version(server.url, "m", 2)
        assert "1" not in _status(server.url) or _status(server.url)["1"][0] != "AVAILABLE"


def test_touching_every_file_of_the_serving_version_reloads_nothing(model_root, tmp_path, caplog):
    """A `touch` (or `cp` without -p, a re-upload of the same bytes) changes mtimes only: the
    version is the same content and keeps serving, with no load of any version, and the older
    version is never brought back (issue 13 review: an mtime in the identity made the server
    take it for a reused number and roll back to version 1)."""
    import logging
    import os

    caplog.set_level(logging.INFO, logger="tfrelay")
    base = tmp_path / "m"
    copy_version(model_root / "half_plus_two" / "123", base, 1)
    copy_version(model_root / "half_plus_three" / "123", base, 2)
    with InProcessModelServer(_options(base)) as server:
        wait_for_version(server.url, "m", 2)
        source = server.server.source
        polls = source.poll_count
        wait_until(lambda: source.poll_count >= polls + 2, 30, what="two polls")
        loads_before = caplog.text.count("Successfully loaded")
        assert loads_before >= 1  # the log is captured, so the count below means something
        later = time.time() + 100
        for path in (base / "2").rglob("*"):
            os.utime(path, (later, later))
        # Several polls see the new mtimes (the marker's HEAD notices them and re-judges).
        polls = source.poll_count
        wait_until(lambda: source.poll_count >= polls + 4, 60, what="four polls")
        assert "changed in storage" in caplog.text  # the touch was noticed ...
        assert caplog.text.count("Successfully loaded") == loads_before  # ... and loaded nothing
        assert "was reused" not in caplog.text and "replaced in storage" not in caplog.text
        assert _status(server.url) == {"2": ("AVAILABLE", "OK", "")}
        assert _predict(server.url) == 4.0

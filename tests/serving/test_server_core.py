"""ServerCore (issue 15): config reload, readiness and the tfrelay gauges, on real models and the
real manager, without a front end."""

from __future__ import annotations

import pathlib
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.models import copy_version
from support.servers import wait_until
from tfrelay.serving.config.model_config import ModelConfig
from tfrelay.serving.config.ssl import PemFiles, TlsSettings
from tfrelay.serving.core.config_file_watcher import ConfigFileWatcher
from tfrelay.serving.core.manager import VersionEvent
from tfrelay.serving.core.server_core import ServerCore
from tfrelay.serving.core.states import VersionState
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.metrics import ServingMetrics
from tfrelay.serving.options import ServerOptions

# The core is what the pipeline's Validator and pusher rely on through the server: both stacks.
pytestmark = pytest.mark.both_stacks


def _config_text(models: dict[str, pathlib.Path], extra: str = "") -> str:
    entries = " ".join(
        f"config {{ name: '{name}' base_path: '{base}' model_platform: 'tensorflow' {extra} }}"
        for name, base in models.items()
    )
    return f"model_config_list {{ {entries} }}"


def _write_config(path: pathlib.Path, text: str) -> None:
    staging = path.with_suffix(".tmp")
    staging.write_text(text)
    staging.replace(path)


def _core(**options) -> ServerCore:
    # Slow polls: every test asks for the polls it needs (apply_models polls at once).
    return ServerCore(ServerOptions(file_system_poll_wait_seconds=30, **options), ServingMetrics())


def _loaded_versions(core: ServerCore) -> dict[str, float]:
    families = {
        f.name: f for f in text_string_to_metric_families(core.metrics.exposition().decode())
    }
    gauge = families.get(":tfrelay:serving:loaded_versions")
    return {s.labels["model_name"]: s.value for s in gauge.samples} if gauge else {}


def _available(core: ServerCore, model: str, version: int) -> bool:
    try:
        return any(
            s.state == VersionState.AVAILABLE for s in core.manager.status(model, version=version)
        )
    except ServingError:
        return False


def _ended(core: ServerCore, model: str) -> bool:
    try:
        return all(s.state == VersionState.END for s in core.manager.status(model))
    except ServingError:
        return True


@pytest.fixture
def two_models(model_root, tmp_path) -> dict[str, pathlib.Path]:
    """Base paths of half_plus_two and half_plus_three, one version (1) each."""
    bases = {}
    for name in ("half_plus_two", "half_plus_three"):
        bases[name] = tmp_path / name
        copy_version(model_root / name / "123", bases[name], 1)
    return bases


def test_config_reload_applies_a_new_model_set(two_models, tmp_path):
    config = tmp_path / "models.config"
    _write_config(config, _config_text({"half_plus_two": two_models["half_plus_two"]}))
    core = _core(model_config_file=str(config))
    core.start()
    try:
        wait_until(lambda: core.is_ready(), 60, what="half_plus_two AVAILABLE")
        both = [ModelConfig(name, str(base)) for name, base in two_models.items()]

        # HandleReloadConfigRequest returns once the added model serves.
        core.reload_config(both, timeout=60)
        assert _available(core, "half_plus_three", 1)
        assert core.ready_models() == {"half_plus_two": True, "half_plus_three": True}
        with core.manager.acquire("half_plus_three") as servable:
            assert servable.version == 1

        # A label on a version that is not AVAILABLE rejects the reload as a whole.
        labelled = [ModelConfig("half_plus_two", str(two_models["half_plus_two"]), labels={"x": 9})]
        with pytest.raises(ServingError) as rejected:
            core.reload_config(labelled, timeout=10)
        assert rejected.value.code is Code.FAILED_PRECONDITION
        assert core.models == both

        # A model left out of the new set is unloaded, and leaves readiness and the listing.
        core.reload_config(both[1:], timeout=60)
        assert core.models == both[1:]
        assert core.ready_models() == {"half_plus_three": True}
        wait_until(lambda: _ended(core, "half_plus_two"), 30, what="half_plus_two unloaded")
        assert [m["name"] for m in core.describe_models()["models"]] == ["half_plus_three"]
        with pytest.raises(ServingError) as gone:
            core.manager.acquire("half_plus_two")
        assert gone.value.code is Code.NOT_FOUND
    finally:
        core.stop()
        core.close()


def test_the_config_file_watcher_applies_a_changed_file_and_keeps_the_running_one_otherwise(
    two_models, tmp_path
):
    config = tmp_path / "models.config"
    two = {"half_plus_two": two_models["half_plus_two"]}
    _write_config(config, _config_text(two))
    core = _core(model_config_file=str(config), model_config_file_poll_wait_seconds=0.1)
    core.start()
    try:
        wait_until(lambda: core.is_ready(), 60, what="half_plus_two AVAILABLE")
        # The core's own watcher thread picks up a new file.
        _write_config(config, _config_text(two_models))
        wait_until(lambda: _available(core, "half_plus_three", 1), 60, what="the watcher")
        assert [m.name for m in core.models] == ["half_plus_two", "half_plus_three"]
        running = core.models

        # A watcher of the same file, checked by hand: no change, a file that does not parse,
        # and a config the core rejects all keep the running config.
        watcher = ConfigFileWatcher(str(config), 3600, lambda: core.models, core.apply_models)
        assert watcher.check_once() is False
        _write_config(config, "this is not a config")
        assert watcher.check_once() is False
        _write_config(config, _config_text(two, "version_labels { key: 'x' value: 9 }"))
        assert watcher.check_once() is False
        assert core.models == running
        _write_config(config, _config_text(two))
        assert watcher.check_once() is True
        assert [m.name for m in core.models] == ["half_plus_two"]
    finally:
        core.stop()
        core.close()


def test_readiness_follows_version_events_and_holds_through_a_swap(model_root, tmp_path):
    base = tmp_path / "m"
    base.mkdir()
    core = _core(model_name="m", model_base_path=str(base))
    seen: list[tuple[int, VersionState, bool]] = []

    def on_event(event: VersionEvent) -> None:
        # Subscribed after the core's monitor, so readiness already reflects this event.
        seen.append((event.version, event.state, core.ready_models()["m"]))

    core.start()
    try:
        assert core.ready_models() == {"m": False}
        assert not core.is_ready()
        core.manager.subscribe(on_event)
        copy_version(model_root / "half_plus_two" / "123", base, 1)
        core.source.poll_now()
        wait_until(lambda: core.is_ready(), 60, what="version 1 AVAILABLE")
        assert seen == [(1, VersionState.LOADING, False), (1, VersionState.AVAILABLE, True)]

        # Version 2 loads before version 1 unloads (availability preserving): never unready.
        copy_version(model_root / "half_plus_three" / "123", base, 2)
        core.source.poll_now()
        wait_until(lambda: (1, VersionState.END, True) in seen, 60, what="the swap")
        assert seen[2:] == [
            (2, VersionState.LOADING, True),
            (2, VersionState.AVAILABLE, True),
            (1, VersionState.UNLOADING, True),
            (1, VersionState.END, True),
        ]
        assert core.monitor.available("m") == {2}

        # No model configured: nothing is ready.
        core.apply_models([])
        assert core.ready_models() == {}
        assert not core.is_ready()
    finally:
        core.stop()
        core.close()
    assert core.monitor.available("m") == frozenset()


def test_gauges_follow_events_without_polling_the_manager(model_root, tmp_path):
    base = tmp_path / "m"
    copy_version(model_root / "half_plus_two" / "123", base, 1)
    core = _core(model_name="m", model_base_path=str(base))
    assert _loaded_versions(core) == {}
    core.start()
    try:
        wait_until(lambda: _loaded_versions(core) == {"m": 1}, 60, what="the gauge to count 1")

        # While something holds the manager's lock (a reconcile, a long status call), a scrape
        # and a readiness probe still answer: they read the event-fed monitor, not the manager.
        held, release = threading.Event(), threading.Event()

        def hold_the_manager() -> bool:
            held.set()
            release.wait(30)
            return True

        holder = threading.Thread(target=core.manager.wait_for, args=(hold_the_manager, 30))
        holder.start()
        assert held.wait(10)
        answers: dict[str, object] = {}
        reader = threading.Thread(
            target=lambda: answers.update(gauge=_loaded_versions(core), ready=core.is_ready())
        )
        reader.start()
        reader.join(timeout=5)
        blocked = reader.is_alive()
        release.set()
        holder.join(timeout=10)
        reader.join(timeout=10)
        assert not blocked, "the gauge or readiness waited for the manager's lock"
        assert answers == {"gauge": {"m": 1}, "ready": True}

        # A swap keeps the count at one once it settles; a removed model leaves the gauge.
        copy_version(model_root / "half_plus_three" / "123", base, 2)
        core.source.poll_now()
        wait_until(lambda: core.monitor.available("m") == {2}, 60, what="version 2 alone")
        assert _loaded_versions(core) == {"m": 1}
        core.apply_models([])
        assert _loaded_versions(core) == {}
    finally:
        core.stop()
        core.close()


def test_the_tls_key_lives_on_disk_only_while_it_is_loaded():
    settings = TlsSettings(server_key="-----BEGIN PRIVATE KEY-----\n", server_cert="cert")
    with PemFiles(settings) as files:
        key = pathlib.Path(files.key_path)
        assert key.read_text() == settings.server_key
        assert key.stat().st_mode & 0o777 == 0o600
        assert key.parent.stat().st_mode & 0o777 == 0o700
        assert pathlib.Path(files.cert_path).read_text() == "cert"
    assert not key.parent.exists()

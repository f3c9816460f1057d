"""A version deleted and then put back (issue 13): it was unloaded (END) and is aspired again,
so it loads again, as TF Serving does; the manager used to re-arm only versions in START."""

from __future__ import annotations

import shutil
import time

from support.load import ContinuousClient
from support.servers import InProcessModelServer, wait_for_version, wait_until
from tfrelay.components.pusher import push
from tfrelay.serving.options import ServerOptions


def test_deleted_version_put_back_serves_again(models, tmp_path):
    base = tmp_path / "m"
    for model in (models[3.0], models[4.0]):
        push.push_model(push.PushRequest(str(model), str(base), "m"))
    options = ServerOptions(
        model_name="m", model_base_path=str(base), file_system_poll_wait_seconds=0.5
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 2)
        with ContinuousClient(server.url, "m", threads=2) as client:
            wait_until(lambda: client.count() > 20, 30)
            shutil.move(base / "2", tmp_path / "aside")
            wait_until(lambda: server.manager.version_state("m", 2).state.name == "END", 30)
            assert server.manager.version_state("m", 1).state.name == "AVAILABLE"
            put_back_at = time.monotonic()
            shutil.move(tmp_path / "aside", base / "2")
            wait_until(lambda: client.first_answer(4.0, put_back_at) is not None, 30)
            wait_until(lambda: server.manager.version_state("m", 1).state.name == "END", 30)
        assert client.failures == [], client.failures[:3]

"""Rolling back by deleting the newest version (issue 13, TF Serving's file-system source 1.6):
every server loads the latest remaining version first, then unloads the deleted one, with no
failed request; a later push takes a new number (the high-water mark) and serves."""

from __future__ import annotations

import time

from support.load import ContinuousClient
from support.servers import ModelServerProcess, wait_for_version, wait_until

PREFIX = "rollback/m"


def test_deleting_the_newest_version_makes_every_server_serve_the_previous_one(
    lc, server_env, models, tmp_path
):
    assert lc.push(models[3.0], PREFIX) == 1
    assert lc.push(models[4.0], PREFIX) == 2
    flags = [
        "--model_name=m",
        f"--model_base_path=s3://models/{PREFIX}",
        f"--file_system_poll_wait_seconds={lc.poll_seconds:g}",
    ]
    servers = [
        ModelServerProcess(flags, log_path=tmp_path / f"server{i}.log", env=server_env)
        for i in range(2)
    ]
    try:
        for server in servers:
            server.start()
        for server in servers:
            wait_for_version(server.url, "m", 2)
        # Two single-thread clients per server: "never the old answer again" is checked per
        # thread, where the order of requests is exact (issue 13 review).
        per_server = [lc.single_thread_clients(server.url, 2) for server in servers]
        clients = [client for group in per_server for client in group]
        for client in clients:
            client.__enter__()
        try:
            wait_until(lambda: all(c.count() > 10 for c in clients), 30, what="clients running")
            deleted_at = time.monotonic()
            assert lc.delete_version(PREFIX, 2) > 3
            for server, group in zip(servers, per_server, strict=True):
                for client in group:
                    wait_until(
                        lambda c=client: c.first_answer(3.0, deleted_at) is not None,
                        60,
                        what="the previous version answering",
                    )
                pickup = min(c.first_answer(3.0, deleted_at).sent for c in group) - deleted_at
                wait_until(lambda s=server: lc.state_of(s.url, 2) == "END", 60, what="2 unloaded")
                load = lc.version_states(server.url)[1]["load_seconds"]
                print(
                    f"rollback: previous version answering {pickup:.2f}s after the delete "
                    f"(its load took {load:.2f}s)"
                )
                # Within a few polls plus version 1's load time: generous, so a loaded 2-core
                # CI machine passes, yet far below the old behaviour (never).
                assert pickup <= 3 * lc.poll_seconds + load + 5.0, (pickup, load)
                assert "is gone from" in server.log()
                # No answer from the deleted version once this thread saw the rollback.
                for client in group:
                    assert not lc.other_answers_after_first(client, 3.0, deleted_at)

            # The next push takes a number never used before and every server serves it.
            assert lc.push(models[5.0], PREFIX) == 3
            for server, group in zip(servers, per_server, strict=True):
                wait_for_version(server.url, "m", 3)
                for client in group:
                    wait_until(lambda c=client: c.first_answer(5.0) is not None, 30)
        finally:
            for client in clients:
                client.__exit__(None, None, None)
        for client in clients:
            print(f"client: {client.count()} requests, {len(client.failures)} failed")
            assert client.count() > 50
            assert client.failures == [], client.failures[:3]
    finally:
        for server in servers:
            server.stop()


def test_deleting_the_newest_local_version_rolls_back_too(models, tmp_path):
    import shutil

    from support.servers import InProcessModelServer
    from tfrelay.components.pusher import push
    from tfrelay.serving.options import ServerOptions

    base = tmp_path / "m"
    for model in (models[3.0], models[4.0]):
        push.push_model(push.PushRequest(str(model), str(base), "m"))
    options = ServerOptions(
        model_name="m", model_base_path=str(base), file_system_poll_wait_seconds=1.0
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 2)
        with ContinuousClient(server.url, "m", threads=2) as client:
            wait_until(lambda: client.count() > 20, 30)
            deleted_at = time.monotonic()
            shutil.rmtree(base / "2")
            wait_until(lambda: client.first_answer(3.0, deleted_at) is not None, 30)
            wait_until(lambda: server.manager.version_state("m", 2).state.name == "END", 30)
            assert push.push_model(push.PushRequest(str(models[5.0]), str(base), "m")).version == 3
            wait_for_version(server.url, "m", 3)
            wait_until(lambda: client.first_answer(5.0, deleted_at) is not None, 30)
        assert client.failures == [], client.failures[:3]

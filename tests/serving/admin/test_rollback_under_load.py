"""The acceptance point of issue 16 part 3: `tfrelay models rollback --to 1` under steady client
load. Two replicas poll one S3 base path (moto_server) every second; the rollback republishes
version 1's files as version 3 (server-side copies, marker last); both replicas converge on it
within one poll interval plus their load time, and not one request fails. A second identical
rollback creates nothing.
"""

from __future__ import annotations

from support.servers import ModelServerProcess, wait_for_version

PREFIX = "rollback/m"
POLL_SECONDS = 1.0
# Beyond the poll interval and the load (copy from moto, TF load, measured by the server): the
# judging of the new version (one recursive listing, two small reads) and scheduling on two
# shared cores with four client threads, two servers and moto busy.
MARGIN_SECONDS = 2.0


def test_rollback_under_steady_load_converges_every_replica_without_a_failed_request(
    admin, s3_env, models, tmp_path
):
    assert admin.publish(s3_env, models[3.0], PREFIX, run_id="run-1") == 1
    assert admin.publish(s3_env, models[4.0], PREFIX, run_id="run-2") == 2
    flags = [
        "--model_name=m",
        f"--model_base_path=s3://{admin.bucket}/{PREFIX}",
        f"--file_system_poll_wait_seconds={POLL_SECONDS:g}",
    ]
    replicas = [
        ModelServerProcess(flags, log_path=tmp_path / f"replica{i}.log", env=s3_env)
        for i in range(2)
    ]
    with admin.started(replicas):
        for replica in replicas:
            wait_for_version(replica.url, "m", 2, timeout=60)
        targets = [(replica.url, replica.grpc_port) for replica in replicas]
        with admin.SteadyLoad(targets, max_seconds=90) as load:
            admin.wait_for(lambda: load.count() > 100, 30, "the load to run")

            marker = f"{PREFIX}/3/saved_model.pb"
            with admin.AppearanceWatch(s3_env, marker) as watch:
                run = admin.run_tfrelay(
                    s3_env, "models", "rollback", f"s3://{admin.bucket}/{PREFIX}", "--to", "1"
                )
                admin.wait_for(lambda: watch.seen_at, 10, "the publish marker of version 3")
            # Measured from the moment the publish marker was visible in the bucket.
            published = watch.seen_at
            assert run.code == 0, run
            assert "rolled back: version 3" in run.out, run.out
            assert "uploaded 5/5 files" in run.err  # progress, one line per file

            figures = []
            for index, replica in enumerate(replicas):
                for kind in ("rest", "grpc"):
                    admin.wait_for(
                        lambda index=index, kind=kind: load.first(index, kind, 3.0, published),
                        30,
                        f"replica {index} answering version 1's 3.0 over {kind}",
                    )
                first = min(load.first(index, k, 3.0, published).sent for k in ("rest", "grpc"))
                loaded = admin.load_seconds(replica.url, 3)
                pickup = first - published
                figures.append((index, pickup, loaded))
                print(
                    f"replica {index}: serves v3 {pickup:.2f} s after its publish marker landed "
                    f"(poll {POLL_SECONDS:g} s + load {loaded:.2f} s + margin {MARGIN_SECONDS:g} s "
                    f"= bound {POLL_SECONDS + loaded + MARGIN_SECONDS:.2f} s)"
                )
                assert pickup <= POLL_SECONDS + loaded + MARGIN_SECONDS, figures
            # Let a few more requests through on the new version before stopping.
            settle = load.count()
            admin.wait_for(lambda: load.count() > settle + 50, 30, "more answers after the swap")

        assert load.failures() == [], load.failures()[:5]
        for index, replica in enumerate(replicas):
            assert admin.states(replica.url)[3] == "AVAILABLE"
            for kind in ("rest", "grpc"):
                # Once a replica answered from v3, it never answered from v2 again.
                assert load.after_first(index, kind, 3.0, published) == [], (index, kind)

        again = admin.run_tfrelay(
            s3_env, "models", "rollback", f"s3://{admin.bucket}/{PREFIX}", "--to", "1"
        )
        assert again.code == 0, again
        assert "nothing to do: version 3" in again.out, again.out
        assert admin.versions_in(s3_env, PREFIX) == [1, 2, 3]

    listing = admin.run_tfrelay(s3_env, "models", "list", f"s3://{admin.bucket}/{PREFIX}", "--json")
    document = admin.json_of(listing)
    assert document["high_water_mark"] == 3
    newest = document["versions"][0]
    assert (newest["version"], newest["state"], newest["rollback_of"]) == (3, "published", 1)
    # The original lineage travels with the copy; the checksum is version 1's.
    assert newest["run_id"] == "run-1" and newest["metrics"] == {"accuracy": 0.9}
    assert newest["checksum"] == document["versions"][2]["checksum"]

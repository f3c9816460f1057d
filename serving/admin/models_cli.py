"""`tfrelay models`: list, roll back and label model versions, without touching a server.

    tfrelay models list BASE_PATH [--endpoint HOST:PORT ...] [--model NAME] [--json]
    tfrelay models rollback BASE_PATH --to N
    tfrelay models label CONFIG_URL MODEL [LABEL=VERSION ...] [--remove LABEL ...]

Argument parsing and output only; the work is in `listing.py`, `endpoints.py`, `rollback.py`
and `labels.py`. Expected failures (`AdminError`) print one line and exit 2; progress goes to
stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from tfrelay.serving.admin.errors import AdminError

_EPILOG = """\
examples:
  tfrelay models list s3://my-bucket/models/penguins --endpoint 10.0.0.5:8501 --endpoint 10.0.0.6:8501
  tfrelay models rollback s3://my-bucket/models/penguins --to 7
  tfrelay models label s3://my-bucket/serving/models.config penguins stable=7 canary=8
  tfrelay models label ./models.config penguins --remove canary

Storage access comes from the environment, as for the model server: AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION (plus S3_ENDPOINT=host:port and S3_USE_HTTPS=0 for MinIO)
for s3://; GOOGLE_APPLICATION_CREDENTIALS for gs://.

exit codes: 0 done (or nothing to do), 2 a missing or unpublished version, no permission, an
unreachable endpoint, a malformed config or bad arguments (one line on stderr says what to do).
"""

_NOISY_LOGGERS = ("botocore", "s3fs", "fsspec", "urllib3", "aiobotocore", "google", "absl")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrelay models",
        description="Inspect, roll back and label model versions in the bucket. Every replica "
        "polling the bucket (or re-reading --model_config_file) follows; no server is touched.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds each storage call may take (default 30)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = sub.add_parser(
        "list",
        help="every version with its state, size and lineage, and what each server serves",
        description="List every version under BASE_PATH as the model server judges it: "
        "published, uploading (a push in progress or interrupted), incomplete or broken.",
    )
    listing.add_argument("base_path", metavar="BASE_PATH")
    listing.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="a model server's REST address (--rest_api_port); repeat for each replica",
    )
    listing.add_argument(
        "--model",
        default=None,
        help="the model's name on the servers (default: the last component of BASE_PATH)",
    )
    listing.add_argument(
        "--endpoint-timeout",
        type=float,
        default=5.0,
        help="seconds to connect to and hear from each endpoint (default 5)",
    )
    listing.add_argument("--json", action="store_true", help="one JSON document, for scripts")

    rollback = sub.add_parser(
        "rollback",
        help="republish version N's files as the next version (idempotent)",
        description="Republish version N's files as the next version under BASE_PATH (a "
        "server-side copy, marker last), so every polling replica swaps to N's model. Running "
        "it again does nothing once the newest published version holds N's model.",
    )
    rollback.add_argument("base_path", metavar="BASE_PATH")
    rollback.add_argument("--to", type=int, required=True, metavar="N", help="the version")

    labels = sub.add_parser(
        "label",
        help="set or remove version labels in a ModelServerConfig file (local or in the bucket)",
        description="Edit MODEL's version_labels in CONFIG_URL, the servers' "
        "--model_config_file, after TF Serving's label checks; written whole in one step.",
    )
    labels.add_argument("config_url", metavar="CONFIG_URL")
    labels.add_argument("model", metavar="MODEL")
    labels.add_argument("assignments", nargs="*", metavar="LABEL=VERSION")
    labels.add_argument(
        "--remove", action="append", default=[], metavar="LABEL", help="remove a label"
    )
    labels.add_argument(
        "--allow-unavailable",
        action="store_true",
        help="let a new label name a version that is not published or not served, for servers "
        "run with --allow_version_labels_for_unavailable_models",
    )
    return parser


def _list(args: argparse.Namespace) -> int:
    from tfrelay.serving.admin import endpoints, listing

    for endpoint in args.endpoint:
        endpoints.parse_endpoint(endpoint)  # a typo fails before any storage call
    found = listing.list_base_path(args.base_path, timeout_seconds=args.timeout)
    model = args.model or found.base_path.rstrip("/").rsplit("/", 1)[-1]
    statuses = tuple(endpoints.query(e, model, args.endpoint_timeout) for e in args.endpoint)
    found = listing.Listing(found.base_path, found.versions, found.high_water_mark, statuses, model)
    if args.json:
        print(json.dumps(listing.as_json(found), indent=2, sort_keys=True))
    else:
        print(listing.render_table(found))
    error = endpoints.unreachable_error(list(statuses), model)
    if error is not None:
        raise error
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from tfrelay.serving.admin import rollback

    result = rollback.rollback(args.base_path, args.to, timeout_seconds=args.timeout)
    print(result.describe())
    return 0


def _label(args: argparse.Namespace) -> int:
    from tfrelay.serving.admin import labels

    assignments: dict[str, int] = {}
    for text in args.assignments:
        name, version = labels.parse_assignment(text)
        if name in assignments and assignments[name] != version:
            raise AdminError(f"label {name!r} is given twice ({assignments[name]} and {version})")
        assignments[name] = version
    if not assignments and not args.remove:
        raise AdminError("give at least one LABEL=VERSION or --remove LABEL")
    result = labels.label(
        args.config_url,
        args.model,
        assignments,
        args.remove,
        allow_unavailable=args.allow_unavailable,
        timeout_seconds=args.timeout,
    )
    print(result.describe())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `tfrelay models ACTION ...`.

    Args:
      argv: the arguments after `models`; defaults to `sys.argv[1:]`.

    Returns:
      0 on success (or nothing to do), 2 on an expected failure or bad arguments.
    """
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="tfrelay models: %(message)s",
        stream=sys.stderr,
    )
    # Progress comes from the bucket writer's logger; the storage clients' chatter and the
    # storage layer's per-call warnings (the error line says it once) stay out.
    for noisy in (*_NOISY_LOGGERS, "tfrelay.serving.storage.calls"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    action = {"list": _list, "rollback": _rollback, "label": _label}[args.action]
    try:
        return action(args)
    except AdminError as err:
        print(f"tfrelay models {args.action}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

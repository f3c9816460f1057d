"""`tfrelay push SAVED_MODEL_DIR BASE_PATH`: publish a model directory by hand.

What infra teams type in an incident (push a known-good model, roll forward past a bad one). It
is a thin wrapper over `push.push_model`, so it follows the bucket contract exactly like the
BucketPusher: the next version number (never one used before), files first and the publish
marker last, idempotent when run again. It needs no TFX: it runs on the serving-only install.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tfrelay.components.pusher import push

_EPILOG = """\
examples:
  tfrelay push ./export/penguins s3://my-bucket/models/penguins
  tfrelay push gs://staging/penguins/7 gs://prod/models/penguins --keep_last 3
  tfrelay push /tmp/half_plus_two /srv/models/half_plus_two --model_name half_plus_two

Storage access comes from the environment, as for the model server: AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION (plus S3_ENDPOINT=host:port and S3_USE_HTTPS=0 for MinIO)
for s3://; GOOGLE_APPLICATION_CREDENTIALS for gs://.

exit codes: 0 pushed (or already there), 1 the push failed (nothing half-written is served;
running the same command again resumes or completes it), 2 bad arguments.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrelay push",
        description=(
            "Publish SAVED_MODEL_DIR (a SavedModel or TFLite model directory, local or in a\n"
            "bucket) as the next version under BASE_PATH, the directory the model server's\n"
            "--model_base_path points to. Progress lines go to stderr, the result to stdout."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("saved_model_dir", metavar="SAVED_MODEL_DIR")
    parser.add_argument("base_path", metavar="BASE_PATH")
    parser.add_argument(
        "--model_name",
        default=None,
        help="name recorded in the push record (default: the last component of BASE_PATH)",
    )
    parser.add_argument(
        "--keep_last",
        type=int,
        default=0,
        help="after the push, delete the oldest published versions beyond the newest N "
        "(default 0: keep every version)",
    )
    parser.add_argument(
        "--versioning",
        choices=push.VERSIONING_CHOICES,
        default=push.VERSIONING_NEXT_INTEGER,
        help="next_integer (default): one more than any version used before; unix_timestamp: "
        "seconds since the epoch",
    )
    parser.add_argument(
        "--reason",
        default="pushed by hand with `tfrelay push`",
        help="why this model is pushed (recorded in the push record)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the result line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `tfrelay push`.

    Args:
      argv: the arguments after `push`; defaults to `sys.argv[1:]`.

    Returns:
      0 when the model is published (or was already), 1 when the push failed, 2 for bad
      arguments.
    """
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="tfrelay push: %(message)s",
        stream=sys.stderr,
    )
    # Progress lines come from the bucket writer's logger; the storage clients' own chatter stays
    # out.
    for noisy in ("botocore", "s3fs", "fsspec", "urllib3", "aiobotocore", "google"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        # The settings are validated once, here (issue 15); None names the model after BASE_PATH.
        settings = push.PushSettings.create(
            args.base_path, args.model_name or None, args.keep_last, args.versioning
        )
        request = push.PushRequest.from_settings(
            settings, args.saved_model_dir, selection_reason=args.reason
        )
        result = push.push_model(request)
    except ValueError as err:
        print(f"tfrelay push: error: {err}", file=sys.stderr)
        return 2
    except push.PushError as err:
        print(f"tfrelay push: failed: {err}", file=sys.stderr)
        return 1
    print(result.reason)
    return 0

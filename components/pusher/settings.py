"""The BucketPusher's settings, validated in one place (issue 15).

Before issue 15 the four checks below ran three times per push, each caller applying its own
defaults: at component construction, in the executor and again in `push_model`. Now
`PushSettings` is built once, which validates it and resolves the defaults; the executor builds
it from its exec properties and hands it to `push_model` inside the `PushRequest`, which trusts
it. The component (where runtime parameters are not known yet) uses `validate_known`. No TFX
here: `tfrelay push` and the push API run on the serving-only install.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.filesystem import split_url
from tfrelay.serving.storage.publication import (
    VERSIONING_CHOICES,
    VERSIONING_NEXT_INTEGER,
    VERSIONING_UNIX_TIMESTAMP,
)

__all__ = [
    "SUPPORTED_PROTOCOLS",
    "VERSIONING_CHOICES",
    "VERSIONING_NEXT_INTEGER",
    "VERSIONING_UNIX_TIMESTAMP",
    "PushSettings",
    "default_model_name",
    "validate_base_path",
    "validate_keep_last",
    "validate_known",
    "validate_model_name",
    "validate_versioning",
]

# Protocols as `split_url` names them (it maps file://, local:// and plain paths to "file").
SUPPORTED_PROTOCOLS = ("file", "s3", "gs")


def validate_base_path(base_path: object) -> None:
    """Checks that `base_path` names a model base path the pusher can write.

    Args:
      base_path: the value given for the component's `base_path`.

    Raises:
      ValueError: empty, an unsupported scheme, no bucket, credentials in the URL, or a path that
        ends in a version directory; the message says how to fix it.
    """
    example = (
        "'s3://my-bucket/models/penguins', 'gs://my-bucket/models/penguins' or "
        "'/srv/models/penguins'"
    )
    if not isinstance(base_path, str) or not base_path.strip():
        raise ValueError(
            "base_path is required: the directory that holds the model's integer version "
            "directories, exactly what the model server's --model_base_path points to, e.g. "
            f"{example}."
        )
    protocol, path = split_url(base_path)
    if protocol not in SUPPORTED_PROTOCOLS:
        raise ValueError(
            f"base_path {base_path!r} uses the unsupported scheme {protocol!r}: the BucketPusher "
            f"writes local paths, file://, s3:// and gs://, e.g. {example}."
        )
    if protocol != "file":
        bucket_name = path.split("/", 1)[0]
        if not bucket_name:
            raise ValueError(
                f"base_path {base_path!r} names no bucket: use {protocol}://<bucket>/<prefix>, "
                f"e.g. {protocol}://my-bucket/models/penguins."
            )
        if "@" in bucket_name:
            raise ValueError(
                f"base_path {base_path!r} carries credentials: remove them from the URL; the "
                "pusher reads credentials from the environment (AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY for s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://)."
            )
    last = posixpath.basename(path.rstrip("/"))
    if bucket.parse_version(last) is not None:
        parent = base_path.rstrip("/").rsplit("/", 1)[0]
        raise ValueError(
            f"base_path {base_path!r} ends in what looks like a version directory ({last!r}): "
            f"point it at the directory that holds the versions (here probably {parent!r}), "
            "as --model_base_path does; the pusher creates the version directories itself."
        )


def validate_keep_last(keep_last: object) -> None:
    """Checks the retention setting.

    Args:
      keep_last: the value given for the component's `keep_last`.

    Raises:
      ValueError: not a whole number >= 0.
    """
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0:
        raise ValueError(
            f"keep_last must be a whole number >= 0, got {keep_last!r}: 0 keeps every version; "
            "N > 0 deletes the oldest published versions beyond the newest N after each push "
            "(2 or more lets the server keep serving the previous version while it swaps)."
        )


def validate_versioning(versioning: object) -> None:
    """Checks the versioning scheme.

    Args:
      versioning: the value given for the component's `versioning`.

    Raises:
      ValueError: not one of VERSIONING_CHOICES.
    """
    if versioning not in VERSIONING_CHOICES:
        raise ValueError(
            f"versioning must be {VERSIONING_NEXT_INTEGER!r} (one more than the highest version "
            f"directory; the default) or {VERSIONING_UNIX_TIMESTAMP!r} (seconds since the epoch, "
            f"as TFX's Pusher does), got {versioning!r}."
        )


def validate_model_name(model_name: object) -> None:
    """Checks an explicitly given model name (None means: derive it from the base path).

    Args:
      model_name: the value given for the component's `model_name`.

    Raises:
      ValueError: given but empty or not a string.
    """
    if model_name is not None and (not isinstance(model_name, str) or not model_name.strip()):
        raise ValueError(
            f"model_name must be a non-empty string, got {model_name!r}; leave it unset to use "
            "the last component of base_path."
        )


def default_model_name(base_path: str) -> str:
    """The model name used when none is given: the last path component of the base path.

    Args:
      base_path: a valid base path.

    Returns:
      e.g. "penguins" for "s3://bucket/models/penguins".
    """
    _, path = split_url(base_path)
    return posixpath.basename(path.rstrip("/")) or path


@dataclass(frozen=True)
class PushSettings:
    """Where and how to push, valid by construction.

    Build it with `PushSettings.create`, which applies the component's defaults to unset (None)
    values; constructing it directly validates the same way but takes no None but `model_name`.

    Attributes:
      base_path: the model's base path, the directory holding the integer version directories.
      model_name: recorded in the push record; defaults to the last component of `base_path`.
      keep_last: 0 keeps every version; N > 0 keeps only the newest N published versions.
      versioning: VERSIONING_NEXT_INTEGER or VERSIONING_UNIX_TIMESTAMP.

    Raises:
      ValueError: an invalid setting; the message says how to fix it.
    """

    base_path: str
    model_name: str | None = None
    keep_last: int = 0
    versioning: str = VERSIONING_NEXT_INTEGER

    def __post_init__(self) -> None:
        validate_base_path(self.base_path)
        validate_model_name(self.model_name)
        validate_keep_last(self.keep_last)
        validate_versioning(self.versioning)
        if self.model_name is None:
            # Frozen, so the resolved default is set the one way a frozen dataclass allows.
            object.__setattr__(self, "model_name", default_model_name(self.base_path))

    @classmethod
    def create(
        cls,
        base_path: object,
        model_name: object = None,
        keep_last: object = None,
        versioning: object = None,
    ) -> PushSettings:
        """Validated settings from the component's parameters or the executor's exec properties.

        Args:
          base_path: required.
          model_name: None for the base path's last component.
          keep_last: None for 0 (keep every version).
          versioning: None (or "") for VERSIONING_NEXT_INTEGER.

        Returns:
          The settings, defaults applied.

        Raises:
          ValueError: an invalid setting; the message says how to fix it.
        """
        return cls(
            base_path=base_path,  # type: ignore[arg-type]  # validated in __post_init__
            model_name=model_name,  # type: ignore[arg-type]
            keep_last=0 if keep_last is None else keep_last,  # type: ignore[arg-type]
            versioning=versioning or VERSIONING_NEXT_INTEGER,  # type: ignore[arg-type]
        )


def validate_known(
    base_path: object,
    model_name: object,
    keep_last: object,
    versioning: object,
    known: Callable[[object], bool],
) -> PushSettings | None:
    """The component's check: the settings when every value is known, else the known ones.

    Runtime parameters and placeholders are resolved only when the pipeline runs, where the
    executor builds `PushSettings` from its exec properties.

    Args:
      base_path: the component's `base_path`.
      model_name: its `model_name`.
      keep_last: its `keep_last`.
      versioning: its `versioning`.
      known: whether a value is known at construction (not a runtime parameter / placeholder).

    Returns:
      The validated settings when all four are known, else None.

    Raises:
      ValueError: a known value is invalid.
    """
    values = (base_path, model_name, keep_last, versioning)
    if all(known(value) for value in values):
        return PushSettings.create(*values)
    checks = (validate_base_path, validate_model_name, validate_keep_last, validate_versioning)
    for check, value in zip(checks, values, strict=True):
        if known(value):
            check(value)
    return None

"""fsspec file systems for model paths, configured by the environment TF Serving users already set.

`s3://` reads TensorFlow's S3 variables (`S3_ENDPOINT` as `host[:port]`, `S3_USE_HTTPS`,
`S3_VERIFY_SSL`, `AWS_REGION`) so a manifest written for tensorflow_model_server + tensorflow-io
keeps working; credentials come from boto's usual chain (`AWS_ACCESS_KEY_ID`, ...). `gs://` uses
Google's default credentials (`GOOGLE_APPLICATION_CREDENTIALS`) or `STORAGE_EMULATOR_HOST`.
Plain paths and `file://` are local.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import fsspec

_LOCAL_PROTOCOLS = ("file", "local")
_EXTRA_OF_PROTOCOL = {"s3": "s3", "gs": "gcs", "gcs": "gcs"}


def split_url(url: str) -> tuple[str, str]:
    """Splits a model path into (protocol, path-as-fsspec-wants-it).

    Args:
      url: `s3://bucket/key`, `gs://bucket/key`, `file:///abs/path` or a plain local path.

    Returns:
      ("s3", "bucket/key"), ("gs", "bucket/key") or ("file", "/abs/path").
    """
    if "://" not in url:
        return "file", os.path.abspath(os.path.expanduser(url))
    protocol, rest = url.split("://", 1)
    protocol = protocol.lower()
    if protocol in _LOCAL_PROTOCOLS:
        return "file", os.path.abspath(rest)
    if protocol == "gcs":
        protocol = "gs"
    return protocol, rest.rstrip("/")


def is_local(url: str) -> bool:
    """Whether `url` names a path on this machine's file system."""
    return split_url(url)[0] == "file"


def _truthy(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def s3_options(environ: Mapping[str, str]) -> dict:
    """s3fs constructor options from TensorFlow's and AWS's environment variables.

    Args:
      environ: the environment to read (normally `os.environ`).

    Returns:
      Keyword arguments for `s3fs.S3FileSystem`.
    """
    client_kwargs: dict = {}
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        client_kwargs["region_name"] = region
    endpoint = environ.get("S3_ENDPOINT") or environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        if "://" not in endpoint:
            # TensorFlow takes host[:port] and decides the scheme from S3_USE_HTTPS.
            scheme = "https" if _truthy(environ.get("S3_USE_HTTPS"), True) else "http"
            endpoint = f"{scheme}://{endpoint}"
        client_kwargs["endpoint_url"] = endpoint
    if not _truthy(environ.get("S3_VERIFY_SSL"), True):
        client_kwargs["verify"] = False
    # Listings must be fresh on every poll: a cached listing would hide new versions.
    options: dict = {"client_kwargs": client_kwargs, "use_listings_cache": False}
    # Keys given in this environment win; otherwise boto's own chain (instance profile, IRSA,
    # ~/.aws) applies.
    if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        options["key"] = environ["AWS_ACCESS_KEY_ID"]
        options["secret"] = environ["AWS_SECRET_ACCESS_KEY"]
        if environ.get("AWS_SESSION_TOKEN"):
            options["token"] = environ["AWS_SESSION_TOKEN"]
    return options


def gcs_options(environ: Mapping[str, str]) -> dict:
    """gcsfs constructor options: default credentials, or anonymous against an emulator.

    Args:
      environ: the environment to read (normally `os.environ`).

    Returns:
      Keyword arguments for `gcsfs.GCSFileSystem`.
    """
    options: dict = {"use_listings_cache": False}
    emulator = environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        options["endpoint_url"] = emulator if "://" in emulator else f"http://{emulator}"
        if not environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            options["token"] = "anon"
    return options


def _new_filesystem(protocol: str, options: dict) -> fsspec.AbstractFileSystem:
    if protocol == "gs":
        # gcsfs 2026 makes `gcsfs.GCSFileSystem` its experimental ExtendedGcsFileSystem unless
        # GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false. That one first asks the Storage Control gRPC
        # API for each bucket's layout: against the GCS emulator it retried over TLS until the
        # test timed out (issue 14). tfrelay's bounded storage calls are written for the JSON API
        # client, which plain and hierarchical buckets both serve.
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(skip_instance_cache=True, **options)
    # skip_instance_cache: we cache ourselves, keyed on the environment we read.
    return fsspec.filesystem(protocol, skip_instance_cache=True, **options)


@dataclass(frozen=True)
class _FsKey:
    protocol: str
    options: str


_cache_lock = threading.Lock()
_fs_cache: dict[_FsKey, fsspec.AbstractFileSystem] = {}


def filesystem_for(
    url: str,
    environ: Mapping[str, str] | None = None,
    timeout_seconds: float | None = None,
) -> fsspec.AbstractFileSystem:
    """Returns the (shared) fsspec file system that serves `url`.

    Args:
      url: a model path (see `split_url`).
      environ: the environment to configure S3/GCS from; defaults to `os.environ`.
      timeout_seconds: the server's `--storage_timeout_seconds`: bounds each S3 request at the
        client too (connect and read timeouts, two attempts), so a call abandoned by
        `StorageCalls` does not hold its thread for long. None keeps the client's defaults.

    Returns:
      An fsspec file system; one instance per protocol and configuration.

    Raises:
      ValueError: for a protocol tfrelay does not support, or whose extra is not installed (the
        message says which `pip install` fixes it).
    """
    protocol, _ = split_url(url)
    env = os.environ if environ is None else environ
    if protocol == "file":
        options: dict = {}
    elif protocol == "s3":
        options = s3_options(env)
        if timeout_seconds is not None and timeout_seconds > 0:
            options["config_kwargs"] = {
                "connect_timeout": min(10.0, timeout_seconds),
                "read_timeout": timeout_seconds,
                "retries": {"max_attempts": 2, "mode": "standard"},
            }
    elif protocol == "gs":
        options = gcs_options(env)
    elif protocol == "memory":
        options = {}
    else:
        raise ValueError(
            f"Unsupported model path scheme {protocol!r} in {url!r}: tfrelay reads local paths, "
            "file://, s3:// and gs://."
        )
    key = _FsKey(protocol, repr(sorted(options.items())))
    with _cache_lock:
        fs = _fs_cache.get(key)
        if fs is None:
            try:
                fs = _new_filesystem(protocol, options)
                if "config_kwargs" in options:
                    # s3fs's own retry loop (5 attempts with growing sleeps) made one failing
                    # call take ~15 s before anyone heard of it (issue 13); polls retry anyway.
                    fs.retries = 2
            except ImportError as err:
                extra = _EXTRA_OF_PROTOCOL.get(protocol, protocol)
                raise ValueError(
                    f"Reading {url!r} needs the {extra!r} extra: pip install 'tfrelay[{extra}]' "
                    f"({err})"
                ) from err
            _fs_cache[key] = fs
    return fs

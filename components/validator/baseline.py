"""The baseline is whatever the bucket serves now: its newest complete version.

Resolved here, inside the component, because Kubeflow Pipelines' backend does not run TFX
resolver nodes (`resolver executors not implemented`), so LatestBlessedModelStrategy cannot be
used there.
"""

from __future__ import annotations

import dataclasses
import os

from absl import logging

from tfrelay.serving.storage.model_storage import ModelStorage, StorageUnavailable


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A bucket version copied to a local directory.

    Attributes:
      version: its version number.
      url: where it lives in the bucket.
      local_path: the local copy of its files (a SavedModel directory).
    """

    version: int
    url: str
    local_path: str


def fetch_baseline(base_path: str, destination: str) -> Baseline | None:
    """Copies the newest complete version under `base_path` to `destination`.

    Args:
      base_path: the model's base path in the bucket (what the BucketPusher pushes to).
      destination: a local directory that does not exist yet.

    Returns:
      The baseline, or None when the bucket has no complete version yet (a first run).
    """
    storage = ModelStorage(base_path)
    try:
        versions = storage.list_versions()
    except StorageUnavailable as err:
        logging.info("Validator: no baseline (%s): this is a first push", err)
        return None
    for version in sorted(versions, reverse=True):
        directory = versions[version]
        verdict, files = storage.check_complete(directory)
        if not verdict.complete:
            logging.info(
                "Validator: skipping incomplete version %d (%s)", version, verdict.describe()
            )
            continue
        os.makedirs(os.path.dirname(destination.rstrip("/")), exist_ok=True)
        storage.copy_version(directory, destination, files)
        url = storage.version_url(directory)
        logging.info("Validator: baseline is version %d at %s", version, url)
        return Baseline(version, url, destination)
    logging.info("Validator: %s holds no complete version: this is a first push", base_path)
    return None

"""`tfrelay models label CONFIG_URL MODEL LABEL=VERSION ... [--remove LABEL]`.

Edits the `version_labels` of one model in a ModelServerConfig text proto, local or in the
bucket: the file the servers name with `--model_config_file` and re-read every
`--model_config_file_poll_wait_seconds`, so every replica moves its labels without a restart.

Before anything is written the edited config must pass the server's own checks
(`model_config.models_from_proto`: label syntax, names, base paths) and TF Serving's label rule
(server_core.cc): a label names a version the server can serve, here a version published in
the model's base path (the server's completeness rule) that its version policy loads. With
`--allow-unavailable` (for servers run with `--allow_version_labels_for_unavailable_models`) a
*new* label may name any other version, as TF Serving allows; moving an existing label still
needs a servable version. The file is written whole: temp file + os.replace locally, one PUT on
an object store (readers see the old object or the new one, never a mix).

The text is written by protobuf's text_format from the parsed message, so the file stays what
the server parses; comments and formatting in the original are not kept.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfrelay.serving.admin.errors import AdminError, storage_failure
from tfrelay.serving.config.config_file import ConfigFileError, read_config_text
from tfrelay.serving.config.model_config import ConfigError, ModelConfig, models_from_proto
from tfrelay.serving.storage.calls import StorageCalls
from tfrelay.serving.storage.errors import StorageError
from tfrelay.serving.storage.filesystem import filesystem_for, split_url
from tfrelay.serving.storage.model_storage import ModelStorage

_ASSIGNMENT_RE = re.compile(r"^([^=\s]+)=([0-9]{1,18})$")
# The writer's temporary file beside a local config (same directory: os.replace is atomic).
_TEMP_INFIX = ".tfrelay-tmp-"


@dataclass(frozen=True)
class LabelResult:
    """What a label edit did.

    Attributes:
      config_url: the file edited.
      model: the model whose labels changed.
      before: its labels before.
      after: its labels now.
      written: False when the file already said this (nothing was written).
    """

    config_url: str
    model: str
    before: dict[str, int]
    after: dict[str, int]
    written: bool

    def describe(self) -> str:
        """The one result line the command prints."""
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.after.items())) or "none"
        if not self.written:
            return f"nothing to do: {self.config_url} already gives {self.model} labels {shown}."
        return (
            f"labelled: {self.model} in {self.config_url} now has labels {shown}; servers "
            "re-read it within --model_config_file_poll_wait_seconds."
        )


def parse_assignment(text: str) -> tuple[str, int]:
    """Splits "LABEL=VERSION".

    Args:
      text: one command-line assignment, e.g. "stable=3".

    Returns:
      (label, version); the label's syntax is checked later, by the server's own rule.

    Raises:
      AdminError: not LABEL=VERSION with an integer version.
    """
    match = _ASSIGNMENT_RE.match(text)
    if match is None:
        raise AdminError(
            f"{text!r} is not LABEL=VERSION (e.g. stable=3); labels match [a-zA-Z0-9_]+ and "
            "versions are integers"
        )
    return match.group(1), int(match.group(2))


def parse_config(text: str, source: str) -> model_server_config_pb2.ModelServerConfig:
    """Parses and validates a ModelServerConfig as the server does.

    Args:
      text: the file's text.
      source: its URL, for the message.

    Returns:
      The parsed message.

    Raises:
      AdminError: it does not parse or validate (the parser's line and column included).
    """
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
        models_from_proto(config)
    except (text_format.ParseError, ConfigError) as err:
        raise AdminError(
            f"malformed model config {source}: {err}. Fix the file (the servers keep their "
            "running config meanwhile); nothing was written."
        ) from err
    return config


def edit_labels(
    config: model_server_config_pb2.ModelServerConfig,
    model: str,
    assignments: Mapping[str, int],
    removals: Sequence[str],
) -> tuple[model_server_config_pb2.ModelServerConfig, dict[str, int], dict[str, int]]:
    """The config with `model`'s labels set and removed (a copy; `config` is not changed).

    Args:
      config: the parsed config.
      model: the model name.
      assignments: {label: version} to set.
      removals: labels to remove.

    Returns:
      (edited config, labels before, labels after).

    Raises:
      AdminError: the model is not in the config, a label is both set and removed, or a
        removed label is not there.
    """
    both = sorted(set(assignments) & set(removals))
    if both:
        raise AdminError(f"label(s) {both} are both set and removed; give each once")
    edited = model_server_config_pb2.ModelServerConfig()
    edited.CopyFrom(config)
    entries = [c for c in edited.model_config_list.config if c.name == model]
    if not entries:
        names = ", ".join(c.name for c in edited.model_config_list.config) or "none"
        raise AdminError(f"model {model!r} is not in the config (models: {names})")
    entry = entries[0]
    before = dict(entry.version_labels)
    missing = [label for label in removals if label not in before]
    if missing:
        raise AdminError(
            f"cannot remove label(s) {missing}: {model} has labels {sorted(before) or 'none'}"
        )
    for label in removals:
        del entry.version_labels[label]
    for label, version in assignments.items():
        entry.version_labels[label] = version
    return edited, before, dict(entry.version_labels)


def label_problems(
    before: Mapping[str, int],
    after: Mapping[str, int],
    servable: Sequence[int],
    allow_unavailable: bool,
) -> list[tuple[str, int]]:
    """TF Serving's label rule: the labels the server would refuse.

    Args:
      before: the model's labels in the file now (what the servers run with).
      after: its labels after the edit.
      servable: the versions the server can serve (published and loaded by the policy).
      allow_unavailable: mirror `--allow_version_labels_for_unavailable_models`: a new label
        (or one left as it is) may name an unservable version.

    Returns:
      (label, version) pairs that would be refused, sorted.
    """
    problems = []
    for label, version in sorted(after.items()):
        if version in servable:
            continue
        if allow_unavailable and (label not in before or before[label] == version):
            continue
        problems.append((label, version))
    return problems


def servable_versions(
    model: ModelConfig, timeout_seconds: float = 30.0
) -> tuple[list[int], list[int]]:
    """(published versions, those the model's version policy loads), highest first.

    Judged with the server's `ModelStorage` and completeness rule.

    Args:
      model: the model's config (base path and version policy).
      timeout_seconds: the deadline of each storage call.

    Returns:
      (published, chosen by the policy), both highest first.

    Raises:
      AdminError: the base path cannot be listed.
    """
    storage = ModelStorage(model.base_path, timeout_seconds=timeout_seconds)
    try:
        versions = storage.list_versions(missing_ok=True)
        published = []
        for number in sorted(versions, reverse=True):
            try:
                if storage.inspect_version(versions[number]).verdict.complete:
                    published.append(number)
            except ValueError:
                continue  # broken: never served
    except StorageError as err:
        raise storage_failure(
            err, f"list the versions of {model.name} in {model.base_path}", model.base_path
        ) from err
    return published, model.policy.choose(published)


def _unservable_error(
    config_url: str,
    model: ModelConfig,
    problems: Sequence[tuple[str, int]],
    published: Sequence[int],
    chosen: Sequence[int],
    allow_unavailable: bool,
) -> AdminError:
    parts = []
    for label, version in problems:
        if version not in published:
            parts.append(f"{label}={version}: version {version} is not published")
        else:
            parts.append(
                f"{label}={version}: version {version} is published but the version policy "
                f"({model.policy.kind.value}) serves only {list(chosen)}"
            )
    if allow_unavailable:
        way_out = (
            "--allow-unavailable lets only a new label name such a version (TF Serving's rule); "
            "point the label at a served version or remove it first"
        )
    else:
        way_out = (
            "pick a served version, change the version policy, or pass --allow-unavailable for "
            "a new label on servers run with --allow_version_labels_for_unavailable_models"
        )
    return AdminError(
        f"refusing to write {config_url}: {'; '.join(parts)} in {model.base_path} (published: "
        f"{list(published) or 'none'}), so the servers would reject the config; {way_out}. "
        "Nothing was written."
    )


def write_atomically(url: str, data: bytes, timeout_seconds: float = 30.0) -> None:
    """Replaces a file whole: temp file + os.replace locally, one PUT on an object store.

    Args:
      url: the file: a local path or a storage URL.
      data: its new bytes.
      timeout_seconds: the write's deadline.

    Raises:
      AdminError: storage refused or failed.
    """
    protocol, path = split_url(url)

    def write_local() -> None:
        directory = os.path.dirname(path) or "."
        temporary = os.path.join(
            directory, f".{os.path.basename(path)}{_TEMP_INFIX}{uuid.uuid4().hex[:8]}"
        )
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            # Keep the file's mode: a config readable by the server user stays readable.
            with contextlib.suppress(FileNotFoundError):
                os.chmod(temporary, os.stat(path).st_mode & 0o7777)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
            raise

    try:
        if protocol == "file":
            StorageCalls(url, timeout_seconds).run(f"write {url}", write_local)
        else:
            fs = filesystem_for(url, timeout_seconds=timeout_seconds)
            StorageCalls(url, timeout_seconds).run(f"write {url}", lambda: fs.pipe_file(path, data))
    except StorageError as err:
        raise storage_failure(err, f"write {url}", url) from err


def label(
    config_url: str,
    model: str,
    assignments: Mapping[str, int],
    removals: Sequence[str] = (),
    allow_unavailable: bool = False,
    timeout_seconds: float = 30.0,
) -> LabelResult:
    """Sets and removes version labels of `model` in a ModelServerConfig file.

    Args:
      config_url: the config file: a local path or a storage URL (s3://, gs://).
      model: the model name.
      assignments: {label: version} to set.
      removals: labels to remove.
      allow_unavailable: let a new label name a version that is not served (see the module).
      timeout_seconds: the deadline of each storage call.

    Returns:
      What was done.

    Raises:
      AdminError: the file is unreadable or malformed, the model is not in it, a label is
        invalid or names a version the servers would refuse; nothing is written then.
    """
    try:
        text = read_config_text(config_url, timeout_seconds=timeout_seconds)
    except ConfigFileError as err:
        cause = err.__cause__
        if isinstance(cause, (StorageError, OSError)):
            raise storage_failure(cause, f"read the model config {config_url}", config_url) from err
        raise AdminError(f"cannot use the model config: {err}; nothing was written.") from err
    config = parse_config(text, config_url)
    edited, before, after = edit_labels(config, model, assignments, removals)
    try:
        # The server's own checks on the result: label syntax, names, base paths.
        edited_model = next(m for m in models_from_proto(edited) if m.name == model)
    except ConfigError as err:
        raise AdminError(f"{err}. Nothing was written.") from err
    if after == before:
        return LabelResult(config_url, model, before, after, written=False)
    if after:
        published, chosen = servable_versions(edited_model, timeout_seconds)
        problems = label_problems(before, after, chosen, allow_unavailable)
        if problems:
            raise _unservable_error(
                config_url, edited_model, problems, published, chosen, allow_unavailable
            )
    data = text_format.MessageToString(edited).encode()
    # What the servers will parse: checked once more before it leaves this process.
    parse_config(data.decode(), config_url)
    write_atomically(config_url, data, timeout_seconds)
    return LabelResult(config_url, model, before, after, written=True)

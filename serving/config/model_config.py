"""The `ModelServerConfig` text proto (`--model_config_file`) and its single-model flag form.

Parsed with the protos shipped in tensorflow-serving-api and `google.protobuf.text_format`, so any
file tensorflow_model_server accepts is accepted here, and a malformed one is rejected with the
parser's line and column.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfrelay.serving.request_log import config as request_log_config
from tfrelay.serving.request_log.config import RequestLogConfig

SUPPORTED_PLATFORMS = ("tensorflow",)


class ConfigError(ValueError):
    """A model config that cannot be served; the message says what to fix."""


class PolicyKind(enum.Enum):
    LATEST = "latest"
    ALL = "all"
    SPECIFIC = "specific"


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions under a base path to serve (`ServableVersionPolicy`).

    Attributes:
      kind: latest, all or specific.
      num_versions: for latest, how many of the highest versions (at least 1).
      versions: for specific, the versions to serve.
    """

    kind: PolicyKind = PolicyKind.LATEST
    num_versions: int = 1
    versions: frozenset[int] = frozenset()

    def choose(self, available: Sequence[int]) -> list[int]:
        """Applies the policy to the versions present, highest first.

        Args:
          available: version numbers found under the base path.

        Returns:
          The versions to aspire, highest first.
        """
        ordered = sorted(set(available), reverse=True)
        if self.kind is PolicyKind.ALL:
            return ordered
        if self.kind is PolicyKind.SPECIFIC:
            return [v for v in ordered if v in self.versions]
        return ordered[: max(self.num_versions, 1)]


@dataclass(frozen=True)
class ModelConfig:
    """One served model.

    Attributes:
      name: the model name clients address.
      base_path: storage path holding the version directories.
      platform: "tensorflow" (the only platform tensorflow_model_server knows).
      policy: the version policy.
      labels: version labels, {label: version}.
      logging: its request logging (`logging_config`), or None.
    """

    name: str
    base_path: str
    platform: str = "tensorflow"
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: dict[str, int] = field(default_factory=dict)
    logging: RequestLogConfig | None = None


def _policy_from_proto(proto) -> VersionPolicy:
    which = proto.WhichOneof("policy_choice")
    if which == "all":
        return VersionPolicy(PolicyKind.ALL)
    if which == "specific":
        return VersionPolicy(PolicyKind.SPECIFIC, versions=frozenset(proto.specific.versions))
    if which == "latest":
        return VersionPolicy(PolicyKind.LATEST, num_versions=max(proto.latest.num_versions, 1))
    return VersionPolicy()


def models_from_proto(config: model_server_config_pb2.ModelServerConfig) -> list[ModelConfig]:
    """Validates a parsed ModelServerConfig and converts it.

    Args:
      config: the parsed proto.

    Returns:
      The models, in file order.

    Raises:
      ConfigError: custom_model_config, a missing name or base path, a duplicate name, an
        unsupported platform, or a label that is not `[a-zA-Z0-9_]+`.
    """
    which = config.WhichOneof("config")
    if which == "custom_model_config":
        raise ConfigError(
            "custom_model_config is not supported; use model_config_list (as "
            "tensorflow_model_server does)"
        )
    models: list[ModelConfig] = []
    seen: set[str] = set()
    for index, proto in enumerate(config.model_config_list.config):
        where = f"model_config_list.config[{index}]"
        if not proto.name:
            raise ConfigError(f"{where}: every model needs a name")
        from tfrelay.serving.security import model_name_problem

        problem = model_name_problem(proto.name)
        if problem is not None:
            raise ConfigError(f"{where}: model name {proto.name!r} cannot be served: {problem}")
        if proto.name in seen:
            raise ConfigError(f"{where}: model name {proto.name!r} is used twice")
        seen.add(proto.name)
        if not proto.base_path:
            raise ConfigError(f"{where} ({proto.name}): base_path is empty")
        platform = proto.model_platform or "tensorflow"
        if platform not in SUPPORTED_PLATFORMS:
            raise ConfigError(
                f"{where} ({proto.name}): model_platform {platform!r} is not supported "
                f"(supported: {', '.join(SUPPORTED_PLATFORMS)}; TFLite models are served with "
                "--prefer_tflite_model)"
            )
        labels = dict(proto.version_labels)
        for label in labels:
            if not label or not all(c.isalnum() or c == "_" for c in label) or not label.isascii():
                raise ConfigError(
                    f"{where} ({proto.name}): version label {label!r} must match [a-zA-Z0-9_]+"
                )
        logging_config = None
        if proto.HasField("logging_config"):
            try:
                logging_config = request_log_config.from_proto(
                    proto.logging_config, f"{where} ({proto.name})"
                )
            except request_log_config.RequestLogConfigError as err:
                raise ConfigError(str(err)) from err
        models.append(
            ModelConfig(
                name=proto.name,
                base_path=proto.base_path,
                platform=platform,
                policy=_policy_from_proto(proto.model_version_policy),
                labels=labels,
                logging=logging_config,
            )
        )
    return models


def parse_model_config_text(text: str, source: str = "<model config>") -> list[ModelConfig]:
    """Parses the text form of a ModelServerConfig.

    Args:
      text: the file content.
      source: the file name, for error messages.

    Returns:
      The models it configures.

    Raises:
      ConfigError: the text does not parse or does not validate; the message names the file
        and, for syntax errors, the line and column.
    """
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as err:
        raise ConfigError(f"{source} is not a valid ModelServerConfig text proto: {err}") from err
    try:
        return models_from_proto(config)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from err


def read_model_config_file(path: str) -> list[ModelConfig]:
    """Reads and parses `--model_config_file` (local path or any supported storage URL).

    Raises:
      ConfigError: unreadable, over the config-file size limit, unparseable or invalid.
    """
    from tfrelay.serving.config.config_file import ConfigFileError, read_config_text

    try:
        text = read_config_text(path)
    except ConfigFileError as err:
        raise ConfigError(f"model config file: {err}") from err
    return parse_model_config_text(text, source=path)


def single_model_config(model_name: str, base_path: str) -> list[ModelConfig]:
    """The config implied by `--model_name` / `--model_base_path`.

    Raises:
      ConfigError: the base path is empty.
    """
    if not base_path:
        raise ConfigError(
            "--model_base_path is required unless --model_config_file is given "
            "(it names the directory holding the numbered version directories)"
        )
    return [ModelConfig(name=model_name, base_path=base_path)]


def to_proto(models: Sequence[ModelConfig]) -> model_server_config_pb2.ModelServerConfig:
    """Converts models back into a ModelServerConfig (for the reload API and manifests)."""
    config = model_server_config_pb2.ModelServerConfig()
    for model in models:
        proto = config.model_config_list.config.add(
            name=model.name, base_path=model.base_path, model_platform=model.platform
        )
        if model.policy.kind is PolicyKind.ALL:
            proto.model_version_policy.all.SetInParent()
        elif model.policy.kind is PolicyKind.SPECIFIC:
            proto.model_version_policy.specific.versions.extend(sorted(model.policy.versions))
        elif model.policy.num_versions != 1:
            proto.model_version_policy.latest.num_versions = model.policy.num_versions
        for label, version in model.labels.items():
            proto.version_labels[label] = version
        if model.logging is not None:
            request_log_config.to_proto(model.logging, proto.logging_config)
    return config

"""Reading a text-format proto file the way tensorflow_model_server's ParseProtoTextFile does."""

from __future__ import annotations

from google.protobuf import text_format
from google.protobuf.message import Message

from tfrelay.serving.config.config_file import ConfigFileError, read_config_text
from tfrelay.serving.config.model_config import ConfigError


def read_text_proto(path: str, message: Message, flag: str) -> Message:
    """Parses a text proto file into `message`.

    Args:
      path: local path or any supported storage URL.
      message: an empty message of the expected type, filled in place.
      flag: the flag that named the file, for error messages.

    Returns:
      `message`.

    Raises:
      ConfigError: the file cannot be read, is over the config-file size limit, or does not parse; the message names the flag, the
        file and, for syntax errors, the line and column.
    """
    try:
        text = read_config_text(path)
    except ConfigFileError as err:
        raise ConfigError(f"--{flag}: {err}") from err
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as err:
        raise ConfigError(
            f"--{flag}: {path} is not a valid {message.DESCRIPTOR.full_name} text proto: {err}"
        ) from err
    return message

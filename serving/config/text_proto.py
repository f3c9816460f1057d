"""Reading a text-format proto file the way tensorflow_model_server's ParseProtoTextFile does."""

from __future__ import annotations

from google.protobuf import text_format
from google.protobuf.message import Message

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
      ConfigError: the file cannot be read or does not parse; the message names the flag, the
        file and, for syntax errors, the line and column.
    """
    from tfrelay.serving.storage.filesystem import filesystem_for, split_url

    try:
        fs = filesystem_for(path)
        with fs.open(split_url(path)[1], "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"--{flag}: cannot read {path}: {err}") from err
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as err:
        raise ConfigError(
            f"--{flag}: {path} is not a valid {message.DESCRIPTOR.full_name} text proto: {err}"
        ) from err
    return message

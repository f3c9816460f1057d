"""Request-side safety shared by both front ends: bearer tokens, size limits, name checks.

TF Serving has no authentication (#767); tfrelay's is opt-in (`--auth_token_file`) and covers
REST and gRPC alike. Model names and labels from requests are only ever dictionary keys, but they
are still checked here so that a hostile name (a path, control characters, megabytes of text)
is refused before it reaches logs, metrics labels or any later code that might touch storage.
"""

from __future__ import annotations

import hmac
import re

from tfrelay.serving import errors
from tfrelay.serving.config.model_config import ConfigError

MAX_NAME_LENGTH = 255
# Labels: TF Serving's documented form (serving_config.md).
_LABEL_RE = re.compile(r"[A-Za-z0-9_]+")
# Model names: anything printable except path separators; "." and ".." are never names.
_FORBIDDEN_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")


def model_name_problem(name: str) -> str | None:
    """Why `name` cannot be a model name, or None if it can.

    Args:
      name: a model name from a request or the config.

    Returns:
      A short reason, or None.
    """
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"it is longer than {MAX_NAME_LENGTH} characters"
    if name in (".", ".."):
        return "it is a relative path"
    if _FORBIDDEN_NAME_CHARS.search(name):
        return "it contains a path separator or a control character"
    return None


def check_request_names(model_name: str, label: str | None = None) -> None:
    """Refuses a request whose model name or label could not name anything served.

    Args:
      model_name: the model name the request addresses (non-empty; emptiness is checked by the
        callers with TF Serving's own messages).
      label: the version label, if any.

    Raises:
      ServingError: INVALID_ARGUMENT naming the problem; an odd label gets TF Serving's
        "Unrecognized servable version label" (it cannot match any configured label).
    """
    problem = model_name_problem(model_name) if model_name else None
    if problem is not None:
        shown = model_name[:64] + ("..." if len(model_name) > 64 else "")
        raise errors.invalid_argument(f"Invalid model name {shown!r}: {problem}")
    if label is not None and (len(label) > MAX_NAME_LENGTH or not _LABEL_RE.fullmatch(label)):
        shown = label[:64] + ("..." if len(label) > 64 else "")
        raise errors.invalid_argument(f"Unrecognized servable version label: {shown}")


class TokenAuth:
    """Bearer-token authentication for both front ends.

    The token file holds one token per line (several allow rotation without downtime); blank
    lines and lines starting with '#' are ignored. Comparison is constant-time.

    Args:
      tokens: the accepted tokens.
    """

    def __init__(self, tokens: list[str]) -> None:
        if not tokens:
            raise ConfigError("--auth_token_file holds no token")
        self._tokens = [t.encode() for t in tokens]

    @classmethod
    def from_file(cls, path: str) -> TokenAuth:
        """Reads `--auth_token_file`.

        Raises:
          ConfigError: the file cannot be read or holds no token.
        """
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as err:
            raise ConfigError(f"--auth_token_file: cannot read {path}: {err}") from err
        tokens = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        if not tokens:
            raise ConfigError(f"--auth_token_file {path} holds no token")
        return cls(tokens)

    def accepts(self, authorization: str | bytes | None) -> bool:
        """Whether an `Authorization` header value carries an accepted bearer token."""
        if not authorization:
            return False
        if isinstance(authorization, str):
            authorization = authorization.encode("latin-1", "replace")
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        token = token.strip()
        # Compare with every token so timing does not reveal which one (or whether any) matched.
        matched = False
        for expected in self._tokens:
            matched |= hmac.compare_digest(token, expected)
        return matched


UNAUTHENTICATED_MESSAGE = (
    "Missing or invalid bearer token: send 'Authorization: Bearer <token>' (see --auth_token_file)"
)

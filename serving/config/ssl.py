"""`--ssl_config_file`: TF Serving's `SSLConfig` text proto (PEM text inline, not file names).

Also the one place the PEM text touches the disk: `ssl.SSLContext` loads a key and certificate
only from files, so `server_ssl_context` writes them to a private temporary directory for the
duration of the load and removes it at once (issue 15: the server kept that directory, key
included, until it stopped, and left it behind when it was killed).
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass

from tfrelay.serving.config.model_config import ConfigError
from tfrelay.serving.config.protos import SSLConfig
from tfrelay.serving.config.text_proto import read_text_proto


@dataclass(frozen=True)
class TlsSettings:
    """Server TLS material, as TF Serving's SSLConfig holds it.

    Attributes:
      server_key: PEM private key.
      server_cert: PEM certificate chain.
      custom_ca: PEM CA bundle clients are verified against (empty: none).
      client_verify: require and verify a client certificate (mutual TLS).
    """

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False


def read_ssl_config(path: str) -> TlsSettings:
    """Reads `--ssl_config_file`.

    Raises:
      ConfigError: unreadable or unparseable; a missing key or certificate; client_verify
        without a custom_ca to verify against.
    """
    proto = read_text_proto(path, SSLConfig(), "ssl_config_file")
    settings = TlsSettings(
        server_key=proto.server_key,
        server_cert=proto.server_cert,
        custom_ca=proto.custom_ca,
        client_verify=proto.client_verify,
    )
    where = f"--ssl_config_file {path}"
    if "PRIVATE KEY" not in settings.server_key:
        raise ConfigError(f"{where}: server_key must hold a PEM private key (the key itself)")
    if "CERTIFICATE" not in settings.server_cert:
        raise ConfigError(f"{where}: server_cert must hold a PEM certificate (the cert itself)")
    if settings.client_verify and "CERTIFICATE" not in settings.custom_ca:
        raise ConfigError(
            f"{where}: client_verify needs custom_ca, the PEM CA that signs client certificates"
        )
    return settings


class PemFiles:
    """The key and certificate of TlsSettings as files in a private temporary directory.

    A context manager: the directory (mode 0700, files 0600) exists from `__enter__` until
    `close()` or the end of the `with` block.

    Args:
      settings: the TLS material to write.

    Attributes:
      cert_path: the PEM certificate chain's file (set on enter).
      key_path: the PEM private key's file (set on enter).
    """

    def __init__(self, settings: TlsSettings) -> None:
        self._settings = settings
        self._dir: str | None = None
        self.cert_path = ""
        self.key_path = ""

    def __enter__(self) -> PemFiles:
        self._dir = tempfile.mkdtemp(prefix="tfrelay-tls-")
        os.chmod(self._dir, 0o700)
        try:
            self.cert_path = self._write("server.crt", self._settings.server_cert)
            self.key_path = self._write("server.key", self._settings.server_key)
        except BaseException:
            self.close()
            raise
        return self

    def _write(self, name: str, text: str) -> str:
        path = os.path.join(self._dir, name)
        # Created 0600 before a byte is written: the key is never readable by others.
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(text)
        return path

    def close(self) -> None:
        """Removes the directory and its files (idempotent)."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def server_ssl_context(settings: TlsSettings) -> ssl.SSLContext:
    """A server-side SSLContext from the SSLConfig (tfrelay's REST TLS; TF Serving's REST is
    plaintext, #1503).

    Args:
      settings: the parsed `--ssl_config_file`.

    Returns:
      A context with the key and certificate loaded, verifying clients against `custom_ca`
      when `client_verify` is set. No file is left on disk.

    Raises:
      ssl.SSLError: the key and certificate do not load (or do not match).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with PemFiles(settings) as files:
        context.load_cert_chain(files.cert_path, files.key_path)
    if settings.custom_ca:
        context.load_verify_locations(cadata=settings.custom_ca)
    context.verify_mode = ssl.CERT_REQUIRED if settings.client_verify else ssl.CERT_NONE
    return context

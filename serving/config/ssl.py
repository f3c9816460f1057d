"""`--ssl_config_file`: TF Serving's `SSLConfig` text proto (PEM text inline, not file names)."""

from __future__ import annotations

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

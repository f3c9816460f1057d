"""Builds the gRPC server tensorflow_model_server exposes on `--port`.

By default it is tfrelay's own HTTP/2 front end for unary calls (`unary_server.py`: several
times cheaper per call than grpc.aio); with TLS or `--grpc_implementation=grpcio` it is grpc.aio.
Both run on the same asyncio loop as the REST server.

`--grpc_channel_arguments` is TF Serving's comma-separated `key=value` list: grpc.aio applies them
all; tfrelay's server applies the connection-age and receive-size ones, grpc.max_concurrent_streams
and grpc.max_metadata_size (its HTTP/2 limits, `http2_limits.py`), and logs the others. Like
tensorflow_model_server, the message size limits default to INT32_MAX, except that tfrelay's
`--max_request_size_bytes` bounds received messages (answered with RESOURCE_EXHAUSTED). Handlers
are coroutines and need no thread pool, so `--grpc_max_threads` is read as a cap on concurrently
handled RPCs when set explicitly (excess RPCs get RESOURCE_EXHAUSTED, as from an exhausted TF
Serving thread pool).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfrelay.serving.config.model_config import ConfigError
from tfrelay.serving.config.ssl import TlsSettings
from tfrelay.serving.grpc.unary_server import (
    UnaryGrpcServer,
    channel_argument_settings,
    limits_from_channel_arguments,
)
from tfrelay.serving.security import UNAUTHENTICATED_MESSAGE, TokenAuth

logger = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1


def parse_channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """Parses `--grpc_channel_arguments` ("k=v,k=v"); integer values become ints.

    Raises:
      ConfigError: an entry without "=" or with an empty key.
    """
    arguments: list[tuple[str, int | str]] = []
    for entry in text.split(","):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigError(
                f"--grpc_channel_arguments: {entry!r} is not key=value "
                "(e.g. grpc.max_connection_age_ms=2000)"
            )
        try:
            arguments.append((key, int(value)))
        except ValueError:
            arguments.append((key, value))
    return arguments


class _AuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses RPCs without an accepted bearer token with UNAUTHENTICATED."""

    def __init__(self, auth: TokenAuth) -> None:
        self._auth = auth

        async def deny(request, context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    async def intercept_service(self, continuation, handler_call_details):
        authorization = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                authorization = value
                break
        if self._auth.accepts(authorization):
            return await continuation(handler_call_details)
        return self._deny


@dataclass(frozen=True)
class GrpcSettings:
    """How the gRPC server listens.

    Attributes:
      host: interface to bind.
      port: `--port`.
      socket_path: `--grpc_socket_path` (also listen on this UNIX socket).
      channel_arguments: parsed `--grpc_channel_arguments`.
      max_concurrent_rpcs: `--grpc_max_threads` when set; None for no cap.
      max_receive_bytes: largest request message accepted.
      tls: server TLS from `--ssl_config_file`, or None for plaintext.
      auth: bearer-token check, or None.
      implementation: "tfrelay" or "grpcio" (`--grpc_implementation`).
    """

    host: str
    port: int
    socket_path: str = ""
    channel_arguments: Sequence[tuple[str, int | str]] = ()
    max_concurrent_rpcs: int | None = None
    max_receive_bytes: int = INT32_MAX
    tls: TlsSettings | None = None
    auth: TokenAuth | None = None
    implementation: str = "tfrelay"


def uses_unary_server(settings: GrpcSettings) -> bool:
    """Whether `build_server` builds tfrelay's own server (else grpc.aio)."""
    return settings.tls is None and settings.implementation == "tfrelay"


_PREDICTION_SERVICE = "tensorflow.serving.PredictionService"


def _identity(payload: bytes) -> bytes:
    return payload


def add_prediction_service(
    servicer: prediction_service_pb2_grpc.PredictionServiceServicer,
    server: grpc.aio.Server | UnaryGrpcServer,
) -> None:
    """Registers TF Serving's PredictionService, as the generated
    `add_PredictionServiceServicer_to_server` does, except Predict's response serializer: the
    identity, since Predict answers wire-format bytes (`encoding/wire.py`), so grpc.aio and tfrelay's own
    server send the same bytes (issue 15).

    Args:
      servicer: the PredictionService.
      server: grpc.aio's server or tfrelay's.
    """

    def method(call, request_type, response_serializer):
        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=request_type.FromString,
            response_serializer=response_serializer,
        )

    handlers = {
        "Classify": method(
            servicer.Classify,
            classification_pb2.ClassificationRequest,
            classification_pb2.ClassificationResponse.SerializeToString,
        ),
        "Regress": method(
            servicer.Regress,
            regression_pb2.RegressionRequest,
            regression_pb2.RegressionResponse.SerializeToString,
        ),
        "Predict": method(servicer.Predict, predict_pb2.PredictRequest, _identity),
        "MultiInference": method(
            servicer.MultiInference,
            inference_pb2.MultiInferenceRequest,
            inference_pb2.MultiInferenceResponse.SerializeToString,
        ),
        "GetModelMetadata": method(
            servicer.GetModelMetadata,
            get_model_metadata_pb2.GetModelMetadataRequest,
            get_model_metadata_pb2.GetModelMetadataResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_PREDICTION_SERVICE, handlers),)
    )
    # grpcio >= 1.63 (and tfrelay's server) also look registered methods up without the
    # generic handlers' scan, as the generated code registers them.
    if hasattr(server, "add_registered_method_handlers"):
        server.add_registered_method_handlers(_PREDICTION_SERVICE, handlers)


def build_server(
    settings: GrpcSettings,
    prediction_service: prediction_service_pb2_grpc.PredictionServiceServicer,
    model_service: model_service_pb2_grpc.ModelServiceServicer,
) -> grpc.aio.Server | UnaryGrpcServer:
    """Creates the server with both services (not started yet; `start()` / `stop(grace)`).

    Must be called on the event loop that will run it.

    Raises:
      RuntimeError: a port cannot be bound (grpc.aio binds here, tfrelay's server in `start`).
    """
    if uses_unary_server(settings):
        return _build_unary_server(settings, prediction_service, model_service)
    options: list[tuple[str, int | str]] = [
        ("grpc.max_send_message_length", INT32_MAX),
        ("grpc.max_receive_message_length", min(settings.max_receive_bytes, INT32_MAX)),
        # As tensorflow_model_server: another process must not share the port silently.
        ("grpc.so_reuseport", 0),
        # As tfrelay's front end (issue 12): grpc-core's default is no stream limit. The
        # user's --grpc_channel_arguments come after and win.
        ("grpc.max_concurrent_streams", 100),
    ]
    options.extend(settings.channel_arguments)
    interceptors = [_AuthInterceptor(settings.auth)] if settings.auth is not None else []
    server = grpc.aio.server(
        interceptors=interceptors,
        options=options,
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    add_prediction_service(prediction_service, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(model_service, server)
    address = f"{settings.host}:{settings.port}"
    if settings.tls is not None:
        tls = settings.tls
        credentials = grpc.ssl_server_credentials(
            [(tls.server_key.encode(), tls.server_cert.encode())],
            root_certificates=tls.custom_ca.encode() if tls.custom_ca else None,
            require_client_auth=tls.client_verify,
        )
        server.add_secure_port(address, credentials)
    else:
        server.add_insecure_port(address)
    if settings.socket_path:
        server.add_insecure_port(f"unix:{settings.socket_path}")
    return server


def _build_unary_server(
    settings: GrpcSettings,
    prediction_service: prediction_service_pb2_grpc.PredictionServiceServicer,
    model_service: model_service_pb2_grpc.ModelServiceServicer,
) -> UnaryGrpcServer:
    applied, ignored = channel_argument_settings(settings.channel_arguments)
    if ignored:
        logger.warning(
            "--grpc_channel_arguments: %s not applied by tfrelay's gRPC front end; pass "
            "--grpc_implementation=grpcio to have grpc.aio apply every channel argument",
            ", ".join(ignored),
        )
    server = UnaryGrpcServer(
        settings.host,
        settings.port,
        socket_path=settings.socket_path,
        max_receive_bytes=int(
            min(applied.get("max_receive_bytes", INT32_MAX), settings.max_receive_bytes, INT32_MAX)
        ),
        max_concurrent_rpcs=settings.max_concurrent_rpcs,
        max_connection_age=applied.get("max_connection_age"),
        max_connection_age_grace=applied.get("max_connection_age_grace"),
        auth=settings.auth,
        limits=limits_from_channel_arguments(applied),
    )
    add_prediction_service(prediction_service, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(model_service, server)
    return server

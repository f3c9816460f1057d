"""What every gRPC handler shares: ModelSpec resolution, TF status -> gRPC status, metrics."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from tfrelay.serving import errors
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.metrics import ServingMetrics
from tfrelay.serving.security import check_request_names

logger = logging.getLogger(__name__)


def grpc_code(code: Code) -> grpc.StatusCode:
    """The gRPC status code of the same name (the numbering is identical)."""
    return grpc.StatusCode[code.name]


def spec_target(spec: Any) -> tuple[str, int | None, str | None]:
    """(model name, version, label) a ModelSpec addresses (`ServableRequestFromModelSpec`).

    Raises:
      ServingError: INVALID_ARGUMENT "ModelSpec has no name specified." or for a bad name or
        label.
    """
    if not spec.name:
        raise errors.invalid_argument("ModelSpec has no name specified.")
    which = spec.WhichOneof("version_choice")
    version = spec.version.value if which == "version" else None
    label = spec.version_label if which == "version_label" else None
    check_request_names(spec.name, label)
    return spec.name, version, label


Handler = Callable[[Any, Any, Any], Awaitable[Any]]


def rpc(
    api: str, model_name_of: Callable[[Any], str] | None = None
) -> Callable[[Handler], Handler]:
    """Wraps a servicer method: maps ServingError to the gRPC status, records TF Serving's
    request_count / request_latency (entrypoint "GRPC") when `model_name_of` is given.

    Args:
      api: the `API` label ("Predict", ...).
      model_name_of: reads the model name from the request, for the metric labels.

    Returns:
      A decorator for `async def method(self, request, context)`.
    """

    def decorate(method: Handler) -> Handler:
        @functools.wraps(method)
        async def wrapper(self, request, context):
            metrics: ServingMetrics | None = getattr(self, "metrics", None)
            started = time.perf_counter()
            status = Code.OK
            try:
                return await method(self, request, context)
            except ServingError as err:
                status = err.code
                await context.abort(grpc_code(err.code), err.message)
            except grpc.aio.AbortError:
                status = Code.UNKNOWN
                raise
            except Exception as err:
                status = Code.INTERNAL
                logger.exception("Unexpected error in %s", api)
                await context.abort(
                    grpc.StatusCode.INTERNAL, f"Internal error: {type(err).__name__}: {err}"
                )
            finally:
                if metrics is not None and model_name_of is not None:
                    metrics.record_request(
                        model_name_of(request),
                        api,
                        "GRPC",
                        status.name,
                        time.perf_counter() - started,
                    )

        return wrapper

    return decorate

"""The REST front end: TF Serving's /v1 API (served by tfrelay.serving.rest.http_server).

Handlers follow TF Serving's order of checks exactly (JSON syntax, then the model lookup, then the
signature, then the inputs), so each malformed request gets the error TF Serving would give.
Inference runs on the shared thread pool; the event loop only parses, routes and writes.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from tfrelay.serving import errors
from tfrelay.serving.api import classify_regress, predict
from tfrelay.serving.api.data_plane import DataPlane
from tfrelay.serving.api.inference import InferenceRunner
from tfrelay.serving.api.response_cache import cache_key
from tfrelay.serving.core.manager import ServableManager
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.metrics import ServingMetrics
from tfrelay.serving.rest import json_examples, json_input, json_output, openapi, routes
from tfrelay.serving.rest.http_server import Request, Response
from tfrelay.serving.security import UNAUTHENTICATED_MESSAGE, TokenAuth, check_request_names
from tfrelay.serving.servables.base import DEFAULT_SERVING_SIGNATURE

logger = logging.getLogger(__name__)

_JSON_HEADERS = [(b"content-type", b"application/json")]
# libevent's page for a path outside /v1, which is what tensorflow_model_server sends.
_NOT_FOUND_HTML = (
    b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n"
    b"</BODY></HTML>\n"
)

# Bodies up to this size are parsed and converted on the event loop: measured, a 64 KiB predict
# body of floats parses and converts in ~1.5 ms, 256 KiB in ~6 ms; a thread hop costs ~50 us,
# more than a whole small request (issue 12).
OFFLOAD_BODY_BYTES = 64 * 1024
# Responses of more elements than this are encoded on the pool (about 1 ms of encoding).
OFFLOAD_OUTPUT_ELEMENTS = 16 * 1024

# Extra GET endpoints outside /v1 (health, metrics): path -> handler returning
# (status, headers, body).
ExtraRoute = Callable[[], Awaitable[tuple[int, list[tuple[bytes, bytes]], bytes]]]

# The REST `API` label of TF Serving's request metrics.
# The calls whose answers the response cache may hold (`--response_cache_mb`).
_CACHEABLE = frozenset({routes.PREDICT, routes.CLASSIFY, routes.REGRESS})
_API_OF_ACTION = {
    routes.PREDICT: "predict",
    routes.CLASSIFY: "classify",
    routes.REGRESS: "regress",
    routes.STATUS: "GetModelStatus",
    routes.METADATA: "GetModelMetadata",
}


class RestApi:
    """TF Serving's REST API plus tfrelay's model list.

    Args:
      manager: resolves models, versions and labels to loaded servables.
      runner: where inference runs (the shared pool or batcher; never the event loop).
      describe_models: returns the `GET /v1/models` listing (tfrelay addition).
      extra_routes: {path: handler} for GET endpoints outside /v1 (health, metrics).
      metrics: TF Serving's request metrics (entrypoint "REST").
      auth: bearer-token check for everything but `open_paths`; None disables it.
      open_paths: paths served without a token (health endpoints); the OpenAPI document is
        always open (it holds nothing a client may not know).
      max_body_bytes: larger request bodies are refused with 413.
      data_plane: the data plane shared with gRPC (issue 15); None builds one from `manager`,
        `runner` and `metrics`.
    """

    def __init__(
        self,
        manager: ServableManager,
        runner: InferenceRunner,
        describe_models: Callable[[], dict[str, Any]] | None = None,
        extra_routes: dict[str, ExtraRoute] | None = None,
        metrics: ServingMetrics | None = None,
        auth: TokenAuth | None = None,
        open_paths: tuple[str, ...] = ("/healthz", "/readyz"),
        max_body_bytes: int = 256 * 1024 * 1024,
        data_plane: DataPlane | None = None,
    ) -> None:
        self._plane = data_plane or DataPlane(manager, runner, metrics)
        self._runner = runner
        self._describe_models = describe_models or (lambda: {"models": []})
        self._extra_routes = dict(extra_routes or {})
        self._metrics = metrics
        self._auth = auth
        self._open_paths = frozenset((*open_paths, openapi.PATH))
        self.max_body_bytes = max_body_bytes

    # -- HTTP -----------------------------------------------------------------------------------

    async def respond(self, request: Request) -> Response:
        """Answers one HTTP request: auth, then /v1 (TF Serving's API) or the extra routes.

        Args:
          request: the parsed request (the body-size limit is enforced while reading it).

        Returns:
          (HTTP status, headers, body).
        """
        if self._auth is not None and request.path not in self._open_paths:
            if not self._auth.accepts(request.headers.get(b"authorization")):
                return (
                    401,
                    [*_JSON_HEADERS, (b"www-authenticate", b"Bearer")],
                    json_output.error_body(UNAUTHENTICATED_MESSAGE),
                )
        if request.path == openapi.PATH and request.method in ("GET", "HEAD"):
            # Under /v1 but not one of TF Serving's routes, which would call it malformed.
            return 200, _JSON_HEADERS, openapi.document()
        if not routes.is_v1(request.path_and_query):
            extra = self._extra_routes.get(request.path)
            if extra is not None and request.method in ("GET", "HEAD"):
                return await extra()
            return 404, [(b"content-type", b"text/html")], _NOT_FOUND_HTML
        status, payload = await self.handle(request.method, request.path_and_query, request.body)
        return status, _JSON_HEADERS, payload

    def too_large(self, limit: int) -> Response:
        """The 413 answer for a body over `--max_request_size_bytes`."""
        message = (
            f"Request body is larger than the {limit} bytes this server accepts "
            "(--max_request_size_bytes)"
        )
        return 413, _JSON_HEADERS, json_output.error_body(message)

    # -- /v1 ------------------------------------------------------------------------------------

    async def handle(self, method: str, path_and_query: str, body: bytes) -> tuple[int, bytes]:
        """Answers one `/v1` request.

        Args:
          method: the HTTP method.
          path_and_query: the raw path and query string.
          body: the request body.

        Returns:
          (HTTP status, JSON body).
        """
        started = time.perf_counter()
        route: routes.Route | None = None
        code = Code.OK
        try:
            route = routes.route(method, path_and_query)
            if route.model:
                check_request_names(route.model, route.label)
            if route.action in _CACHEABLE:
                payload = self._cached(route, body)
                if payload is None:
                    if route.action == routes.PREDICT:
                        payload, version = await self._predict(route, body)
                    else:
                        payload, version = await self._classify_or_regress(route, body)
                    self._remember(route, version, body, payload)
            elif route.action == routes.STATUS:
                payload = self._status(route)
            elif route.action == routes.METADATA:
                payload = self._metadata(route)
            else:
                payload = _pretty(self._describe_models())
            return 200, payload
        except routes.EmptyBodyError as err:
            code = err.code
            return err.http_status, b""
        except ServingError as err:
            code = err.code
            return err.http_status, json_output.error_body(err.message)
        except RecursionError:
            # Only a client's deeply nested JSON recurses this far (the parser and the tensor
            # conversion refuse depth first; this is the net under them): a 400, not a 500.
            code = Code.INVALID_ARGUMENT
            return 400, json_output.error_body("JSON Value is nested too deeply")
        except Exception as err:
            code = Code.INTERNAL
            logger.exception("Unexpected error answering %s %s", method, path_and_query)
            return 500, json_output.error_body(
                errors.excerpt(f"Internal error: {type(err).__name__}: {err}")
            )
        finally:
            if self._metrics is not None and route is not None and route.model:
                self._metrics.record_request(
                    route.model,
                    _API_OF_ACTION.get(route.action, route.action),
                    "REST",
                    code.name,
                    time.perf_counter() - started,
                )

    def _in_pool(self, function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        """Runs `function` on the shared pool (for large bodies and outputs only).

        Small requests stay on the loop, called inline (a thread hop costs more than their
        whole parse); a large body parsed on the loop stalled every other client for its whole
        parse (a 40 MB body: 2.2 s, issue 12).
        """
        return asyncio.get_running_loop().run_in_executor(self._runner.executor, function, *args)

    def _cached(self, route: routes.Route, body: bytes) -> bytes | None:
        """The cached answer to this exact request from the version it resolves to now, or
        None (no cache, a miss, or a model or version that does not resolve: the general path
        then answers with TF Serving's error, in its order)."""
        cache = self._plane.response_cache
        if cache is None:
            return None
        try:
            with self._plane.version(route.model, route.version, route.label) as handle:
                version = handle.version
        except ServingError:
            return None
        return cache.get(cache_key("rest", route.action, route.model, version, body))

    def _remember(self, route: routes.Route, version: int, body: bytes, payload: bytes) -> None:
        cache = self._plane.response_cache
        if cache is not None:
            key = cache_key("rest", route.action, route.model, version, body)
            cache.put(key, payload, len(payload))

    async def _predict(self, route: routes.Route, body: bytes) -> tuple[bytes, int]:
        """Answers a predict call.

        Returns:
          (the JSON answer, the version that answered).
        """
        large = len(body) > OFFLOAD_BODY_BYTES
        if large:
            answered = await self._predict_numeric_instances(route, body)
            if answered is not None:
                return answered
        doc = (
            await self._in_pool(json_input.parse_body, body)
            if large
            else json_input.parse_body(body)
        )
        signature_name = json_input.signature_name(doc)
        with self._plane.version(route.model, route.version, route.label) as handle:
            name = signature_name or DEFAULT_SERVING_SIGNATURE
            signature = handle.servable.signatures.get(name)
            if signature is None:
                raise errors.invalid_argument(
                    f'Serving signature name: "{name}" not found in signature def'
                )
            if not signature.inputs:
                raise errors.invalid_argument(
                    f"Failed to get input map for signature: {signature_name or 'DEFAULT'}"
                )
            inputs, request_format = (
                await self._in_pool(json_input.predict_inputs, doc, signature.inputs, body)
                if large
                else json_input.predict_inputs(doc, signature.inputs, body)
            )
            del doc  # its Python objects are 8-30x the body: free them before inference
            predict.check_inputs(signature, inputs)
            keys = predict.output_keys(signature, ())
            outputs = await self._plane.predict(
                handle, signature, inputs, keys, "predict", target=(route.version, route.label)
            )
            version = handle.version
        if _large_output(outputs):
            payload = await self._in_pool(json_output.predict_response, outputs, request_format)
            return payload, version
        return json_output.predict_response(outputs, request_format), version

    async def _predict_numeric_instances(
        self, route: routes.Route, body: bytes
    ) -> tuple[bytes, int] | None:
        """A large `{"instances": [numbers or lists of numbers]}` body converted piece by piece
        on the pool (issue 12: `json_input.numeric_instances_tensor`): no call holds the GIL
        for more than ~10 ms and the peak is about the array itself.

        Returns:
          (the response, the version that answered), or None when the body, the model or the
          signature is not that case (then the general path answers, with TF Serving's errors
          in its order).
        """
        frame = json_input.numeric_instances_frame(body)
        if frame is None:
            return None
        # An unknown model or version is not this case: the general path answers it, with TF
        # Serving's errors in its order; hence entering by hand rather than with `with`.
        pinned = self._plane.version(route.model, route.version, route.label)
        try:
            handle = pinned.__enter__()
        except ServingError:
            return None
        try:
            signature = handle.servable.signatures.get(DEFAULT_SERVING_SIGNATURE)
            if signature is None or len(signature.inputs) != 1:
                return None
            ((name, spec),) = signature.inputs.items()
            array = await self._in_pool(
                json_input.numeric_instances_tensor, body, frame, spec.dtype
            )
            if array is None:
                return None
            inputs = {name: array}
            predict.check_inputs(signature, inputs)
            keys = predict.output_keys(signature, ())
            outputs = await self._plane.predict(
                handle, signature, inputs, keys, "predict", target=(route.version, route.label)
            )
        finally:
            pinned.__exit__(None, None, None)
        row = json_input.RequestFormat.ROW
        if _large_output(outputs):
            return await self._in_pool(json_output.predict_response, outputs, row), handle.version
        return json_output.predict_response(outputs, row), handle.version

    async def _classify_or_regress(self, route: routes.Route, body: bytes) -> tuple[bytes, int]:
        large = len(body) > OFFLOAD_BODY_BYTES
        if large:
            doc = await self._in_pool(json_input.parse_body, body)
            signature_name = json_input.signature_name(doc)
            examples = await self._in_pool(json_examples.serialized_examples, doc, route.action)
        else:
            doc = json_input.parse_body(body)
            signature_name = json_input.signature_name(doc)
            examples = json_examples.serialized_examples(doc, route.action)
        del doc
        with self._plane.version(route.model, route.version, route.label) as handle:
            self._plane.record_examples(route.model, len(examples))
            if route.action == routes.CLASSIFY:
                signature = classify_regress.classification_signature(
                    handle.servable, signature_name
                )
                classes = await self._plane.classify(
                    handle, signature, examples, "classify", target=(route.version, route.label)
                )
                return json_output.classify_response(classes), handle.version
            signature = classify_regress.regression_signature(handle.servable, signature_name)
            values = await self._plane.regress(
                handle, signature, examples, "regress", target=(route.version, route.label)
            )
            return json_output.regress_response(values), handle.version

    def _status(self, route: routes.Route) -> bytes:
        # TF Serving's status API ignores a label in the path and lists every version.
        statuses = self._plane.status(route.model, route.version)
        return _pretty(
            {
                "model_version_status": [
                    {
                        "version": str(status.version),
                        "state": status.state.name,
                        "status": {
                            "error_code": status.error_code.name,
                            "error_message": status.error_message,
                        },
                    }
                    for status in statuses
                ]
            }
        )

    def _metadata(self, route: routes.Route) -> bytes:
        version, signature_defs = self._plane.metadata(route.model, route.version, route.label)
        return _pretty(
            {
                "model_spec": {
                    "name": route.model,
                    "signature_name": "",
                    "version": str(version),
                },
                "metadata": {"signature_def": signature_def_json(signature_defs)},
            }
        )


def _large_output(outputs: dict[str, Any]) -> bool:
    """Whether the outputs are worth encoding on the pool (a loop, not sum(): ~0.2 us)."""
    elements = 0
    for array in outputs.values():
        elements += array.size
    return elements > OFFLOAD_OUTPUT_ELEMENTS


def signature_def_json(signature_defs: get_model_metadata_pb2.SignatureDefMap) -> dict[str, Any]:
    """A SignatureDefMap in TF Serving's JSON (proto field names, defaults printed)."""
    return json_format.MessageToDict(
        signature_defs, preserving_proto_field_name=True, **_PRINT_DEFAULTS
    )


# TF Serving's printer prints proto3 fields left at their defaults. protobuf 5.26 renamed the
# option (the server's stack has 7.x, the pipeline's 3.20: issue 14); for proto3 messages without
# `optional` fields, as here, both print the same fields.
_PRINT_DEFAULTS = (
    {"always_print_fields_with_no_presence": True}
    if "always_print_fields_with_no_presence"
    in inspect.signature(json_format.MessageToDict).parameters
    else {"including_default_value_fields": True}
)


def _pretty(document: dict[str, Any]) -> bytes:
    # TF Serving prints status and metadata with protobuf's JSON printer: 1-space indent,
    # trailing newline.
    return (json.dumps(document, indent=1) + "\n").encode()


__all__ = ["Code", "RestApi", "signature_def_json"]

"""TF Serving's error model: a canonical status code plus a message.

Every layer raises `ServingError`; the REST front end maps the code to an HTTP status with TF
Serving's own table (`http_server.cc`, `ToHTTPStatusCode`) and the gRPC front end to the gRPC code
of the same name, so both answer exactly what tensorflow_model_server answers.
"""

from __future__ import annotations

import enum


class Code(enum.IntEnum):
    """`tensorflow.error.Code` (identical numbering to gRPC status codes)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


HTTP_STATUS_OF_CODE: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


class ServingError(Exception):
    """An error with a TF status code, raised anywhere in the server and mapped at the edge.

    Attributes:
      code: the canonical status code.
      message: the human-readable message, worded like TF Serving's where one exists.
    """

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS_OF_CODE[self.code]

    def __repr__(self) -> str:
        return f"ServingError({self.code.name}, {self.message!r})"


def invalid_argument(message: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(Code.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(Code.FAILED_PRECONDITION, message)


def from_tensorflow(error: BaseException) -> ServingError:
    """Converts an exception raised by TensorFlow while running a graph.

    Args:
      error: usually a `tf.errors.OpError`, whose `error_code` is the canonical code.

    Returns:
      A ServingError with the same code and TensorFlow's message.
    """
    code = getattr(error, "error_code", None)
    message = getattr(error, "message", None) or str(error)
    try:
        return ServingError(Code(code), message)
    except ValueError:
        return ServingError(Code.INTERNAL, message)


# Error messages quote at most this much of a client's value (issue 12: a 20 MB request got a
# 120 MB error body); TF Serving's messages are unchanged for values shorter than this.
EXCERPT_CHARS = 200


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text`, or its first `limit` characters followed by "..." when it is longer.

    Args:
      text: a value quoted in an error message.
      limit: the most characters kept.

    Returns:
      The text to embed in the message.
    """
    return text if len(text) <= limit else text[:limit] + "..."

"""Message classes for TF Serving's batching, monitoring and SSL config files.

tensorflow-serving-api ships only the API protos and the model-server config; the messages
behind `--batching_parameters_file` (`BatchingParameters`), `--monitoring_config_file`
(`MonitoringConfig`) and `--ssl_config_file` (`SSLConfig`) are not in the wheel. When a
tensorflow_serving package that has them is installed they are used; otherwise the same schemas
(same full names, field names, numbers and types, so the same text files parse) are declared
here as descriptors in a private pool, which cannot clash with a later wheel that registers them
in the default pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2
from google.protobuf.message import Message

_PACKAGE = "tensorflow.serving"
_FieldSpec = tuple[str, int, int, int, str]  # name, number, label, type, type_name

_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_BOOL = descriptor_pb2.FieldDescriptorProto.TYPE_BOOL
_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_INT64 = descriptor_pb2.FieldDescriptorProto.TYPE_INT64
_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE

_SCHEMAS: dict[str, tuple[str, Sequence[str], dict[str, Sequence[_FieldSpec]]]] = {
    # file name: (file, dependencies, {message: fields})
    "batching": (
        "tfrelay/serving/config/session_bundle_config.proto",
        ["google/protobuf/wrappers.proto"],
        {
            "BatchingParameters": [
                ("max_batch_size", 1, _OPTIONAL, _MESSAGE, ".google.protobuf.Int64Value"),
                ("batch_timeout_micros", 2, _OPTIONAL, _MESSAGE, ".google.protobuf.Int64Value"),
                ("max_enqueued_batches", 3, _OPTIONAL, _MESSAGE, ".google.protobuf.Int64Value"),
                ("num_batch_threads", 4, _OPTIONAL, _MESSAGE, ".google.protobuf.Int64Value"),
                ("thread_pool_name", 5, _OPTIONAL, _MESSAGE, ".google.protobuf.StringValue"),
                ("allowed_batch_sizes", 6, _REPEATED, _INT64, ""),
                ("pad_variable_length_inputs", 7, _OPTIONAL, _BOOL, ""),
            ],
        },
    ),
    "monitoring": (
        "tfrelay/serving/config/monitoring_config.proto",
        [],
        {
            "PrometheusConfig": [
                ("enable", 1, _OPTIONAL, _BOOL, ""),
                ("path", 2, _OPTIONAL, _STRING, ""),
            ],
            "MonitoringConfig": [
                (
                    "prometheus_config",
                    1,
                    _OPTIONAL,
                    _MESSAGE,
                    ".tensorflow.serving.PrometheusConfig",
                ),
            ],
        },
    ),
    "ssl": (
        "tfrelay/serving/config/ssl_config.proto",
        [],
        {
            "SSLConfig": [
                ("server_key", 1, _OPTIONAL, _STRING, ""),
                ("server_cert", 2, _OPTIONAL, _STRING, ""),
                ("custom_ca", 3, _OPTIONAL, _STRING, ""),
                ("client_verify", 4, _OPTIONAL, _BOOL, ""),
            ],
        },
    ),
}

_pool = descriptor_pool.DescriptorPool()
_pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
_factory = message_factory.MessageFactory(_pool)


def _message_class(descriptor: Any) -> type[Message]:
    """The generated class for `descriptor` on either stack (issue 14).

    protobuf 4.21 added `message_factory.GetMessageClass` and 5.x removed
    `MessageFactory.GetPrototype`; the pipeline stack pins protobuf 3.20 (tensorflow-metadata 1.16),
    which has only the latter.
    """
    get_message_class = getattr(message_factory, "GetMessageClass", None)
    if get_message_class is not None:
        return get_message_class(descriptor)
    return _factory.GetPrototype(descriptor)


def _declare(schema: str) -> dict[str, type[Message]]:
    file_name, dependencies, messages = _SCHEMAS[schema]
    file_proto = descriptor_pb2.FileDescriptorProto(
        name=file_name, package=_PACKAGE, syntax="proto3", dependency=list(dependencies)
    )
    for message_name, fields in messages.items():
        message = file_proto.message_type.add(name=message_name)
        for name, number, label, kind, type_name in fields:
            field = message.field.add(name=name, number=number, label=label, type=kind)
            if type_name:
                field.type_name = type_name
    _pool.Add(file_proto)
    return {
        name: _message_class(_pool.FindMessageTypeByName(f"{_PACKAGE}.{name}")) for name in messages
    }


def _batching_parameters() -> type[Message]:
    try:  # a tensorflow_serving build that ships the real module
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2

        return session_bundle_config_pb2.BatchingParameters
    except ImportError:
        return _declare("batching")["BatchingParameters"]


def _monitoring_config() -> type[Message]:
    try:
        from tensorflow_serving.config import monitoring_config_pb2

        return monitoring_config_pb2.MonitoringConfig
    except ImportError:
        return _declare("monitoring")["MonitoringConfig"]


def _ssl_config() -> type[Message]:
    try:
        from tensorflow_serving.config import ssl_config_pb2

        return ssl_config_pb2.SSLConfig
    except ImportError:
        return _declare("ssl")["SSLConfig"]


BatchingParameters = _batching_parameters()
MonitoringConfig = _monitoring_config()
SSLConfig = _ssl_config()

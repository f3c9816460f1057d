"""The request logger in process, on an event loop as the server runs it: Predict calls handed over
as the data plane hands them (`submit_predict`) are encoded in batches from templates, later
batches from the templates the first built, and their records are the generic path's bytes."""

from __future__ import annotations

import asyncio
import pathlib

import numpy as np

from tfrelay.serving.request_log import tfrecord
from tfrelay.serving.request_log.config import RequestLogConfig
from tfrelay.serving.request_log.files import RotationPolicy
from tfrelay.serving.request_log.logger import RequestLogger, RequestLogOptions
from tfrelay.serving.request_log.records import Kind, LoggedCall, prediction_log

TAGS = ("serve",)
NOW = 1_796_000_000


def _logger(tmp_path: pathlib.Path) -> tuple[RequestLogger, RequestLogConfig]:
    config = RequestLogConfig(str(tmp_path / "logs" / "requests"), 1.0)
    logger = RequestLogger(
        RequestLogOptions(
            max_queued_bytes=1 << 24,
            rotation=RotationPolicy(max_bytes=1 << 30, max_seconds=3600),
            spool_dir=str(tmp_path / "spool"),
        ),
        clock=lambda: NOW + 0.5,
    )
    logger.update({"m": config})
    return logger, config


def _records(data: bytes) -> list[bytes]:
    records, offset = [], 0
    while offset < len(data):
        (length,) = tfrecord.LENGTH.unpack_from(data, offset)
        framed = data[offset : offset + 12 + length + 4]
        assert framed == tfrecord.frame(framed[12:-4]), "length and data checksums hold"
        records.append(framed[12:-4])
        offset += len(framed)
    return records


def test_predict_calls_batched_from_templates_log_the_generic_bytes(tmp_path):
    logger, config = _logger(tmp_path)
    sent: list[LoggedCall] = []

    async def serve() -> None:
        # Three batches: the first builds the templates, the second reuses them, a second
        # layout joins in the last.
        for batch, shape in enumerate([(1, 1), (1, 1), (2, 3)]):
            for i in range(5):
                x = np.full(shape, batch * 10 + i, np.float32)
                y = x * 0.5 + 2
                target = (None, "stable") if i % 2 else (None, None)
                logger.submit_predict(
                    config, "m", 7, "serving_default", TAGS, target, None,
                    {"x": x}, {"y": y}, ["y"],
                )  # fmt: skip
                call = LoggedCall(
                    config, Kind.PREDICT, "m", 7, "serving_default", TAGS, target, NOW, None,
                    {"x": x}, (), {"y": y}, ["y"],
                )  # fmt: skip
                sent.append(call)
            if batch == 1:
                templates = dict(logger._encoder._templates)
                assert len(templates) == 2 and len(logger._pending_predicts) == 5
            if batch == 2:
                assert logger._encoder._templates.keys() >= templates.keys(), "reused"
            await asyncio.sleep(0.05)  # past the logger's encoding delay

    asyncio.run(serve())
    logger.close()
    records = _records(b"".join(p.read_bytes() for p in (tmp_path / "logs").glob("*.tfrecord")))
    assert sorted(records) == sorted(prediction_log(call) for call in sent)

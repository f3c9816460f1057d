"""TFRecord framing (tensorflow/core/lib/io/record_writer.cc), so request logs are written
without TensorFlow's file system (which reads no s3:// in TF 2.21) and read by
`tf.data.TFRecordDataset`, `tf.io.tf_record_iterator` and TF Serving's warmup loader alike.

Each record: uint64 length, uint32 masked CRC-32C of the length, the data, uint32 masked CRC-32C
of the data, all little-endian.
"""

from __future__ import annotations

import struct

import google_crc32c

_MASK_DELTA = 0xA282EAD8
LENGTH = struct.Struct("<Q")  # a record's length field
CRC = struct.Struct("<I")  # a masked CRC field


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C: rotate right by 15 bits and add a constant (crc32c.h `Mask`),
    because a CRC of data that contains CRCs is otherwise weak.

    Args:
      data: the bytes to check.

    Returns:
      The masked checksum as an unsigned 32-bit int.
    """
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One record as it is written into a TFRecord file.

    Args:
      record: the serialized message.

    Returns:
      Length, its checksum, the record and its checksum.
    """
    length = LENGTH.pack(len(record))
    return b"".join((length, CRC.pack(masked_crc(length)), record, CRC.pack(masked_crc(record))))

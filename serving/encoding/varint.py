"""Protobuf's base-128 varint, the one writer of it in the encoder and the dtype table."""

from __future__ import annotations

_SMALL_VARINTS = [bytes([i]) for i in range(128)]


def varint(value: int) -> bytes:
    """Protobuf's base-128 varint of an int (negative ones as their 64-bit two's complement).

    Args:
      value: an int in [-2**63, 2**64).

    Returns:
      Its varint bytes.
    """
    if 0 <= value < 128:
        return _SMALL_VARINTS[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)

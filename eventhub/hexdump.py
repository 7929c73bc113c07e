"""The classic hex dump of bytes that are not text, as the payload pages show it."""

from __future__ import annotations

LIMIT = 4096  # bytes shown; a page says when a payload is longer


def hexdump(raw: bytes, limit: int = LIMIT) -> str:
    """Per 16 bytes: the offset, the bytes in hex, the printable ones as text (others as ".")."""
    lines = []
    for offset in range(0, min(len(raw), limit), 16):
        chunk = raw[offset : offset + 16]
        text = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        lines.append(f"{offset:08x}  {chunk.hex(' '):<47}  {text}")
    return "\n".join(lines)

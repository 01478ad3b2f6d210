"""Reading file text for a model: binary sniffing, bounded lines, and fences a file cannot close."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from functools import partial
from typing import BinaryIO

MAX_LINE_CHARS = 2000
SNIFF_BYTES = 8192


def is_binary(head: bytes) -> bool:
    """NUL byte, or not UTF-8, in the first chunk (an incomplete last character is allowed)."""
    if b"\x00" in head:
        return True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return True
    return False


def iter_lines(f: BinaryIO, keep: int) -> Iterator[bytes]:
    """Lines without their newline, each cut to `keep` bytes, in bounded memory whatever the file."""
    while True:
        line = f.readline(keep)
        if not line:
            return
        if not line.endswith(b"\n"):
            _skip_to_newline(f, keep)
        yield line.rstrip(b"\r\n")


def count_lines(f: BinaryIO) -> int:
    f.seek(0)
    count, last = 0, b"\n"
    for block in iter(partial(f.read, 1 << 20), b""):
        count += block.count(b"\n")
        last = block[-1:]
    return count + (last != b"\n")


def escape_fence(text: str, tag: str) -> str:
    """Neutralise closing tags in file text so the data cannot end its own fence."""
    return re.sub(rf"<(\s*/\s*{re.escape(tag)})", r"&lt;\1", text, flags=re.IGNORECASE)


def decode(chunk: bytes) -> str:
    return chunk.decode("utf-8", errors="replace")


def clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " [line truncated]"


def plural(count: int, noun: str, nouns: str = "") -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def _skip_to_newline(f: BinaryIO, step: int) -> None:
    while (rest := f.readline(step)) and not rest.endswith(b"\n"):
        pass

"""Hostile legacy pickles, built opcode by opcode, and the files that carry them.

Code-running payloads reach for ``os.system``, ``eval`` and friends to create a
marker file: if the marker ever exists, code from a pickle ran. The others are
bombs: nesting deeper than Python recurses, a few hundred bytes that describe a
structure of 2**N paths, lengths and storage sizes the file does not hold,
tensors whose shape is enormous over a tiny storage.
"""

from __future__ import annotations

import io
import pickletools
import struct
import zipfile
from functools import cache

from .seeds import legacy_seeds

PROTO = b"\x80\x02"
STOP = b"."


def global_(module: str, name: str) -> bytes:
    """GLOBAL: push ``module.name``."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(value: str) -> bytes:
    """BINUNICODE: push a str."""
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def integer(value: int) -> bytes:
    """LONG1: push an int of any size."""
    raw = value.to_bytes((value.bit_length() + 8) // 8 or 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def put(index: int) -> bytes:
    """LONG_BINPUT: memoize the top of the stack."""
    return b"r" + struct.pack("<I", index)


def get(index: int) -> bytes:
    """LONG_BINGET: push a memoized object."""
    return b"j" + struct.pack("<I", index)


#: Callables that run code, with how to make each create ``marker``.
RUNNERS = {
    ("os", "system"): lambda marker: f"touch {marker}",
    ("posix", "system"): lambda marker: f"touch {marker}",
    ("builtins", "eval"): lambda marker: f"open({str(marker)!r}, 'w').close()",
    ("builtins", "exec"): lambda marker: f"open({str(marker)!r}, 'w').close()",
    ("subprocess", "check_call"): lambda marker: f"touch {marker}",
}


def code_runner(module: str, name: str, marker: str, *, how: str) -> bytes:
    """A pickle that calls ``module.name`` so that ``marker`` gets created."""
    argument = RUNNERS[(module, name)](marker)
    args = text(argument) + b"\x85"  # TUPLE1
    if module == "subprocess":
        args = b"(" + text("sh") + text("-c") + text(argument) + b"l\x85"
    call = global_(module, name) + args + b"R"  # REDUCE
    if how == "inside a dict":
        return PROTO + b"}" + text("model") + call + b"s" + STOP
    if how == "as a state (BUILD)":
        return PROTO + b"}" + b"}" + text("x") + call + b"s" + b"b" + STOP
    if how == "protocol 0 INST":
        return b"(" + text(argument) + b"i" + module.encode() + b"\n" + name.encode()
    return PROTO + call + STOP


HOW = ("plain", "inside a dict", "as a state (BUILD)", "protocol 0 INST")


def deep_nesting(depth: int) -> bytes:
    """Lists nested ``depth`` deep (two bytes a level)."""
    return PROTO + b"]" * depth + b"a" * (depth - 1) + STOP


def shared_lists(levels: int) -> bytes:
    """level[i+1] = [level[i], level[i]]: 2**levels paths in ~20 bytes a level."""
    body = PROTO + b"]" + put(0)
    for level in range(1, levels + 1):
        body += b"]" + b"(" + get(level - 1) + get(level - 1) + b"e" + put(level)
    return body + STOP


def lying_length(claimed: int) -> bytes:
    """A string whose length field claims far more bytes than follow."""
    return PROTO + b"X" + struct.pack("<I", claimed) + b"short" + STOP


def tensor(numel: int, size: int, stride: int, offset: int = 0) -> bytes:
    """A dict with one tensor: a float storage of ``numel``, viewed as given."""
    storage = (
        b"("
        + text("storage")
        + global_("torch", "FloatStorage")
        + text("0")
        + text("cpu")
        + integer(numel)
        + b"tQ"  # TUPLE, BINPERSID
    )
    rebuild = (
        global_("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + storage
        + integer(offset)
        + integer(size)
        + b"\x85"
        + integer(stride)
        + b"\x85"
        + b"\x89"  # requires_grad False
        + global_("collections", "OrderedDict")
        + b")R"
        + b"tR"
    )
    return PROTO + b"}" + text("w") + rebuild + b"s" + STOP


def _pickle_ends(data: bytes, count: int) -> list[int]:
    """Offsets just past each of the first ``count`` pickles in ``data``."""
    stream = io.BytesIO(data)
    ends = []
    for _ in range(count):
        for _op, _arg, _pos in pickletools.genops(stream):
            pass
        ends.append(stream.tell())
    return ends


@cache
def _zip_parts() -> tuple[list[tuple[str, bytes]], str]:
    archive = zipfile.ZipFile(io.BytesIO(legacy_seeds()["torch-zip"]))
    members = [(m.filename, archive.read(m.filename)) for m in archive.infolist()]
    pickle_name = next(n for n, _ in members if n.endswith("/data.pkl"))
    return members, pickle_name


def in_zip(payload: bytes, *, storage_bytes: int | None = None) -> bytes:
    """``payload`` as the data.pkl of a torch.save zip (other members kept)."""
    members, pickle_name = _zip_parts()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members:
            if name == pickle_name:
                data = payload  # noqa: PLW2901
            elif "/data/" in name and storage_bytes is not None:
                data = bytes(storage_bytes)  # noqa: PLW2901
            archive.writestr(name, data)
    return out.getvalue()


def in_old_format(payload: bytes) -> bytes:
    """``payload`` as the state pickle of an old (non-zip) torch.save file."""
    seed = legacy_seeds()["torch-old"]
    header_end = _pickle_ends(seed, 3)[-1]  # magic, protocol, system info
    return seed[:header_end] + payload + PROTO + b"]" + STOP  # no storages

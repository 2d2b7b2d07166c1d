"""The on-disk contract of a ckptkit file (documented in docs/ckptkit/format.md).

A ckptkit checkpoint is a valid safetensors file: an 8-byte little-endian header
length N, N bytes of JSON header (padded with spaces to a multiple of 8), then the
tensor bytes, tiled without gaps in header order. ckptkit's own data lives in the
safetensors ``__metadata__`` map (string to string) under the keys below.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Final

#: Container format written by this release (it reads every format up to it).
#: Bumped only when a reader of the previous format could not read new files
#: correctly: format 2 keeps the state's skeleton as MessagePack in its own entry
#: (format 1 kept it as JSON inside the header).
FORMAT_VERSION: Final = 2
#: Oldest ckptkit release that reads files of FORMAT_VERSION (named in the error
#: an older reader gives).
MIN_READER: Final = "0.2.0"
#: The entry that holds the skeleton of a format-2 file (a 1-D ``U8`` tensor).
SKELETON_ENTRY: Final = "__ckptkit_skeleton__"
#: Version of the caller's state that ``save`` writes by default.
CHECKPOINT_VERSION: Final = "1.0"
#: Version reported for files without a ckptkit header (plain torch.save or
#: safetensors files); they are read, never written.
LEGACY_VERSION: Final = "0.x"

#: The kinds of rows of the leaf table (format.md, "The leaf table"); format 1
#: wrote only ``tensor`` and ``ndarray``.
LEAF_KINDS: Final = frozenset(
    {"tensor", "parameter", "ndarray", "npscalar", "generator"}
)

# Keys in the safetensors ``__metadata__`` map. Every ckptkit file carries all of
# them; their common prefix appears several times in the header, so no single bit
# flip can make a ckptkit file pass for a plain safetensors file.
KEY_PREFIX: Final = "ckptkit."
KEY_FORMAT: Final = "ckptkit.format"
KEY_FORMAT_VERSION: Final = "ckptkit.format_version"
KEY_MIN_READER: Final = "ckptkit.min_reader"
KEY_HEADER: Final = "ckptkit.header"
KEY_HEADER_CHECKSUM: Final = "ckptkit.header_xxh3"
FORMAT_MAGIC: Final = "ckptkit"
METADATA_KEY: Final = "__metadata__"
ENVELOPE_KEYS: Final = (
    KEY_FORMAT,
    KEY_FORMAT_VERSION,
    KEY_MIN_READER,
    KEY_HEADER,
    KEY_HEADER_CHECKSUM,
)

#: Width of every checksum in the header (xxh3-64 as 16 hex digits); fixed so that
#: the header can be written before the data and rewritten in place afterwards.
CHECKSUM_HEX_WIDTH: Final = 16
CHECKSUM_PLACEHOLDER: Final = "0" * CHECKSUM_HEX_WIDTH


def envelope(container: str, format_version: int, header: Any) -> dict[str, str]:
    """The :data:`ENVELOPE_KEYS` of a file's ``__metadata__`` or a sharded index.

    The header is a JSON string (no caller data can spell a key at this level).
    """
    return {
        KEY_FORMAT: container,
        KEY_FORMAT_VERSION: str(format_version),
        KEY_MIN_READER: MIN_READER,
        KEY_HEADER: json.dumps(header, separators=(",", ":"), allow_nan=False),
        KEY_HEADER_CHECKSUM: CHECKSUM_PLACEHOLDER,
    }


#: The safetensors header length prefix.
LENGTH_PREFIX_BYTES: Final = 8
HEADER_ALIGNMENT: Final = 8
#: Refuse absurd header lengths before allocating them (a flipped high bit).
MAX_HEADER_BYTES: Final = 1 << 30
#: A tensor read from a file may describe more bytes than the file stores only by
#: overlapping itself (zero strides, as ``expand`` makes). Readers refuse one that
#: would take more than this many times the file's size to materialise (or
#: :data:`MIN_VIEW_LIMIT_BYTES`, if more): a crafted shape must not turn a small
#: file into a huge allocation.
MAX_VIEW_EXPANSION: Final = 1024
MIN_VIEW_LIMIT_BYTES: Final = 64 << 20


def view_limit_bytes(file_size: int) -> int:
    """The most bytes a tensor read from a file of ``file_size`` bytes may describe."""
    return max(MIN_VIEW_LIMIT_BYTES, MAX_VIEW_EXPANSION * file_size)


#: Every time ckptkit writes (header ``created_at``, migration records, ledger
#: lines): UTC, ISO-8601, microseconds, a ``Z`` suffix.
TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now_iso() -> str:
    """The current UTC time as ISO-8601 with microseconds and a ``Z`` suffix."""
    return datetime.now(UTC).strftime(TIMESTAMP_FORMAT)


def utc_iso_from_timestamp(seconds: float) -> str:
    """A POSIX timestamp as UTC ISO-8601."""
    return datetime.fromtimestamp(seconds, UTC).strftime(TIMESTAMP_FORMAT)


#: Temporary files of writers: ``.{target name}.{random}.{pid}.ckptkit-tmp``.
TEMP_SUFFIX: Final = ".ckptkit-tmp"
#: The largest process id (``pid_t`` is a signed 32-bit integer): a name with a
#: larger "pid" was not written by ckptkit and is never touched.
MAX_PID: Final = (1 << 31) - 1
_TEMP_PATTERN = re.compile(
    r"^\.(?P<target>.+)\.(?P<token>[0-9a-f]{12})\.(?P<pid>[1-9][0-9]{0,9})"
    r"\.ckptkit-tmp$"
)


#: The failure ledger kept in a checkpoint folder (format in docs/ckptkit/format.md).
LEDGER_FILENAME: Final = "failed_checkpoints.txt"

#: A checkpoint migrated in place keeps its original as ``{name}.v{old version}.bak``.
BACKUP_SUFFIX: Final = ".bak"
#: A legacy file is migrated, without an explicit output, to ``{stem}.v{version}.ckpt``
#: next to it (legacy files are never rewritten).
UPGRADED_SUFFIX: Final = ".ckpt"


def backup_name(name: str, version: str) -> str:
    """Name of the original of ``name`` (at ``version``) kept by a migration."""
    return f"{name}.v{version}{BACKUP_SUFFIX}"


def upgraded_name(legacy_name: str, version: str) -> str:
    """Name of the file a legacy file is migrated to when no output is given."""
    stem, dot, _suffix = legacy_name.rpartition(".")
    return f"{stem if dot and stem else legacy_name}.v{version}{UPGRADED_SUFFIX}"


def temp_name(target_name: str, token: str, pid: int) -> str:
    """Name of the temporary file a writer of ``target_name`` uses."""
    return f".{target_name}.{token}.{pid}{TEMP_SUFFIX}"


def parse_temp_name(name: str) -> tuple[str, int] | None:
    """Return ``(target name, writer pid)`` for a temporary file name, else None.

    Only names ckptkit could have written count: a pid of 0, with leading zeros
    or above :data:`MAX_PID` makes a name that merely looks like one.
    """
    match = _TEMP_PATTERN.match(name)
    if match is None or int(match["pid"]) > MAX_PID:
        return None
    return match["target"], int(match["pid"])


#: ``CheckpointManager`` writes one file per step, ``step-{step:012d}.ckpt``: zero
#: padding makes ``ls`` (a plain name sort) list them in step order.
STEP_PREFIX: Final = "step-"
STEP_SUFFIX: Final = ".ckpt"
STEP_DIGITS: Final = 12
#: Keys of the metadata a ``CheckpointManager`` step carries:
#: ``{"step": 123, "metrics": {"val_loss": 0.25, "acc": "nan"}}`` (non-finite metric
#: values as the strings ``"nan"``, ``"inf"``, ``"-inf"``: JSON has no such numbers).
STEP_METADATA_STEP: Final = "step"
STEP_METADATA_METRICS: Final = "metrics"
#: The highest step number (an int64, as trainers count): at most 19 digits, so a
#: name with an absurd number (thousands of digits) is never parsed, only ignored.
MAX_STEP: Final = (1 << 63) - 1
_STEP_PATTERN = re.compile(r"^step-(?P<step>[0-9]{12,19})\.ckpt$")
#: A ``CheckpointManager`` holds its folder through this file (one writer per
#: folder): JSON ``{"host": ..., "pid": ..., "since": ...}``, removed on ``close``.
MANAGER_LOCK_FILENAME: Final = ".ckptkit-manager.lock"
#: What each step file's header says, cached per file version beside the steps
#: (``{"format": "ckptkit-step-index", ...}``); never trusted over the folder.
STEP_INDEX_FILENAME: Final = ".ckptkit-steps.json"


def step_name(step: int) -> str:
    """File name of a ``CheckpointManager`` step (``step-000000000123.ckpt``)."""
    if not 0 <= step <= MAX_STEP:
        msg = f"step must be between 0 and 2**63 - 1, not {step}"
        raise ValueError(msg)
    return f"{STEP_PREFIX}{step:0{STEP_DIGITS}d}{STEP_SUFFIX}"


def parse_step_name(name: str) -> int | None:
    """The step of a file named by :func:`step_name`, else None (exact form only)."""
    match = _STEP_PATTERN.match(name)
    if match is None:
        return None
    step = int(match["step"])
    return step if step <= MAX_STEP and step_name(step) == name else None


# safetensors dtype names of the torch dtypes ckptkit stores natively.
# complex128 has no safetensors name: it is stored as its float64 real view.
SAFETENSORS_DTYPES: Final = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "int16": "I16",
    "uint16": "U16",
    "int32": "I32",
    "uint32": "U32",
    "int64": "I64",
    "uint64": "U64",
    "float16": "F16",
    "bfloat16": "BF16",
    "float32": "F32",
    "float64": "F64",
    "complex64": "C64",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e5m2fnuz": "F8_E5M2FNUZ",
    "float8_e8m0fnu": "F8_E8M0",
}
TORCH_DTYPES: Final = {v: k for k, v in SAFETENSORS_DTYPES.items()}

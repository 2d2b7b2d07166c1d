"""Checksum throughput on one core: why ckptkit uses xxh3-64.

Run: python bench/bench_checksum.py
"""

from __future__ import annotations

import hashlib
import time
import zlib

import xxhash


def rate(func: object, data: bytes, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func(data)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return len(data) / best / 1e9


def main() -> None:
    data = bytes(range(256)) * (256 << 12)  # 256 MiB
    for name, func in (
        ("xxh3_64", xxhash.xxh3_64_hexdigest),
        ("xxh64", xxhash.xxh64_hexdigest),
        ("zlib.crc32", zlib.crc32),
        ("blake2b", lambda d: hashlib.blake2b(d).hexdigest()),
        ("sha256", lambda d: hashlib.sha256(d).hexdigest()),
    ):
        print(f"{name:12s} {rate(func, data):6.2f} GB/s")


if __name__ == "__main__":
    main()

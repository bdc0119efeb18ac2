"""Helpers: keys from fixed bytes, documents, Secret volumes as kubelets write."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from keyrotor_verify import Environment, format_key, key_hash

# The clock of the conformance cases: 2026-12-01T12:00:00.000Z.
NOW_MS = 1_796_126_400_000
HOUR_MS = 3_600_000


def make_key(
    name: str,
    environment: Environment = "production",
    bits: int = 256,
    prefix: str = "kr",
) -> str:
    """A key from fixed bytes, made as scripts/conformance.ts makes its own."""
    data = b""
    round_ = 0
    while len(data) < bits // 8:
        data += hashlib.sha256(f"conformance/{name}/{round_}".encode()).digest()
        round_ += 1
    return format_key(data[: bits // 8], prefix=prefix, environment=environment)


def iso(ms: int) -> str:
    """Epoch milliseconds as toISOString writes them."""
    moment = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def entry(key: str, **overrides: Any) -> dict[str, Any]:
    sha256 = key_hash(key)
    listed: dict[str, Any] = {
        "keyId": sha256[:16],
        "sha256": sha256,
        "scopes": ["prices:read"],
        "environment": "production",
        "notBefore": iso(NOW_MS - HOUR_MS),
        "notAfter": iso(NOW_MS + HOUR_MS),
        "consumer": {"namespace": "trading", "name": "bot"},
    }
    listed.update(overrides)
    return listed


def document(
    *entries: dict[str, Any], revision: int = 1, **overrides: Any
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "apiVersion": "keyrotor.dev/verifier/v1",
        "issuer": "market-data/prices",
        "revision": revision,
        "keys": list(entries),
    }
    value.update(overrides)
    return value


def dumps(value: object) -> str:
    return json.dumps(value, indent=2)


def write_secret_volume(
    root: Path, files: dict[str, str | bytes], generation: int
) -> None:
    """Writes a Secret volume as the kubelet's atomic writer does.

    Every data key goes into a new timestamped folder, then the `..data` symlink is
    swapped for one to it, atomically (a temporary symlink renamed over it); each key is
    a symlink to `..data/<key>`. `generation` (1, 2, ...) names the folder, so it must
    differ between writes. As operator/src/verify/secret-volume.testing.ts does.
    """
    folder = f"..2026_11_28_12_00_00.{generation:06d}"
    (root / folder).mkdir()
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (root / folder / name).write_bytes(data)
    os.symlink(folder, root / "..data_tmp")
    os.replace(root / "..data_tmp", root / "..data")
    for name in files:
        try:
            os.symlink(f"..data/{name}", root / name)
        except FileExistsError:
            pass
    # A key the Secret no longer holds loses its file: the kubelet removes its symlink.
    for path in root.iterdir():
        if path.name in files or path.name.startswith(".."):
            continue
        if path.is_symlink() and os.readlink(path) == f"..data/{path.name}":
            path.unlink()

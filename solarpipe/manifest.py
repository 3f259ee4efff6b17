"""The manifest of a delivery: every file with its size and SHA-256, and its check.

Written last by hsol_exportdata (``manifest.json`` at the top of the delivery);
``verify_manifest`` is what a recipient (or the test) runs to see that nothing
was lost or changed on the way.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(root: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write ``root/manifest.json`` listing every file under ``root`` (but itself)."""
    root = Path(root)
    files = [{"path": p.relative_to(root).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_of(p)}
             for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).as_posix() != MANIFEST]
    path = root / MANIFEST
    path.write_text(json.dumps({**(extra or {}), "algorithm": "sha256", "files": files}, indent=1))
    return path


def verify_manifest(root: str | os.PathLike) -> list[str]:
    """Problems found ([] = every listed file present with its size and checksum, and no
    unlisted file)."""
    root = Path(root)
    listed = json.loads((root / MANIFEST).read_text())["files"]
    problems = []
    for entry in listed:
        p = root / entry["path"]
        if not p.is_file():
            problems.append(f"{entry['path']}: missing")
        elif p.stat().st_size != entry["bytes"] or sha256_of(p) != entry["sha256"]:
            problems.append(f"{entry['path']}: checksum differs")
    names = {e["path"] for e in listed} | {MANIFEST}
    problems += [f"{p.relative_to(root).as_posix()}: not in the manifest" for p in sorted(root.rglob("*"))
                 if p.is_file() and p.relative_to(root).as_posix() not in names]
    return problems

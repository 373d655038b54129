"""Atomic file writes, content hashes and the cache location: nothing half-written is ever left behind."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def default_cache_dir() -> Path:
    """$BENCH_CACHE_DIR, else $XDG_CACHE_HOME/mobileone-bench, else ~/.cache/mobileone-bench."""
    if os.environ.get("BENCH_CACHE_DIR"):
        return Path(os.environ["BENCH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mobileone-bench"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False, default=str) + "\n")


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def sha256_of(path: Path) -> str:
    """Hash of a file, or of a folder's files in order (an .mlpackage is a folder)."""
    h = hashlib.sha256()
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file in a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


SCRATCH_MARK = ".scratch-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def remove_stale_scratch(parent: Path) -> list[Path]:
    """Remove scratch folders left in `parent` by builds whose process is gone (killed mid-export). Each
    scratch folder names its builder's PID, so a build still running in another process is left alone."""
    removed = []
    if not Path(parent).is_dir():
        return removed
    for p in Path(parent).iterdir():
        if not (p.name.startswith(".") and SCRATCH_MARK in p.name and p.is_dir()):
            continue
        pid_text = p.name.split(SCRATCH_MARK, 1)[1].split(".", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def build_into(entry: Path, fill: Callable[[Path], None]) -> None:
    """Run `fill(scratch)` in a scratch folder beside `entry`, then rename it to `entry` (replacing an older
    one): a cache entry is either complete or absent, whatever happens during the build. A scratch folder a
    killed build left behind is removed by the next build in the same folder."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_scratch(entry.parent)
    scratch = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}{SCRATCH_MARK}{os.getpid()}."))
    try:
        fill(scratch)
        if entry.exists():
            shutil.rmtree(entry)
        scratch.rename(entry)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise

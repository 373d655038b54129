"""What every exporter shares: the content-addressed cache of artifacts and the exporter registry."""
from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from pathlib import Path
from typing import Callable

from bench.core.artifact import ExportArtifact, ExportRequest
from bench.core.errors import UserError
from bench.core.io import atomic_write_json, build_into, read_json, sha256_of
from bench.zoo.code_hash import zoo_code_hash

ARTIFACT_FILE = "artifact.json"


def _file_digest(path: str | None) -> str | None:
    return sha256_of(Path(path)) if path else None


def cache_key(target: str, request: ExportRequest, tool_versions: dict[str, str]) -> str:
    """Content key: the model's config (name, overrides, activation, weights' hash, the zoo's code), the
    exporter's settings and the versions of every library that shapes the artifact."""
    exporter_code = Path(importlib.import_module(f"exporters.{target}").__file__).read_bytes()
    payload = {
        "target": target, "model": request.model, "deploy": request.deploy, "activation": request.activation,
        "overrides": sorted(request.overrides), "weights": _file_digest(request.weights),
        "settings": sorted(request.settings), "versions": tool_versions, "zoo": zoo_code_hash(),
        "exporter": hashlib.sha256(exporter_code).hexdigest()[:16],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cached_export(
    target: str, request: ExportRequest, cache_dir: Path, tool_versions: dict[str, str], filename: str,
    build: Callable[[Path], ExportArtifact],
) -> tuple[ExportArtifact, bool]:
    """Return (artifact, cache_hit). On a miss, `build(tmp_path)` writes the artifact into a scratch folder
    and returns its record; the folder is then renamed into the cache, so a crash leaves no half entry."""
    key = cache_key(target, request, tool_versions)
    entry = Path(cache_dir) / target / f"{request.model}-{key}"
    record = read_json(entry / ARTIFACT_FILE)
    if record and (entry / filename).exists():
        return ExportArtifact.from_dict(record), True
    holder: list[ExportArtifact] = []

    def fill(scratch: Path) -> None:
        artifact = build(scratch / filename)
        artifact = ExportArtifact.from_dict({
            **artifact.to_dict(), "path": str(entry / filename), "cache_key": key,
            "sha256": sha256_of(scratch / filename), "tool_versions": tool_versions})
        atomic_write_json(scratch / ARTIFACT_FILE, artifact.to_dict())
        holder.append(artifact)

    build_into(entry, fill)
    return holder[0], False


def copy_artifact(artifact: ExportArtifact, out_dir: Path) -> ExportArtifact:
    """A copy of a cached artifact in a user's folder (`bench export --out DIR`), with its record beside it."""
    src = Path(artifact.path)
    dst = Path(out_dir) / f"{artifact.model}{''.join(src.suffixes) or ''}"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)
    copied = ExportArtifact.from_dict({**artifact.to_dict(), "path": str(dst)})
    atomic_write_json(dst.parent / f"{artifact.model}.{artifact.target}.json", copied.to_dict())
    return copied


# name -> "module:function"; imported only when used, so a missing optional package never breaks import.
EXPORTERS: dict[str, str] = {
    "onnx": "exporters.onnx:export",
    "tensorrt": "exporters.tensorrt:export",
    "trtexec": "exporters.trtexec:export",
    "coreml": "exporters.coreml:export",
    "tflite": "exporters.tflite:export",
}


def get_exporter(name: str) -> Callable[..., tuple[ExportArtifact, bool]]:
    if name not in EXPORTERS:
        raise UserError(f"unknown exporter {name!r}; known: {', '.join(EXPORTERS)}")
    module, func = EXPORTERS[name].split(":")
    return getattr(importlib.import_module(module), func)

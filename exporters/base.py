"""What every exporter shares: the content-addressed cache of artifacts and the exporter registry."""
from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable

from bench import zoo
from bench.core.artifact import ExportArtifact, ExportRequest, artifact_problem, relocated
from bench.core.errors import UserError
from bench.core.io import atomic_write_json, build_into, read_json, remove_stale_scratch, sha256_of, size_of
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
        "source": zoo.resolve(request.model).source_digest,  # a user model's own code or ONNX file
    }
    if request.input_shape:  # only when the suite asks another size: default keys stay as they were
        payload["input_shape"] = list(request.input_shape)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cached_export(
    target: str, request: ExportRequest, cache_dir: Path, tool_versions: dict[str, str], filename: str,
    build: Callable[[Path], ExportArtifact],
) -> tuple[ExportArtifact, bool]:
    """Return (artifact, cache_hit). A hit is used only after its file is checked against the record (size
    and sha256); a missing, truncated or swapped file, or an unreadable record, is rebuilt and the new
    artifact says why (`metadata["cache_repair"]`). On a miss, `build(tmp_path)` writes the artifact into a
    scratch folder that is then renamed into the cache, so a crash leaves no half entry. Records store the
    file's name, not its absolute path, so a moved or shared cache still works."""
    key = cache_key(target, request, tool_versions)
    entry = Path(cache_dir) / target / f"{request.model}-{key}"
    remove_stale_scratch(entry.parent)  # a killed build's leftovers go on the next use, hit or miss
    repair = None
    if entry.exists():
        try:
            cached = relocated(ExportArtifact.from_dict(read_json(entry / ARTIFACT_FILE)), entry)
        except (TypeError, KeyError, ValueError, OSError):
            repair = f"the cache record {entry / ARTIFACT_FILE} was unreadable"
        else:
            repair = artifact_problem(cached)
            if repair is None:
                return cached, True
    holder: list[ExportArtifact] = []

    def fill(scratch: Path) -> None:
        artifact = build(scratch / filename)
        meta = {**artifact.metadata, **({"cache_repair": f"rebuilt: {repair}"} if repair else {})}
        artifact = replace(artifact, path=filename, cache_key=key, sha256=sha256_of(scratch / filename),
                           size=size_of(scratch / filename), tool_versions=tool_versions, metadata=meta)
        atomic_write_json(scratch / ARTIFACT_FILE, artifact.to_dict())
        holder.append(relocated(artifact, entry))

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

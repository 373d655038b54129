"""What every exporter shares: the artifact record, the content-addressed cache, the exporter registry."""
from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

from bench.errors import MissingBackendError, UserError
from bench.fileio import atomic_write_json, read_json

ARTIFACT_FILE = "artifact.json"


@dataclass(frozen=True)
class ExportArtifact:
    """One exported model file (or package/folder) and everything needed to trust and reuse it."""

    model: str
    target: str  # onnx | tensorrt | coreml | tflite
    precision: str  # fp32 | fp16 | int8
    path: str
    input_name: str
    input_shape: tuple[int, ...]
    input_dtype: str
    output_name: str
    sha256: str
    cache_key: str
    tool_versions: dict[str, str] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)  # parity figures, build info, converter notes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ExportArtifact":
        d = dict(d)
        d["input_shape"] = tuple(d["input_shape"])
        return cls(**d)


@dataclass(frozen=True)
class ExportRequest:
    """What to export: the model as the zoo builds it, and the exporter's own settings."""

    model: str
    activation: str = "relu"
    weights: str | None = None
    overrides: tuple[tuple[str, object], ...] = ()
    deploy: bool = True
    settings: tuple[tuple[str, object], ...] = ()  # exporter-specific, e.g. (("precision", "fp16"),)

    def setting(self, key: str, default=None):
        return dict(self.settings).get(key, default)

    def build(self):
        from bench.zoo import create_model
        return create_model(self.model, deploy=self.deploy, weights=self.weights, activation=self.activation,
                            **dict(self.overrides))


def versions_of(*distributions: str) -> dict[str, str]:
    out = {}
    for dist in distributions:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


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


def _file_digest(path: str | None) -> str | None:
    return sha256_of(Path(path)) if path else None


def cache_key(target: str, request: ExportRequest, tool_versions: dict[str, str]) -> str:
    """Content key: the model's config (name, overrides, activation, weights' hash, the zoo's code), the
    exporter's settings and the versions of every library that shapes the artifact."""
    from bench.zoo.spec_complexity import zoo_code_hash

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


def build_into(entry: Path, fill: Callable[[Path], None]) -> None:
    """Run `fill(scratch)` in a scratch folder beside `entry`, then rename it to `entry` (replacing an older
    one): a cache entry is either complete or absent, whatever happens during the build."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
    try:
        fill(scratch)
        if entry.exists():
            shutil.rmtree(entry)
        scratch.rename(entry)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


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
    "coreml": "exporters.coreml:export",
    "tflite": "exporters.tflite:export",
}


def get_exporter(name: str) -> Callable[..., tuple[ExportArtifact, bool]]:
    if name not in EXPORTERS:
        raise UserError(f"unknown exporter {name!r}; known: {', '.join(EXPORTERS)}")
    module, func = EXPORTERS[name].split(":")
    return getattr(importlib.import_module(module), func)


def require(module: str, extra: str, what: str) -> None:
    """A clear error, naming the extra to install, when an optional package is absent."""
    if importlib.util.find_spec(module) is None:
        raise MissingBackendError(f"{what} needs the Python package '{module}'; install it with "
                                  f"pip install 'mobileone-bench[{extra}]'")

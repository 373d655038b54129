"""What crosses from the exporters to the runners: the request to export a model, and the artifact made."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bench.core.errors import UserError
from bench.core.io import sha256_of, size_of


@dataclass(frozen=True)
class ExportArtifact:
    """One exported model file (or package/folder) and everything needed to trust and reuse it."""

    model: str
    target: str  # onnx | tensorrt | trtexec | coreml | tflite
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
    size: int | None = None  # bytes (of every file, for a folder such as an .mlpackage)

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
    """What to export: the model as the zoo builds it (`bench.zoo.build_model(request)`), and the
    exporter's own settings."""

    model: str
    activation: str = "relu"
    weights: str | None = None
    overrides: tuple[tuple[str, object], ...] = ()
    deploy: bool = True
    settings: tuple[tuple[str, object], ...] = ()  # exporter-specific, e.g. (("precision", "fp16"),)
    input_shape: tuple[int, ...] | None = None  # NCHW; None: the model's declared size at batch 1

    def setting(self, key: str, default=None):
        return dict(self.settings).get(key, default)


def artifact_problem(artifact: ExportArtifact) -> str | None:
    """Why the file at `artifact.path` is not the one the record describes (missing, another size, another
    hash), or None when it is. Checked on every cache hit and before artifacts handed in are timed."""
    path = Path(artifact.path)
    if not path.exists():
        return f"{path} is missing"
    try:
        if artifact.size is not None and size_of(path) != artifact.size:
            return f"{path} has {size_of(path)} bytes, the record says {artifact.size}"
        digest = sha256_of(path)
    except OSError as e:
        return f"{path} cannot be read ({e.strerror})"
    if digest != artifact.sha256:
        return f"{path} has sha256 {digest[:12]}..., the record says {artifact.sha256[:12]}..."
    return None


def verified(artifact: ExportArtifact, what: str = "artifact") -> ExportArtifact:
    """The artifact, if its file is the one recorded; else a one-line UserError naming the difference."""
    problem = artifact_problem(artifact)
    if problem:
        raise UserError(f"{what} {artifact.model} ({artifact.target}) does not match its record: {problem}; "
                        "export it again")
    return artifact


def relocated(artifact: ExportArtifact, folder: Path) -> ExportArtifact:
    """The artifact with its path resolved in `folder` (records store paths relative to their folder, so a
    moved or shared cache still works)."""
    return replace(artifact, path=str(Path(folder) / Path(artifact.path).name))

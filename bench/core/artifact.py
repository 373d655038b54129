"""What crosses from the exporters to the runners: the request to export a model, and the artifact made."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


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

    def setting(self, key: str, default=None):
        return dict(self.settings).get(key, default)

"""Operators per model: the node count of its deploy-form ONNX graph, the graph ONNX Runtime is handed (the same
artifact as the study's `cpu` cells, from the content-keyed export cache; exported when missing)."""
from __future__ import annotations

from bench.config import SuiteConfig
from bench.pipeline import export_request
from exporters.base import get_exporter


def onnx_node_count(path: str) -> int:
    import onnx

    return len(onnx.load(path, load_external_data=False).graph.node)


def operator_counts(models: list[str], cfg: SuiteConfig) -> dict[str, int | None]:
    """model -> node count of its deploy-form ONNX graph (None where the export fails: that model then has no
    operator count and is left out of the fits, which say how many models they used)."""
    exporter = get_exporter("onnx")
    out: dict[str, int | None] = {}
    for model in models:
        try:
            artifact, _hit = exporter(export_request(cfg, model, "cpu", deploy=True), cfg.cache_dir)
            out[model] = onnx_node_count(artifact.path)
        except Exception:  # a model that does not export has no count; the fit says how many it used
            out[model] = None
    return out

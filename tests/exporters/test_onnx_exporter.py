"""Real ONNX export (exporters/onnx.py): parity with PyTorch, the cache hit, another config under another key."""
import pytest

from bench.core.artifact import ExportRequest
from exporters.onnx import export

TINY = "mobileone_mu0"  # the smallest real model of the zoo: exports in seconds


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_export_parity_and_cache_hit(cache_dir):
    artifact, hit = export(ExportRequest(TINY), cache_dir)
    assert not hit
    meta = artifact.metadata
    assert meta["parity"]["passed"] and meta["parity"]["rel_error"] <= 1e-4
    assert meta["opset"] == 18 and meta["batchnorm_left"] == 0 and "BatchNormalization" not in meta["ops"]
    assert artifact.input_shape == (1, 3, 224, 224) and artifact.sha256 and artifact.cache_key
    again, hit = export(ExportRequest(TINY), cache_dir)
    assert hit and again == artifact
    other, hit = export(ExportRequest(TINY, deploy=False), cache_dir)  # another config, another key
    assert not hit and other.cache_key != artifact.cache_key
    assert other.metadata["build"]["deploy"] is False

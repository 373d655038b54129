"""Real conversions with coremltools (any OS): the package's spec is what was asked for, and every zoo model
converts. Conversions take 5-30 s each on a laptop CPU, hence `slow`."""
from pathlib import Path

import pytest

from bench.core.errors import UserError
from bench.core.io import default_cache_dir
from bench.zoo import create_model, list_models
from bench.core.artifact import ExportRequest
from bench.core.io import sha256_of
from exporters.coreml import ExpectedPackage, ExportError, export, validate_package

pytestmark = [pytest.mark.coreml, pytest.mark.usefixtures("coremltools_installed")]

SHAPE, LOGITS = (1, 3, 224, 224), (1, 1000)
DEFAULT = ExpectedPackage(SHAPE, LOGITS, "fp16", False, 7)


def test_bad_settings_fail_before_anything_is_converted(tmp_path):
    with pytest.raises(UserError, match="unknown Core ML setting"):
        export(ExportRequest("mobileone_s0", settings=(("opset", 18),)), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobileone_s0", "mobilenetv3_large_100"])
def test_real_conversion_gives_the_package_asked_for(name, tmp_path):
    artifact, hit = export(ExportRequest(name), tmp_path)
    path = Path(artifact.path)
    assert not hit and path.suffix == ".mlpackage" and (path / "Manifest.json").is_file()
    assert (artifact.target, artifact.precision, artifact.input_name, artifact.output_name) == (
        "coreml", "fp16", "input", "logits")
    assert artifact.input_shape == SHAPE and artifact.input_dtype == "float16"
    assert artifact.sha256 == sha256_of(path)

    facts = validate_package(path, DEFAULT)  # read back from disk, independently of the export's own check
    assert facts["type"] == "mlProgram" and facts["spec_version"] == 7 and facts["opset"] == "CoreML6"
    assert facts["inputs"] == [{"name": "input", "kind": "multiArray", "shape": list(SHAPE), "dtype": "FLOAT16"}]
    assert facts["outputs"] == [{"name": "logits", "kind": "multiArray", "shape": list(LOGITS), "dtype": "FLOAT16"}]
    assert set(facts["weight_blobs"]) == {"FLOAT16"}
    params = sum(p.numel() for p in create_model(name).parameters())
    # every weight is in the package as fp16 (coremltools folds BN and merges identical constants, so the
    # count is within a percent of the deploy form's parameters, not equal)
    assert 0.99 * params <= facts["weight_values"]["FLOAT16"] <= params * 1.01
    assert facts["mil_ops"]["conv"] >= 20 and "cast" not in facts["mil_ops"]  # fp16 I/O: no casts

    meta = artifact.metadata
    assert meta["spec"] == facts and meta["settings"]["minimum_deployment_target"] == "iOS16"
    assert meta["timings_s"]["convert_s"] > 0 and isinstance(meta["warnings"], list)
    # The zoo settles BN statistics at random init, so activations fit fp16 (the check itself is tested below).
    assert meta["fp16_range"]["fits"] is True

    with pytest.raises(ExportError, match="input"):  # the check can fail: the same package, other expectations
        validate_package(path, ExpectedPackage(SHAPE, LOGITS, "fp32", False, 7))

    again, hit = export(ExportRequest(name), tmp_path)
    assert hit and again.path == artifact.path and again.sha256 == artifact.sha256


@pytest.mark.slow
def test_image_input_with_imagenet_normalization_folded_in(tmp_path):
    artifact, _ = export(ExportRequest("mobileone_s0", settings=(("image_input", True),)), tmp_path)
    facts = validate_package(Path(artifact.path), ExpectedPackage(SHAPE, LOGITS, "fp16", True, 7))
    assert facts["inputs"] == [{"name": "input", "kind": "image", "width": 224, "height": 224, "color_space": "RGB"}]
    assert artifact.input_dtype == "image-rgb8"
    # the preprocessing (scale, bias) and the 1/std multiply are ops in the program
    assert facts["mil_ops"]["mul"] >= 2 and facts["mil_ops"]["add"] >= 1
    assert artifact.metadata["normalization"]["std"] == (0.229, 0.224, 0.225)


@pytest.mark.slow
def test_fp32_io_keeps_fp16_weights(tmp_path):
    artifact, _ = export(ExportRequest("mobileone_s0", settings=(("io_precision", "fp32"),)), tmp_path)
    facts = validate_package(Path(artifact.path), ExpectedPackage(SHAPE, LOGITS, "fp32", False, 7))
    assert facts["inputs"][0]["dtype"] == "FLOAT32" and facts["outputs"][0]["dtype"] == "FLOAT32"
    assert set(facts["weight_blobs"]) == {"FLOAT16"} and facts["mil_ops"]["cast"] == 2  # cast in, cast out
    assert artifact.input_dtype == "float32"


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models("all"))
def test_every_zoo_model_converts(name):
    # the shared cache ($BENCH_CACHE_DIR): CI converts each model once; a cached package is re-checked here
    artifact, _ = export(ExportRequest(name), default_cache_dir())
    facts = validate_package(Path(artifact.path), DEFAULT)
    assert facts["mil_ops"].get("conv", 0) > 0


def test_fp16_overflow_is_detected_and_explained():
    """A model whose activations exceed fp16's range (as MobileOne-S0 did at raw random init) is flagged."""
    import torch
    from exporters.coreml import activation_peak, fp16_range_note

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1, bias=False), torch.nn.Flatten(), torch.nn.Linear(4 * 4, 2))
    torch.nn.init.constant_(model[0].weight, 3e4)
    shape, peak = activation_peak(model, torch.ones(1, 3, 2, 2))
    assert shape == (1, 2) and peak > 65504
    assert "above fp16" in fp16_range_note(peak) and fp16_range_note(1000.0) is None

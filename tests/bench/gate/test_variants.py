"""What an A/B compares (bench/gate/variants.py): one way of naming the two sides, and artifact folders."""
import pytest

from bench.core.errors import UserError
from bench.gate.variants import VariantChoice, prepare_variants, variant_from_artifacts

from gate_helpers import write_artifact


@pytest.mark.parametrize("choice, kind", [
    (dict(base="origin/main"), "revisions"),
    (dict(base="a", head="b"), "revisions"),
    (dict(base_config="a.toml", head_config="b.toml"), "configs"),
    (dict(base_artifacts="a", head_artifacts="b"), "artifacts"),
])
def test_one_way_of_naming_the_variants(choice, kind):
    assert VariantChoice(**choice).kind == kind


@pytest.mark.parametrize("choice, message", [
    (dict(), "one way"),
    (dict(base="a", base_config="a.toml"), "one way"),
    (dict(head="HEAD"), "--head needs --base"),
    (dict(base_config="a.toml"), "pass both --base-config"),
    (dict(head_artifacts="b"), "pass both --base-artifacts"),
])
def test_muddled_choices_are_refused(choice, message):
    with pytest.raises(UserError, match=message):
        VariantChoice(**choice)


def test_artifact_folder(tmp_path):
    write_artifact(tmp_path / "a", "mobileone_s0")
    write_artifact(tmp_path / "a", "mobileone_s1", deploy=False)
    v = variant_from_artifacts("head", str(tmp_path / "a"), None, "cpu", 1)
    assert set(v.targets) == {"mobileone_s0", "mobileone_s1"} and v.source == f"artifacts {tmp_path / 'a'}"
    assert v.targets["mobileone_s0"].path == str(tmp_path / "a" / "mobileone_s0.onnx")  # the copy beside it
    assert v.forms == {"mobileone_s0": "deploy", "mobileone_s1": "train"}
    assert set(variant_from_artifacts("head", str(tmp_path / "a"), "mobileone_s1", "cpu", 1).targets) == {
        "mobileone_s1"}
    with pytest.raises(UserError, match="no onnx artifacts"):
        variant_from_artifacts("base", str(tmp_path / "a"), "mobilenetv2_100", "cpu", 1)
    with pytest.raises(UserError, match="is not a folder"):
        variant_from_artifacts("base", str(tmp_path / "missing"), None, "cpu", 1)


def test_a_swapped_or_truncated_artifact_is_refused_not_timed(tmp_path):
    write_artifact(tmp_path / "a", "mobileone_s0")
    write_artifact(tmp_path / "a", "mobileone_s1")
    (tmp_path / "a" / "mobileone_s1.onnx").write_bytes((tmp_path / "a" / "mobileone_s0.onnx").read_bytes())
    with pytest.raises(UserError, match=r"--head-artifacts mobileone_s1 \(onnx\) does not match its record"):
        variant_from_artifacts("head", str(tmp_path / "a"), None, "cpu", 1)
    (tmp_path / "a" / "mobileone_s1.onnx").write_bytes(b"trunc")
    with pytest.raises(UserError, match="has 5 bytes, the record says"):
        variant_from_artifacts("head", str(tmp_path / "a"), None, "cpu", 1)


def test_artifact_folders_with_different_models_are_refused(tmp_path):
    write_artifact(tmp_path / "a", "mobileone_s0")
    write_artifact(tmp_path / "a", "mobileone_s1")
    write_artifact(tmp_path / "b", "mobileone_s0")
    choice = VariantChoice(base_artifacts=str(tmp_path / "a"), head_artifacts=str(tmp_path / "b"))
    with pytest.raises(UserError, match="only in --base-artifacts: mobileone_s1"):
        prepare_variants(choice, None, "cpu", 1, {}, tmp_path / "cache")
    base, head = prepare_variants(choice, "mobileone_s0", "cpu", 1, {}, tmp_path / "cache")
    assert set(base.targets) == set(head.targets) == {"mobileone_s0"}

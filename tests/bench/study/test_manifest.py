import pytest

from bench.core.errors import UserError
from bench.study import manifest as mf


def test_round_trip_and_stage_update(tmp_path):
    m = mf.Manifest(devices=("cpu",), protocol="quick", cores=2, base={"models": "all"}, models="mobileone_s0")
    m = m.with_stage(mf.StageRecord("table1", "T1", config={"models": "mobileone_s0"}))
    m = m.with_stage(mf.StageRecord("reparam", "R", status=mf.SKIPPED, skipped="why"))
    mf.save(tmp_path, m)
    back = mf.load(tmp_path)
    assert back == m
    back = back.with_stage(mf.StageRecord("table1", "T1", status=mf.COMPLETE, run="runs/x.json", wall_s=3.0))
    assert [s.name for s in back.stages] == ["table1", "reparam"]
    assert back.stage("table1").status == mf.COMPLETE and back.stage("table1").run == "runs/x.json"


def test_missing_and_broken_manifests_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="no study in"):
        mf.load(tmp_path)
    mf.manifest_path(tmp_path).write_text('{"schema": 99}')
    with pytest.raises(UserError, match="not a study manifest"):
        mf.load(tmp_path)
    mf.manifest_path(tmp_path).write_text('not json')
    with pytest.raises(UserError, match="not a study manifest"):
        mf.load(tmp_path)

"""`bench study`'s bad input: one line on stderr, exit 2, no traceback, nothing measured."""
import json

import pytest

from bench.cli import main


def run(capsys, *args):
    code = main(["study", *args])
    err = capsys.readouterr().err
    return code, err


def assert_one_line(code, err, *fragments):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("args, fragments", [
    (["--stages", "table1,bogus"], ["--stages", "unknown stage bogus", "choose from table1"]),
    (["--devices", "gpu"], ["unknown device 'gpu'"]),
    (["--protocol", "fastest"], ["protocol = 'fastest' is unknown"]),
    (["--models", "resnet50"], ["no model matches 'resnet50'"]),
    (["--paper", "--devices", "cpu"], ["--paper renders the paper's figures without measuring"]),
    (["--resume", "--devices", "cpu"], ["--resume continues the study as it was planned"]),
    (["--devices", "trt"], ["device trt cannot run here"]),
])
def test_bad_flags(capsys, tmp_path, args, fragments):
    code, err = run(capsys, "--out", str(tmp_path / "s"), *args)
    assert_one_line(code, err, *fragments)
    assert not (tmp_path / "s" / "study.json").exists()


def test_resume_without_a_study(capsys, tmp_path):
    code, err = run(capsys, "--out", str(tmp_path), "--resume")
    assert_one_line(code, err, "no study in", "without --resume")


def test_an_existing_study_is_not_overwritten(capsys, tmp_path):
    (tmp_path / "study.json").write_text(json.dumps({"schema": 1}))
    code, err = run(capsys, "--out", str(tmp_path), "--devices", "cpu")
    assert_one_line(code, err, "already holds a study", "--resume")


def test_out_that_is_a_file(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    code, err = run(capsys, "--out", str(f))
    assert_one_line(code, err, "is a file, not a folder")


def test_redo_needs_resume_and_a_known_stage(capsys, tmp_path):
    code, err = run(capsys, "--out", str(tmp_path), "--redo", "table1")
    assert_one_line(code, err, "--redo measures stages of an existing study again; add --resume")
    code, err = run(capsys, "--out", str(tmp_path), "--resume", "--redo", "tabel1")
    assert_one_line(code, err, "unknown stage tabel1")


def test_redo_makes_a_stage_pending_again(tmp_path):
    from bench.study import manifest as mf
    from bench.study.study import start_or_resume

    m = mf.Manifest(devices=("cpu",), protocol="quick", cores=2)
    m = m.with_stage(mf.StageRecord("table1", "T1", status=mf.COMPLETE, config={"models": "mobileone_s0"},
                                    run="runs/old.json", wall_s=5.0))
    mf.save(tmp_path, m)
    back = start_or_resume(tmp_path, None, True, None, redo=("table1",))
    stage = back.stage("table1")
    assert stage.status == mf.PENDING and stage.run is None and stage.config == {"models": "mobileone_s0"}
    assert mf.load(tmp_path).stage("table1").status == mf.PENDING

"""The CI workflow: valid YAML with the expected jobs, torch installed before the project, the gate's exit
codes mapped to failure and warning, and every `bench` command line in it accepted by our parser."""
import importlib
import re
import shlex

import pytest
import yaml

from bench.reference import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "latency.yml"


@pytest.fixture(scope="module")
def wf():
    return yaml.safe_load(WORKFLOW.read_text())


def run_text(job) -> str:
    return "\n".join(s.get("run", "") for s in job["steps"])


def test_triggers_and_jobs(wf):
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"pull_request", "push", "schedule", "workflow_dispatch"} <= set(on)
    assert set(wf["jobs"]) == {"gate", "devices", "report"}
    assert wf["jobs"]["gate"]["if"] == "github.event_name == 'pull_request'"
    assert wf["jobs"]["report"]["needs"] == "devices"


def test_gate_job(wf):
    job = wf["jobs"]["gate"]
    assert job["runs-on"] == "ubuntu-latest"
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    text = run_text(job)
    assert "git merge-base" in text and "--base" in text and "--head HEAD" in text
    assert ">> \"$GITHUB_STEP_SUMMARY\"" in text and "--markdown gate.md" in text
    assert re.search(r"3\)\s*echo \"::warning", text) and re.search(r"1\)\s*echo \"::error[^\n]*\n\s*exit 1", text)


def test_device_matrix(wf):
    job = wf["jobs"]["devices"]
    labels = {m["label"]: m for m in job["strategy"]["matrix"]["include"]}
    assert set(labels) == {"gpu", "mac", "android"}
    assert job["runs-on"] == ["self-hosted", "${{ matrix.label }}"]
    assert job["if"] == "github.event_name != 'pull_request'"  # never fork code on self-hosted machines
    assert "bench run --device" in run_text(job)
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in job["steps"])
    assert {labels[k]["device"] for k in labels} == {"trt", "coreml", "android"}


def test_report_merges_downloads(wf):
    job = wf["jobs"]["report"]
    dl = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert dl["with"]["merge-multiple"] is True and dl["with"]["path"] == "results/ci"
    text = run_text(job)
    assert "bench table --results results/ci" in text and "bench plot --results results/ci" in text


@pytest.mark.parametrize("job_name", ["gate", "devices", "report"])
def test_torch_is_installed_before_the_project(wf, job_name):
    job = wf["jobs"][job_name]
    text = run_text(job)
    if "matrix.torch" in text:  # the device matrix names its torch line per runner
        for entry in job["strategy"]["matrix"]["include"]:
            assert entry["torch"].startswith("pip install torch==2.13.0")
        assert text.index("${{ matrix.torch }}") < text.index("pip install -e")
    else:
        assert text.index("pip install torch==2.13.0") < text.index("pip install -e")


def bench_lines(text: str):
    joined = re.sub(r"\\\n\s*", " ", text)
    for line in (part.strip() for ln in joined.splitlines() for part in ln.split("&&")):
        if line.startswith("bench "):
            line = re.sub(r"\$\{\{[^}]*\}\}", "X", line).replace('"${extra[@]}"', "")
            yield shlex.split(line)[1:]


def test_every_bench_command_line_parses(wf, monkeypatch):
    from bench import commands
    from bench.cli import build_parser

    wanted = ["gate"] + [m for m in ("analysis",) if importlib.util.find_spec(f"bench.commands.{m}")]
    monkeypatch.setattr(commands, "COMMAND_MODULES",
                        commands.COMMAND_MODULES + [m for m in wanted if m not in commands.COMMAND_MODULES])
    parser = build_parser()
    seen = set()
    for job in wf["jobs"].values():
        for argv in bench_lines(run_text(job)):
            parser.parse_args([a.replace("$", "") for a in argv])
            seen.add(argv[0])
    assert {"ab", "run", "devices", "table", "plot"} <= seen

"""Injected faults and hostile inputs against the real `bench` command, each in its own process.

    python benchmarks/faults.py            # every case (~4 min on 2 cores)
    python benchmarks/faults.py --list     # the cases, by class

A case is clean when the command does what the project promises: bad input gives exit 2 and ONE line on
stderr naming the problem (no traceback); a failing model is recorded as failed and the suite goes on; a
corrupted cache is rebuilt, never timed; nothing measured is lost; signals end a run as `interrupted`.
The last line printed is `N tried / M clean`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
BENCH = [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main(sys.argv[1:]))"]
TINY, OTHER = "mobileone_mu0", "mobileone_mu1"


@dataclass
class Outcome:
    rc: int
    out: str
    err: str


@dataclass
class Case:
    cls: str  # the class of fault it stands for
    name: str
    argv: Callable[["Lab"], list[str]]
    expect: Callable[["Lab", Outcome], str | None]  # None: clean; else what went wrong
    setup: Callable[["Lab"], None] = lambda lab: None
    signal_after_s: float | None = None  # send SIGTERM this long after the run file appears...
    watch: str | None = None  # ...in this folder of the lab


@dataclass
class Lab:
    """One scratch folder for all cases: a cache, a finished run to mutate, exported artifacts."""

    root: Path
    cache: Path = field(init=False)
    runs: Path = field(init=False)

    def __post_init__(self):
        self.cache, self.runs = self.root / "cache", self.root / "runs"

    def env(self) -> dict:
        return {**os.environ, "BENCH_CACHE_DIR": str(self.cache), "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def bench(self, argv: list[str], timeout: float = 600, term_after: float | None = None,
              watch: Path | None = None) -> Outcome:
        proc = subprocess.Popen(BENCH + argv, cwd=self.root, env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace")
        if term_after is not None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None and not list((watch or self.runs).glob("*.json")):
                time.sleep(0.2)
            time.sleep(term_after)
            proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return Outcome(proc.returncode, out, err)

    def a_run(self) -> Path:
        return next(p for p in sorted((self.root / "base-runs").glob("*.json")))

    def entry(self, model: str) -> Path:
        return next((self.cache / "onnx").glob(f"{model}-*"))


# ------------------------------------------------------------------------------------------- expectations

def one_line_exit_2(*words: str):
    def check(lab: Lab, o: Outcome) -> str | None:
        lines = [line for line in o.err.strip().splitlines() if line.strip()]
        if "Traceback" in o.err:
            return f"traceback (exit {o.rc}): {lines[-1] if lines else ''}"
        if o.rc != 2:
            return f"exit {o.rc}, not 2: {lines[-1] if lines else o.out.strip()[-200:]}"
        if len(lines) != 1:
            return f"{len(lines)} lines on stderr, not 1"
        missing = [w for w in words if w.lower() not in lines[0].lower()]
        return f"message lacks {missing}: {lines[0]}" if missing else None
    return check


def latest_run(lab: Lab, folder: str = "runs") -> dict:
    return json.loads(max((lab.root / folder).glob("*.json"), key=lambda p: p.stat().st_mtime).read_text())


def cell_ok_with_original_hash(model: str, original: Callable[[Lab], str]):
    def check(lab: Lab, o: Outcome) -> str | None:
        if o.rc != 0 or "Traceback" in o.err:
            return f"exit {o.rc}: {o.err.strip().splitlines()[-1:] }"
        cell = next(c for c in latest_run(lab)["cells"] if c["model"] == model)
        if cell["status"] != "ok":
            return f"cell {cell['status']}: {cell['error']}"
        if cell["artifact"]["sha256"] != original(lab):
            return "timed an artifact whose hash is not the model's own"
        if "cache_repair" not in cell["artifact"]["metadata"]:
            return "the rebuild is not recorded"
        return None
    return check


ORIGINAL: dict[str, str] = {}


def swap_artifact(lab: Lab) -> None:
    shutil.copy(lab.entry(OTHER) / "model.onnx", lab.entry(TINY) / "model.onnx")


def truncate_artifact(lab: Lab) -> None:
    f = lab.entry(TINY) / "model.onnx"
    f.write_bytes(f.read_bytes()[:1000])


def corrupt_record(lab: Lab) -> None:
    (lab.entry(TINY) / "artifact.json").write_bytes(b"\xff\xfe garbage")


def leave_scratch(lab: Lab) -> None:
    (lab.cache / "onnx" / f".{TINY}-dead.scratch-999999999.abcd").mkdir(parents=True, exist_ok=True)


def scratch_gone(lab: Lab, o: Outcome) -> str | None:
    if o.rc != 0:
        return f"exit {o.rc}"
    left = list((lab.cache / "onnx").glob(".*scratch-999999999*"))
    return f"scratch folder left: {left[0].name}" if left else None


def move_cache(lab: Lab) -> None:
    moved = lab.root / "moved-cache"
    if moved.exists():
        shutil.rmtree(moved)
    shutil.copytree(lab.cache, moved)


def moved_cache_hits(lab: Lab, o: Outcome) -> str | None:
    if o.rc != 0:
        return f"exit {o.rc}: {o.err.strip().splitlines()[-1:]}"
    return None if "(cached)" in o.out else "the moved cache was not used"


def interrupted_143(lab: Lab, o: Outcome) -> str | None:
    if o.rc != 143 or "Traceback" in o.err:
        return f"exit {o.rc}"
    status = latest_run(lab, "term")["status"]
    return None if status == "interrupted" else f"status {status}"


def nan_weights(lab: Lab) -> None:
    import torch

    from bench import zoo

    model = zoo.create_model(TINY, deploy=True)
    torch.save({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                for k, v in model.state_dict().items()}, lab.root / "nan.pt")


def cell_failed_output_check(lab: Lab, o: Outcome) -> str | None:
    if o.rc != 0 or "Traceback" in o.err:
        return f"exit {o.rc}"
    cell = latest_run(lab)["cells"][-1]
    if cell["status"] != "failed" or "NaN" not in (cell["error"] or ""):
        return f"cell {cell['status']}: {cell['error']}"
    return None


def hold_run_lock(lab: Lab) -> None:
    """A live writer of a copy of the base run (a background process holding its lock for 60 s)."""
    live = lab.root / "live"
    live.mkdir(exist_ok=True)
    shutil.copy(lab.a_run(), live / lab.a_run().name)
    code = ("import sys, time; from pathlib import Path; from bench.store import RunWriter, load_run\n"
            "p = Path(sys.argv[1]); w = RunWriter(p, load_run(p)); print('locked', flush=True); time.sleep(60)")
    lab.holder = subprocess.Popen([sys.executable, "-c", code, str(live / lab.a_run().name)], env=lab.env(),
                                  stdout=subprocess.PIPE, text=True)
    lab.holder.stdout.readline()


def release_run_lock(check):
    def wrapped(lab: Lab, o: Outcome) -> str | None:
        lab.holder.kill()
        lab.holder.wait()
        return check(lab, o)
    return wrapped


# ----------------------------------------------------------------------------------- results files

def mutate_run(name: str, change: Callable[[dict], None] | None = None, raw: bytes | None = None):
    def setup(lab: Lab) -> None:
        folder = lab.root / f"bad-{name}"
        folder.mkdir(exist_ok=True)
        target = folder / lab.a_run().name
        if raw is not None:
            target.write_bytes(raw)
            return
        data = json.loads(lab.a_run().read_text())
        change(data)
        target.write_text(json.dumps(data))
    return setup


def _drop(d, key):
    del d[key]


BAD_RESULTS = {
    "missing-field": (lambda d: _drop(d["cells"][0], "summary"), None, "summary"),
    "wrong-type": (lambda d: d["cells"][0].__setitem__("samples_ms", "fast"), None, "samples_ms"),
    "negative-latency": (lambda d: d["cells"][0]["summary"].__setitem__("latency_ms", -1.0), None, "latency_ms"),
    "infinite-latency": (lambda d: d["cells"][0]["summary"].__setitem__("latency_ms", 1e999), None, "latency_ms"),
    "invalid-utf8": (None, b'{"schema": 2, "kind": "\xff\xfe"}', "UTF-8"),
}


def results_cases() -> list[Case]:
    cases = []
    for name, (change, raw, word) in BAD_RESULTS.items():
        folder = f"bad-{name}"
        readers = {
            "table": lambda lab, f=folder: ["table", "--results", str(lab.root / f)],
            "plot": lambda lab, f=folder: ["plot", "--results", str(lab.root / f), "--out", str(lab.root / "plots")],
            "analyze": lambda lab, f=folder: ["analyze", "--results", str(lab.root / f)],
            "compare": lambda lab, f=folder: ["compare", str(lab.a_run()), str(lab.root / f)],
            "run --resume": lambda lab, f=folder: ["run", "--resume", str(next((lab.root / f).glob("*.json")))],
        }
        for reader, argv in readers.items():
            cases.append(Case("results file", f"{name} -> bench {reader}", argv, one_line_exit_2(word),
                              setup=mutate_run(name, change, raw)))
    return cases


# ------------------------------------------------------------------------------------------- the cases

def write(rel: str, data: bytes | str):
    def setup(lab: Lab) -> None:
        p = lab.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return setup


def run_quick(lab: Lab, *more: str) -> list[str]:
    return ["run", "--device", "cpu", "--models", TINY, "--protocol", "quick", "--threads", "1",
            "--out", str(lab.runs), *more]


def cases() -> list[Case]:
    c = [
        # 1. cache integrity
        Case("cache", "another model's file in the cache", lambda lab: run_quick(lab),
             cell_ok_with_original_hash(TINY, lambda lab: ORIGINAL[TINY]), setup=swap_artifact),
        Case("cache", "truncated artifact", lambda lab: run_quick(lab),
             cell_ok_with_original_hash(TINY, lambda lab: ORIGINAL[TINY]), setup=truncate_artifact),
        Case("cache", "unreadable cache record", lambda lab: run_quick(lab),
             cell_ok_with_original_hash(TINY, lambda lab: ORIGINAL[TINY]), setup=corrupt_record),
        Case("cache", "scratch folder of a killed export", lambda lab: ["export", "--device", "cpu", "--models", TINY],
             scratch_gone, setup=leave_scratch),
        Case("cache", "moved cache folder", lambda lab: ["export", "--device", "cpu", "--models", TINY,
                                                          "--cache-dir", str(lab.root / "moved-cache")],
             moved_cache_hits, setup=move_cache),
        # 2. runs that cannot lose data
        Case("runs", "resume of a run another process is writing",
             lambda lab: ["run", "--resume", str(lab.root / "live" / lab.a_run().name)],
             release_run_lock(one_line_exit_2("being written by process")), setup=hold_run_lock),
        # 3. signals
        Case("signals", "SIGTERM during a run", lambda lab: ["run", "--device", "cpu", "--models",
                                                             f"{TINY},{OTHER}", "--protocol", "default",
                                                             "--threads", "1", "--out", str(lab.root / "term")],
             interrupted_143, signal_after_s=2.0, watch="term"),
        # 4. config files
        Case("config", "suite = 5", lambda lab: ["run", "--config", "c1.toml"], one_line_exit_2("suite"),
             setup=write("c1.toml", "suite = 5\n")),
        Case("config", "devices = 5", lambda lab: ["run", "--config", "c2.toml"], one_line_exit_2("devices"),
             setup=write("c2.toml", "devices = 5\n")),
        Case("config", "[devices] cpu = 5", lambda lab: ["run", "--config", "c3.toml"],
             one_line_exit_2("devices.cpu"), setup=write("c3.toml", "[devices]\ncpu = 5\n")),
        Case("config", "binary config file", lambda lab: ["run", "--config", "c4.toml"], one_line_exit_2("UTF-8"),
             setup=write("c4.toml", b"\x00\xff\xfe\x81")),
        Case("config", "config that is a folder", lambda lab: ["run", "--config", str(lab.runs)],
             one_line_exit_2("config")),
        Case("config", "unknown device option", lambda lab: ["run", "--config", "c5.toml"],
             one_line_exit_2("devices.cpu.turbo"), setup=write("c5.toml", "[devices.cpu]\nturbo = true\n")),
        Case("config", "wrong option type", lambda lab: ["run", "--option", "trt.opt_level=fast"],
             one_line_exit_2("opt_level")),
        # 5. paths checked up front
        Case("paths", "--weights that does not exist", lambda lab: run_quick(lab, "--weights", "/nonexistent"),
             one_line_exit_2("weights")),
        Case("paths", "--weights that is a folder", lambda lab: run_quick(lab, "--weights", str(lab.cache)),
             one_line_exit_2("folder")),
        Case("paths", "--cache-dir that is a file", lambda lab: run_quick(lab, "--cache-dir", "afile"),
             one_line_exit_2("cache"), setup=write("afile", "x")),
        Case("paths", "bench export --weights that does not exist",
             lambda lab: ["export", "--models", TINY, "--weights", "/nonexistent"], one_line_exit_2("weights")),
        # 6. threads
        Case("threads", "--threads 10000", lambda lab: run_quick(lab, "--threads", "10000"),
             one_line_exit_2("threads")),
        Case("threads", "--threads 0", lambda lab: run_quick(lab, "--threads", "0"), one_line_exit_2("threads")),
        # 7. report paths and effects files
        Case("outputs", "bench compare --markdown /proc/x.md",
             lambda lab: ["compare", str(lab.a_run()), str(lab.a_run()), "--markdown", "/proc/x.md"],
             one_line_exit_2("markdown")),
        Case("outputs", "bench compare --json DIR",
             lambda lab: ["compare", str(lab.a_run()), str(lab.a_run()), "--json", str(lab.runs)],
             one_line_exit_2("json")),
        Case("outputs", "bench compare --effects binary",
             lambda lab: ["compare", str(lab.a_run()), str(lab.a_run()), "--effects", "e.bin"],
             one_line_exit_2("effects"), setup=write("e.bin", b"\xff\x00\x81")),
        Case("outputs", "bench compare --effects folder",
             lambda lab: ["compare", str(lab.a_run()), str(lab.a_run()), "--effects", str(lab.runs)],
             one_line_exit_2("folder")),
        Case("outputs", "bench export --out FILE", lambda lab: ["export", "--models", TINY, "--out", "afile2"],
             one_line_exit_2("--out"), setup=write("afile2", "x")),
        # 8. A/B with artifact folders
        Case("ab", "artifact folders holding different models",
             lambda lab: ["ab", "--base-artifacts", "art-a", "--head-artifacts", "art-b"],
             one_line_exit_2("only in --base-artifacts"), setup=lambda lab: export_folders(lab)),
        Case("ab", "a swapped file in an artifact folder",
             lambda lab: ["ab", "--base-artifacts", "art-a", "--head-artifacts", "art-c", "--models", TINY],
             one_line_exit_2("does not match its record"), setup=lambda lab: swapped_folder(lab)),
        # 9. --resume and flags it would ignore
        Case("resume", "--resume with --protocol/--models/--threads",
             lambda lab: ["run", "--resume", str(lab.a_run()), "--protocol", "bogus", "--models", "nosuch",
                          "--threads", "0"], one_line_exit_2("--resume")),
        # 10. outputs checked
        Case("outputs checked", "torch device, NaN weights",
             lambda lab: ["run", "--device", "torch", "--models", TINY, "--weights", str(lab.root / "nan.pt"),
                          "--protocol", "quick", "--threads", "1", "--out", str(lab.runs)],
             cell_failed_output_check, setup=nan_weights),
        # 11. imports
        Case("import", "JSON nested 100,000 levels", lambda lab: ["import", "deep.json", "--format", "json"],
             one_line_exit_2("nested"), setup=write("deep.json", "[" * 100_000 + "]" * 100_000)),
        Case("import", "binary CSV", lambda lab: ["import", "b.csv", "--format", "csv"], one_line_exit_2("b.csv"),
             setup=write("b.csv", b"\xff\xfe\x00\x81")),
        Case("import", "a folder", lambda lab: ["import", str(lab.runs), "--format", "modelbench"],
             one_line_exit_2("folder")),
        # usage
        Case("usage", "unknown model", lambda lab: ["run", "--models", "nosuch"], one_line_exit_2("nosuch")),
        Case("usage", "unknown device", lambda lab: ["run", "--device", "nosuch"], one_line_exit_2("nosuch")),
        Case("usage", "unknown protocol", lambda lab: run_quick(lab, "--protocol", "bogus"),
             one_line_exit_2("bogus")),
    ]
    return c + results_cases()


def export_folders(lab: Lab) -> None:
    for folder, models in (("art-a", f"{TINY},{OTHER}"), ("art-b", TINY)):
        if not (lab.root / folder).exists():
            lab.bench(["export", "--device", "cpu", "--models", models, "--out", folder])


def swapped_folder(lab: Lab) -> None:
    export_folders(lab)
    if (lab.root / "art-c").exists():
        shutil.rmtree(lab.root / "art-c")
    shutil.copytree(lab.root / "art-a", lab.root / "art-c")
    shutil.copy(lab.root / "art-c" / f"{OTHER}.onnx", lab.root / "art-c" / f"{TINY}.onnx")


def prepare(lab: Lab) -> None:
    """What the cases start from: both tiny models exported, and one finished run."""
    o = lab.bench(["run", "--device", "cpu", "--models", f"{TINY},{OTHER}", "--protocol", "quick",
                   "--threads", "1", "--out", str(lab.root / "base-runs")])
    if o.rc != 0:
        sys.exit(f"faults: could not prepare the base run: {o.err.strip()[-500:]}")
    run = json.loads(lab.a_run().read_text())
    ORIGINAL.update({c["model"]: c["artifact"]["sha256"] for c in run["cells"]})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("-k", metavar="TEXT", help="only cases whose class or name contains TEXT")
    args = parser.parse_args()
    todo = [c for c in cases() if not args.k or args.k in c.cls or args.k in c.name]
    if args.list:
        for c in todo:
            print(f"{c.cls:16} {c.name}")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        lab = Lab(Path(tmp))
        prepare(lab)
        clean = 0
        t0 = time.monotonic()
        for c in todo:
            c.setup(lab)
            outcome = lab.bench(c.argv(lab), term_after=c.signal_after_s,
                                watch=lab.root / c.watch if c.watch else None)
            problem = c.expect(lab, outcome)
            clean += problem is None
            print(f"{'clean' if problem is None else 'NOT CLEAN':9}  {c.cls:16} {c.name}"
                  + (f"\n           {problem}" if problem else ""), flush=True)
        print(f"({time.monotonic() - t0:.0f} s)")
    print(f"{len(todo)} tried / {clean} clean")
    return 0 if clean == len(todo) else 1


if __name__ == "__main__":
    sys.exit(main())

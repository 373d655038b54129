"""The NVIDIA path in one call: run once on a machine with an NVIDIA GPU, send back the folder.

    python benchmarks/gpu_check.py OUT                    # at most 8 minutes; OUT/gpu_check.log + OUT/gpu_check.json
    python benchmarks/gpu_check.py OUT --wheels DIR       # first pip install --no-index --find-links DIR what is missing
    python benchmarks/gpu_check.py OUT --dry-run          # every step's logic on this CPU (no GPU needed)

Steps, each timed, each recorded even when it fails (the next one still runs), under one global time budget
(default 480 s; a step that would start with too little left is skipped and says so):
  install       missing Python packages (tensorrt, nvidia-ml-py, pytest) from --wheels, offline
  probe         nvidia-smi, torch and its CUDA, package versions, our availability checks, the GPU's environment
  cuda-quick    the `cuda` runner (PyTorch fp16, channels-last) on the study's 20 models, quick protocol:
                CUDA-event (device) vs host-clock medians, which must agree
  cuda-default  the default protocol on 4 of them: median and its 95% CI
  cuda-graph    eager vs CUDA-graph replay: the same output
  nvml-load     NVML snapshots (clocks, temperature, power, throttle reasons) every second under load
  trt           the `trt` runner: engine build (records 10's weakly typed or 11's strongly typed path), fp16
                share, parity with fp32 PyTorch, latency; skipped, with the reason, without TensorRT
  trtexec       NVIDIA's trtexec on the same models, GPU compute vs our trt runner's CUDA events; skipped
                without a trtexec
  gpu-tests     the GPU test markers: pytest -m gpu
The summary table is printed last. With --dry-run the GPU steps run their logic on the CPU (the `torch`
runner for the cuda steps, the stand-in trtexec of tests/fixtures/gpu, the fp16 ONNX export for trt) on
fewer models, and each step says it was dry.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import zoo  # noqa: E402
from bench.core.artifact import ExportRequest  # noqa: E402
from bench.core.io import atomic_write_json, now_iso  # noqa: E402
from bench.core.protocol import get_protocol  # noqa: E402
from bench.core.runner import RunnerOptions  # noqa: E402
from bench.env import gpu  # noqa: E402
from bench.measure import measure  # noqa: E402

BUDGET_S = 480.0  # the 8 minutes
RESERVE_S = 5.0  # kept for the summary and the JSON
STAND_IN_TRTEXEC = ROOT / "tests" / "fixtures" / "gpu" / "fake_trtexec.py"
DEFAULT_MODELS = ("mobileone_s0", "mobilenetv2_100", "efficientnet_b0", "repvgg_a0")  # the 4 of the default protocol
DRY_MODELS = ("mobileone_s0", "mobilenetv3_small_100")  # light, for the CPU
LOAD_MODEL = "repvgg_b2"  # the heaviest of the study: the GPU works hard during the NVML step
WANTED = {"tensorrt": "tensorrt", "pynvml": "nvidia-ml-py", "pytest": "pytest"}  # module -> distribution
AGREE_ABS_MS, AGREE_REL = 0.05, 0.10  # host - device at most max(50 us, 10%): launch and sync overhead


# --------------------------------------------------------------------------------------------- plumbing

@dataclass
class Step:
    name: str
    status: str = "ok"  # ok | fail | skip | dry
    seconds: float = 0.0
    summary: str = ""
    data: dict = field(default_factory=dict)


class Budget:
    """One deadline for the whole check; each step also has its own cap."""

    def __init__(self, total_s: float, clock: Callable[[], float] = time.monotonic):
        self.clock, self.end = clock, clock() + total_s

    def left(self) -> float:
        return self.end - self.clock() - RESERVE_S

    def until(self, cap_s: float) -> float:
        """The deadline (clock value) of a step capped at cap_s."""
        return self.clock() + max(0.0, min(cap_s, self.left()))


class Log:
    def __init__(self, path: Path):
        self.file = open(path, "a", encoding="utf-8")

    def __call__(self, text: str = "", quiet: bool = False) -> None:
        if not quiet:
            print(text, flush=True)
        self.file.write(text + "\n")
        self.file.flush()


@dataclass
class Context:
    out: Path
    dry: bool
    budget: Budget
    log: Log
    wheels: Path | None
    models: list[str]
    facts: dict = field(default_factory=dict)  # what the probe found, for later steps
    trt_device_ms: dict = field(default_factory=dict)  # model -> our trt runner's device median

    @property
    def cache(self) -> Path:
        return self.out / "cache"


def run_tool(args: list[str], timeout: float, env: dict | None = None, cwd: Path | None = None) -> tuple[int | None, str]:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=max(1.0, timeout), env=env, cwd=cwd)
        return proc.returncode, proc.stdout + proc.stderr
    except FileNotFoundError:
        return None, f"{args[0]}: not found"
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, out + f"\n(timed out after {timeout:.0f} s)"


def median_of(samples: list[list[float]]) -> float | None:
    flat = [x for r in samples for x in r]
    return float(np.median(flat)) if flat else None


def agreement(host_ms: float | None, device_ms: float | None) -> dict:
    """CUDA events inside a synchronized call vs the host clock around it: the device time can never be
    longer, and the gap is launch + synchronization overhead, small next to the model."""
    if host_ms is None or device_ms is None:
        return {"agree": None, "why": "no device-side time (not timed with CUDA events)"}
    gap = host_ms - device_ms
    agree = -1e-3 <= gap <= max(AGREE_ABS_MS, AGREE_REL * device_ms)
    return {"agree": agree, "host_minus_device_ms": gap, "ratio": host_ms / device_ms if device_ms else None}


def compare_outputs(a: np.ndarray, b: np.ndarray) -> dict:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    finite = bool(np.isfinite(a).all() and np.isfinite(b).all())
    denom = float(np.linalg.norm(a) * np.linalg.norm(b)) if finite else 0.0
    cos = float(a @ b / denom) if denom else float("nan")
    return {"bitwise_equal": bool(np.array_equal(a, b)), "max_abs_diff": float(np.nanmax(np.abs(a - b))),
            "cosine": cos, "finite": finite, "top1_equal": bool(np.argmax(a) == np.argmax(b))}


def tame(model, x):
    """Scale each conv/linear so its output has unit std on x: at random init some models' logits pass fp16's
    range (65504), and fp16 outputs would be inf whatever the runtime (as tests/devices/test_gpu_end_to_end.py)."""
    import torch

    for layer in [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]:
        seen = []
        hook = layer.register_forward_hook(lambda m, i, o: seen.append(o.float().std().item()))
        with torch.no_grad():
            model(x)
        hook.remove()
        if seen and seen[0] > 0:
            layer.weight.data /= seen[0]
            if layer.bias is not None:
                layer.bias.data /= seen[0]
    return model


def tamed_weights(ctx: Context, name: str) -> tuple[str, np.ndarray]:
    """(weights file, fp32 logits on the runners' seeded input) of a tamed model."""
    import torch

    path = ctx.out / "weights" / f"{name}.pt"
    model = zoo.create_model(name)
    x = torch.randn(zoo.model_input_shape(model), generator=torch.Generator().manual_seed(0))
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(tame(model, x).state_dict(), path)
    model = zoo.create_model(name, weights=str(path))
    with torch.no_grad():
        return str(path), model(x).numpy()


def cuda_runner(ctx: Context, **extra):
    """The `cuda` runner, or on a dry run the `torch` runner (the same loop, on the CPU)."""
    if ctx.dry:
        from devices.torch_cpu import TorchCpuRunner

        return TorchCpuRunner(RunnerOptions(threads=1))
    from devices.cuda import CudaRunner

    return CudaRunner(RunnerOptions(threads=1, extra=extra))


def time_model(ctx: Context, name: str, protocol: str, **extra) -> dict:
    with cuda_runner(ctx, **extra) as r:
        r.load(zoo.create_model(name))
        m = measure(r.infer, get_protocol(protocol, "gpu"))
    host, device = median_of(m.samples_ms), median_of(m.device_samples_ms)
    s = m.summary or {}
    return {"model": name, "host_median_ms": host, "device_median_ms": device, "rounds": len(m.samples_ms),
            "ci_ms": [s.get("ci_low_ms"), s.get("ci_high_ms")], "stop_reason": m.stop_reason, "flags": m.flags,
            **agreement(host, device)}


def over_models(ctx: Context, step: Step, models: list[str], cap_s: float, fn: Callable[[str], dict]) -> list[dict]:
    """fn(model) for each model while the step's cap and the global budget last; failures recorded per model."""
    deadline = ctx.budget.until(cap_s)
    rows = []
    for name in models:
        if ctx.budget.clock() >= deadline:
            step.data["cut_short"] = f"{len(models) - len(rows)} models left out: time budget"
            break
        t0 = time.monotonic()
        try:
            row = fn(name)
        except Exception as e:  # one model failing is a result, not the end of the check
            row = {"model": name, "error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"}
        row["seconds"] = round(time.monotonic() - t0, 2)
        ctx.log(f"    {name}: {json.dumps({k: v for k, v in row.items() if k != 'flags'}, default=str)}")
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ steps

def step_install(ctx: Context, step: Step) -> None:
    missing = [dist for mod, dist in WANTED.items() if importlib.util.find_spec(mod) is None]
    step.data["missing"] = missing
    if ctx.wheels is None:
        step.status, step.summary = "skip", f"no --wheels given; missing: {', '.join(missing) or 'none'}"
        return
    if not missing:
        step.summary = "nothing missing"
        return
    args = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(ctx.wheels), *missing]
    if ctx.dry:
        args.insert(4, "--dry-run")  # pip resolves from the folder and installs nothing
    rc, out = run_tool(args, ctx.budget.until(90) - ctx.budget.clock())
    ctx.log(out, quiet=True)
    step.data.update(command=args, returncode=rc)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    if ctx.dry:
        step.status, step.summary = "dry", f"pip --dry-run exit {rc}: {last}"
    elif rc != 0:
        step.status, step.summary = "fail", f"pip exit {rc}: {last}"
    else:
        importlib.invalidate_caches()
        step.summary = f"installed {', '.join(missing)}"


def step_probe(ctx: Context, step: Step) -> None:
    import torch

    rc, smi = run_tool(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit",
                        "--format=csv,noheader"], 30)
    rc_full, smi_full = run_tool(["nvidia-smi"], 30)
    ctx.log(smi_full, quiet=True)
    avail = {}
    from devices.trtexec import check_trtexec

    for name, check in (("cuda", gpu.check_cuda), ("trt", gpu.check_trt), ("trtexec", check_trtexec)):
        a = check()
        avail[name] = {"status": a.status, "reason": a.reason}
    packages = {}
    for dist in ("torch", "tensorrt", "nvidia-ml-py", "onnx", "onnxruntime", "onnxscript", "numpy", "pytest"):
        try:
            packages[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            packages[dist] = None
    cuda_ok = bool(torch.version.cuda) and torch.cuda.is_available()
    ctx.facts.update(cuda=avail["cuda"]["status"] == "available", trt=avail["trt"]["status"] == "available",
                     trtexec=avail["trtexec"]["status"] == "available")
    step.data.update(
        nvidia_smi=smi.strip() if rc == 0 else f"unavailable: {smi.strip().splitlines()[-1] if smi.strip() else rc}",
        python=platform.python_version(), platform=platform.platform(), torch=torch.__version__,
        torch_cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version() if cuda_ok else None,
        cuda_devices=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda_ok else [],
        packages=packages, availability=avail, gpu_env=gpu.gpu_env(0),
        environment={k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "TRTEXEC")})
    name = step.data["cuda_devices"][0] if step.data["cuda_devices"] else "no CUDA device"
    step.summary = (f"{name}; torch {torch.__version__} (CUDA {torch.version.cuda}); "
                    + ", ".join(f"{k} {v['status']}" for k, v in avail.items()))


def step_cuda_quick(ctx: Context, step: Step) -> None:
    if not ctx.dry and not ctx.facts.get("cuda"):
        step.status, step.summary = "skip", f"cuda unavailable: {gpu.check_cuda().reason}"
        return
    rows = over_models(ctx, step, ctx.models, 150, lambda m: time_model(ctx, m, "quick"))
    step.data["models"] = rows
    done = [r for r in rows if "error" not in r]
    agree = [r for r in done if r.get("agree")]
    step.summary = f"{len(done)}/{len(ctx.models)} models timed"
    if ctx.dry:
        step.status = "dry"
        step.summary += " (torch runner on the CPU: no CUDA events, agreement not applicable)"
        return
    step.summary += f", CUDA events vs host clock agree on {len(agree)}/{len(done)}"
    if len(done) < len(rows) or len(agree) < len(done):
        step.status = "fail"


def step_cuda_default(ctx: Context, step: Step) -> None:
    if not ctx.dry and not ctx.facts.get("cuda"):
        step.status, step.summary = "skip", "cuda unavailable (see probe)"
        return
    models = [m for m in DEFAULT_MODELS if m in ctx.models] or ctx.models[:1]
    rows = over_models(ctx, step, models[:1] if ctx.dry else models, 120, lambda m: time_model(ctx, m, "default"))
    step.data["models"] = rows
    step.summary = "; ".join(f"{r['model']} {r['host_median_ms']:.3f} ms [{r['ci_ms'][0]:.3f}, {r['ci_ms'][1]:.3f}]"
                             if "error" not in r else f"{r['model']} failed" for r in rows)
    if any("error" in r for r in rows):
        step.status = "fail"
    elif ctx.dry:
        step.status = "dry"


def step_cuda_graph(ctx: Context, step: Step) -> None:
    if not ctx.dry and not ctx.facts.get("cuda"):
        step.status, step.summary = "skip", "cuda unavailable (see probe)"
        return

    def one(name: str) -> dict:
        path, _ = tamed_weights(ctx, name)
        outs = []
        for graph in (False, True):
            with cuda_runner(ctx, cuda_graph=graph) as r:  # dry: eager twice (no CUDA graph on the CPU)
                r.load(zoo.create_model(name, weights=path))
                for _ in range(3):
                    r.infer()
                outs.append(np.asarray(r.output()))
        cmp = compare_outputs(*outs)
        cmp["same"] = cmp["finite"] and cmp["top1_equal"] and cmp["cosine"] >= 0.9999
        return {"model": name, **cmp}

    models = [m for m in DEFAULT_MODELS if m in ctx.models] or ctx.models[:1]
    rows = over_models(ctx, step, models[:1] if ctx.dry else models, 60, one)
    step.data["models"] = rows
    same = [r for r in rows if r.get("same")]
    step.summary = f"eager vs CUDA graph: same output on {len(same)}/{len(rows)} " \
                   f"({sum(r.get('bitwise_equal', False) for r in rows)} bitwise)"
    if ctx.dry:
        step.status, step.summary = "dry", step.summary.replace("CUDA graph", "eager again (CPU)")
    elif len(same) < len(rows):
        step.status = "fail"


def step_nvml_load(ctx: Context, step: Step) -> None:
    if not ctx.dry and not ctx.facts.get("cuda"):
        step.status, step.summary = "skip", "cuda unavailable (see probe)"
        return
    seconds = 2.0 if ctx.dry else 10.0
    deadline = min(ctx.budget.until(seconds + 15), time.monotonic() + 10 + seconds)
    snaps, inferences = [gpu.gpu_snapshot(0)], 0
    model = LOAD_MODEL if LOAD_MODEL in ctx.models and not ctx.dry else ctx.models[0]
    with cuda_runner(ctx) as r:
        r.load(zoo.create_model(model))
        end = min(deadline, time.monotonic() + seconds)
        next_snap = time.monotonic() + 1.0
        while time.monotonic() < end:
            r.infer()
            inferences += 1
            if time.monotonic() >= next_snap:
                snaps.append(gpu.gpu_snapshot(0))
                next_snap += 1.0
    snaps.append(gpu.gpu_snapshot(0))
    step.data.update(model=model, inferences=inferences, snapshots=snaps)
    readable = [s for s in snaps if "nvml" not in s]
    if not readable:
        step.status = "dry" if ctx.dry else "skip"
        step.summary = f"{len(snaps)} snapshots, NVML unreadable: {snaps[0].get('nvml')}"
        return
    clocks = [s["sm_clock_mhz"] for s in readable if s.get("sm_clock_mhz")]
    temps = [s["temperature_c"] for s in readable if s.get("temperature_c") is not None]
    slowed = sorted({r for s in readable for r in (s.get("throttle_reasons") or [])})
    step.summary = (f"{len(readable)} snapshots over {inferences} inferences of {model}: SM clock "
                    f"{min(clocks, default=0)}-{max(clocks, default=0)} MHz, {min(temps, default=0)}-"
                    f"{max(temps, default=0)} C, throttle reasons seen: {', '.join(slowed) or 'none'}")
    step.data["slowed_down"] = any(s.get("slowed_down") for s in readable)
    if ctx.dry:
        step.status = "dry"


def step_trt(ctx: Context, step: Step) -> None:
    if not ctx.facts.get("trt"):
        reason = gpu.check_trt().reason
        if not ctx.dry:
            step.status, step.summary = "skip", f"trt unavailable: {reason}"
            return
        # dry: the part of TensorRT 11's path that runs without a GPU: the fp16 ONNX and its parity
        from exporters import onnx_fp16

        name = ctx.models[0]
        art, _ = onnx_fp16.export(ExportRequest(name), ctx.cache)
        p = art.metadata["parity"]
        step.data.update(fp16_onnx={"model": name, "parity": p, "conversion": art.metadata["conversion"]})
        step.status = "dry"
        step.summary = (f"engine build skipped ({reason}); fp16 ONNX of {name}: cosine {p['cosine']:.6f} vs "
                        f"{p['reference']}")
        return
    from devices.trt import TrtRunner
    from exporters import tensorrt as trt_exporter

    def one(name: str) -> dict:
        path, ref = tamed_weights(ctx, name)
        art, _ = trt_exporter.export(ExportRequest(name, weights=path), ctx.cache)
        meta = art.metadata
        with TrtRunner(RunnerOptions(threads=1)) as r:
            r.load(art)
            r.infer()
            parity = compare_outputs(r.output(), ref)
            m = measure(r.infer, get_protocol("quick", "gpu"))
        host, device = median_of(m.samples_ms), median_of(m.device_samples_ms)
        ctx.trt_device_ms[name] = device
        return {"model": name, "build_path": meta.get("build_path"), "tensorrt": meta.get("tensorrt"),
                "fp16_share": meta.get("precision_counts", {}).get("fp16_share"), "build_s": meta.get("build_s"),
                "timing_cache": meta.get("timing_cache_status"), "cosine_vs_fp32_torch": parity["cosine"],
                "top1_equal": parity["top1_equal"], "host_median_ms": host, "device_median_ms": device,
                **agreement(host, device)}

    models = [m for m in DEFAULT_MODELS if m in ctx.models] or ctx.models[:1]
    rows = over_models(ctx, step, models, 150, one)
    step.data["models"] = rows
    ok = [r for r in rows if "error" not in r and r["cosine_vs_fp32_torch"] >= 0.999]
    paths = sorted({r["build_path"] for r in rows if r.get("build_path")})
    step.summary = f"{len(ok)}/{len(rows)} engines built and in parity (cosine >= 0.999); path: {', '.join(paths)}"
    if len(ok) < len(rows):
        step.status = "fail"


def step_trtexec(ctx: Context, step: Step) -> None:
    from devices.trtexec import TrtexecRunner
    from exporters import trtexec as trtexec_exporter

    exe = None
    if not ctx.facts.get("trtexec"):
        if not ctx.dry:
            from devices.trtexec import check_trtexec

            step.status, step.summary = "skip", f"trtexec unavailable: {check_trtexec().reason}"
            return
        exe = str(STAND_IN_TRTEXEC)  # dry: the stand-in answers with fixtures (its figures are not measured)

    def one(name: str) -> dict:
        settings = (("trtexec", exe),) if exe else ()
        art, _ = trtexec_exporter.export(ExportRequest(name, settings=settings), ctx.cache)
        with TrtexecRunner(RunnerOptions(threads=1, extra={"trtexec": exe} if exe else {})) as r:
            r.load(art)
            m = measure(r, get_protocol("quick", "gpu"))
            info = r.info()
        compute = median_of(m.device_samples_ms)
        ours = ctx.trt_device_ms.get(name)
        return {"model": name, "tensorrt": info.get("tensorrt"), "build_path": art.metadata.get("build_path"),
                "gpu_compute_median_ms": compute, "latency_median_ms": median_of(m.samples_ms),
                "trt_runner_device_ms": ours, "ours_over_trtexec": ours / compute if ours and compute else None,
                "run_command": info.get("run_command"), "flags": m.flags}

    models = [m for m in DEFAULT_MODELS if m in ctx.models] or ctx.models[:1]
    rows = over_models(ctx, step, models[:1] if ctx.dry else models, 90, one)
    step.data["models"] = rows
    done = [r for r in rows if "error" not in r]
    step.summary = f"{len(done)}/{len(rows)} models built and timed by trtexec"
    if len(done) < len(rows):
        step.status = "fail"
    elif ctx.dry:
        step.status, step.summary = "dry", step.summary + " (the stand-in trtexec: fixture figures)"


def gpu_test_files() -> list[str]:
    """The test modules that carry the gpu marker (collecting only those keeps the step short)."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                  if re.search(r"pytest\.mark\.gpu\b", p.read_text(encoding="utf-8", errors="replace")))


def step_gpu_tests(ctx: Context, step: Step) -> None:
    if importlib.util.find_spec("pytest") is None:
        step.status, step.summary = "skip", "pytest is not installed (give it with --wheels)"
        return
    files = gpu_test_files()
    args = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "-rs", *files]
    rc, out = run_tool(args, ctx.budget.until(240) - ctx.budget.clock(), env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    ctx.log(out, quiet=True)
    tail = out.strip().splitlines()[-1] if out.strip() else ""
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors|deselected)", tail)}
    step.data.update(command=args, returncode=rc, counts=counts, files=files)
    step.summary = f"pytest -m gpu: {tail.strip('= ')}" if tail else f"pytest exit {rc}"
    if rc is None and "timed out" in tail:  # the budget ran out mid-way: what ran is in the log
        step.status, step.summary = "skip", f"pytest -m gpu cut short by the time budget; its output is in the log"
    elif rc != 0:
        step.status = "fail"
    elif ctx.dry:
        step.status = "dry"


STEPS: list[tuple[str, Callable[[Context, Step], None], float]] = [  # (name, step, least time worth starting)
    ("install", step_install, 5), ("probe", step_probe, 5), ("cuda-quick", step_cuda_quick, 10),
    ("cuda-default", step_cuda_default, 10), ("cuda-graph", step_cuda_graph, 10), ("nvml-load", step_nvml_load, 8),
    ("trt", step_trt, 20), ("trtexec", step_trtexec, 15), ("gpu-tests", step_gpu_tests, 20),
]


# -------------------------------------------------------------------------------------------------- main

def summary_table(steps: list[Step]) -> str:
    width = max(len(s.name) for s in steps)
    lines = [f"{'step':<{width}}  status  seconds  result", f"{'-' * width}  ------  -------  ------"]
    lines += [f"{s.name:<{width}}  {s.status:<6}  {s.seconds:7.1f}  {s.summary}" for s in steps]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="output folder (log, JSON, engines and weights)")
    ap.add_argument("--wheels", type=Path, help="folder of wheels: pip install --no-index what is missing")
    ap.add_argument("--dry-run", action="store_true", help="every step's logic on the CPU, fewer models")
    ap.add_argument("--budget-s", type=float, default=BUDGET_S, help="the whole check's time limit (default 480)")
    ap.add_argument("--models", default="study", help="models of the cuda steps (default: the study's 20)")
    args = ap.parse_args(argv)
    if args.wheels is not None and not args.wheels.is_dir():
        ap.error(f"--wheels {args.wheels} is not a folder; give the folder that holds the .whl files")
    if args.budget_s <= RESERVE_S:
        ap.error(f"--budget-s must be more than {RESERVE_S:g} s")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "gpu_check.log")
    models = zoo.list_models(args.models)
    if args.dry_run:
        models = [m for m in models if m in DRY_MODELS] or models[:2]
    ctx = Context(out, args.dry_run, Budget(args.budget_s), log, args.wheels, models)
    report = {"started": now_iso(), "dry_run": args.dry_run, "budget_s": args.budget_s, "argv": sys.argv,
              "models": ctx.models, "steps": []}
    log(f"gpu_check {'(DRY RUN: GPU steps run their logic on the CPU) ' if args.dry_run else ''}-> {out}")
    steps: list[Step] = []
    for name, fn, least in STEPS:
        step = Step(name)
        if ctx.budget.left() < least:
            step.status, step.summary = "skip", f"time budget: {max(0.0, ctx.budget.left()):.0f} s left"
        else:
            log(f"== {name}")
            t0 = time.monotonic()
            try:
                fn(ctx, step)
            except Exception as e:  # a broken step is recorded; the check goes on
                step.status = "fail"
                step.summary = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                step.data["traceback"] = traceback.format_exc()
                log(step.data["traceback"], quiet=True)
            step.seconds = round(time.monotonic() - t0, 2)
            log(f"   {step.status}: {step.summary} ({step.seconds:.1f} s)")
        steps.append(step)
        report["steps"] = [asdict(s) for s in steps]
        atomic_write_json(out / "gpu_check.json", report)  # after every step: nothing measured is lost
    report["finished"] = now_iso()
    atomic_write_json(out / "gpu_check.json", report)
    log("")
    log(summary_table(steps))
    failed = [s.name for s in steps if s.status == "fail"]
    log(f"\n{len(steps)} steps, {len(failed)} failed{': ' + ', '.join(failed) if failed else ''}; "
        f"log and JSON in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""`bench run`, `bench export`, `bench devices`: the suite, its artifacts, and what this host can do."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench import zoo
from bench.commands import print_json
from bench.config import SuiteConfig, load_config, parse_option_flags, with_cli, writable_folder
from bench.console import print_table
from bench.core.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, UserError
from bench.env import usable_cores
from bench.pipeline import export_request, run_suite
from bench.progress import RichReporter, print_summary
from bench.store import find_run, load_run
from bench.zoo import user
from devices.registry import DEVICES, availability, get_device
from exporters.base import copy_artifact, get_exporter


def _suite_from_args(args):

    cfg = load_config(args.config)
    overrides = parse_option_flags(getattr(args, "option", None))
    files = tuple(user.from_model_file(f) for f in getattr(args, "model_file", None) or ())
    models = args.models
    if files and models is None:  # `bench run --model-file m.onnx` times that file alone
        models = ",".join(m.name for m in files)
    return with_cli(
        cfg, input_size=_input_size(getattr(args, "input_size", None)), batch=_batch(getattr(args, "batch", None)),
        wait_budget=_seconds(getattr(args, "wait_budget", None), "--wait-budget"),
        interleave=getattr(args, "interleave", None),
        models=models, user_models=(cfg.user_models + files) if files else None, devices=args.device, protocol=getattr(args, "protocol", None),
        threads=_threads(getattr(args, "threads", None)), out=getattr(args, "out", None),
        cache=getattr(args, "cache_dir", None), form="train" if getattr(args, "train_form", False) else
        ("both" if getattr(args, "both_forms", False) else None), activation=getattr(args, "activation", None),
        weights=getattr(args, "weights", None), device_options=overrides or None)


def _input_size(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    try:
        parts = [int(p) for p in text.lower().replace(",", "x").split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = [3, parts[0], parts[0]]
    elif len(parts) == 2:
        parts = [3, *parts]
    if len(parts) != 3 or min(parts) < 1:
        raise UserError(f"--input-size {text!r} must be SIZE, HxW or CxHxW with positive whole numbers, e.g. 256")
    return tuple(parts)


def _seconds(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{flag} {text!r} must be a number of seconds") from None


def _batch(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--batch {text!r} must be a whole number >= 1") from None


def _threads(value: str | None):
    if value is None or value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise UserError(f"--threads {value!r} must be a whole number >= 1 or 'auto'") from None


def cmd_run(args) -> int:

    resume = None
    if args.resume:
        _refuse_flags_resume_ignores(args)
        out_dir = Path(args.out) if args.out else load_config(args.config).out_dir
        resume = find_run(args.resume, out_dir)
        previous = load_run(resume)
        cfg = SuiteConfig.from_dict(previous.config)
        for cell in previous.cells:  # a model the zoo no longer knows: say so before measuring anything
            zoo.resolve(cell.model)
        if args.cache_dir:
            cfg = with_cli(cfg, cache=args.cache_dir)
    else:
        cfg = _suite_from_args(args)
    cores = usable_cores()
    if cfg.threads and cfg.threads > cores:
        print(f"bench: warning: {cfg.threads} threads on the {cores} cores this process may use: threads will "
              "share cores, and every parallel operator waits for the slowest; pass --threads "
              f"{cores} (or 'auto') for numbers that mean something", file=sys.stderr)
    executor = _executor(args)
    reporter = RichReporter()
    try:
        with reporter:
            run = run_suite(cfg, command=sys.argv, reporter=reporter, resume=resume, executor=executor)
    except KeyboardInterrupt as e:
        where = reporter.run_path or "the run file"
        what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"bench: {what}; every finished cell is saved. Finish it with: bench run --resume {where}",
              file=sys.stderr)
        code = EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
        if getattr(args, "cluster", None):
            # The run file is written. Ray's teardown with a task still in flight can crash in its C++ reply
            # threads (seen once in CI: exit 1 instead of 143), so a cluster driver leaves without it; the
            # nodes own their workers and finish or drop the cell themselves.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    print_summary(run, reporter.run_path)
    return 0


def _executor(args):
    """None (this host) or, with --cluster, the cluster's nodes; Ray is imported only in the latter case."""
    if not getattr(args, "cluster", None):
        return None
    timeout = _seconds(args.node_timeout, "--node-timeout")
    from bench.cluster.driver import DEFAULT_NODE_TIMEOUT_S, ClusterExecutor  # only a cluster run loads it
    return ClusterExecutor(args.cluster, node_timeout_s=timeout if timeout is not None else DEFAULT_NODE_TIMEOUT_S)


# What `--resume` may change: where to find the run and where artifacts are cached (content-keyed and
# verified, so another cache gives the same artifacts). Everything else is the run's own configuration.
RESUME_SAFE = {"resume", "out", "config", "cache_dir", "func", "command", "cluster", "node_timeout"}


def _refuse_flags_resume_ignores(args) -> None:
    given = [name for name, value in vars(args).items()
             if name not in RESUME_SAFE and value not in (None, False, [])]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in sorted(given))
        raise UserError(f"--resume finishes a run as it was configured; {flags} cannot change it (drop "
                        f"{'it' if len(given) == 1 else 'them'}, or start a new run)")


def cmd_export(args) -> int:

    cfg = _suite_from_args(args)
    if args.out_artifacts:
        writable_folder(Path(args.out_artifacts), "artifact folder", "--out")
    rows = []
    failures = 0
    for device_name in cfg.devices:
        device = get_device(device_name)
        exporters = list(dict.fromkeys(r.exporter for r in device.runners_for(
            cfg.options_for(device_name).get("via")) if r.exporter))
        if not exporters:
            raise UserError(f"device {device_name} runs the PyTorch model directly; nothing to export")
        for exporter_name, model in ((e, m) for e in exporters for m in zoo.list_models(cfg.models)):
            exporter = get_exporter(exporter_name)
            request = export_request(cfg, model, device_name, deploy=cfg.form != "train")
            try:
                artifact, hit = exporter(request, cfg.cache_dir)
            except UserError:
                raise
            except Exception as e:
                failures += 1
                rows.append({"model": model, "device": device_name, "error": f"{type(e).__name__}: {e}"})
                if not args.json:
                    print(f"{model}\tFAILED\t{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                continue
            if args.out_artifacts:
                try:
                    artifact = copy_artifact(artifact, Path(args.out_artifacts))
                except OSError as e:
                    raise UserError(f"cannot copy {artifact.model}'s artifact into {args.out_artifacts} "
                                    f"({e.strerror}); pass a writable folder to --out") from None
            row = {"model": model, "device": device_name, "target": artifact.target, "path": artifact.path,
                   "sha256": artifact.sha256, "cache_key": artifact.cache_key, "cache_hit": hit,
                   "precision": artifact.precision, "metadata": artifact.metadata}
            rows.append(row)
            if not args.json:
                print(f"{model}\t{artifact.path}" + ("\t(cached)" if hit else ""))
    if args.json:
        print_json(rows)
    return 1 if failures else 0


def cmd_devices(args) -> int:

    rows = []
    for name, device in DEVICES.items():
        a = availability(name)
        rows.append({"device": name, "status": a.status, "reason": a.reason, "description": device.description})
    if args.json:
        print_json(rows)
        return 0
    print_table(["device", "status", "why", "what"],
                [[r["device"], r["status"], r["reason"], r["description"]] for r in rows],
                title="devices on this host")
    return 0


def _suite_arguments(p, run: bool) -> None:
    p.add_argument("--device", action="append", metavar="NAME",
                   help="device(s) to use, repeatable or comma-separated (default: bench.toml's)")
    p.add_argument("--models", metavar="PATTERN", help="names, paper names, wildcards; 'all' (every model but the ablation networks), 'study', 'ablation', 'ablation_act' or 'ablation_block'")
    p.add_argument("--input-size", metavar="SIZE",
                   help="input for every model: 256 (3x256x256), 256x192 (HxW) or 3x256x192 (default: each model's own)")
    p.add_argument("--batch", metavar="N", help="batch size (default 1, the paper's protocol)")
    p.add_argument("--model-file", action="append", metavar="PATH.onnx",
                   help="time an ONNX file (repeatable); without --models, only these files are measured")
    p.add_argument("--config", metavar="FILE", help="suite file (default: ./bench.toml if present)")
    p.add_argument("--cache-dir", metavar="DIR", help="artifact cache (default: ~/.cache/mobileone-bench)")
    p.add_argument("--activation", choices=("relu", "original"),
                   help="MobileNetV3's H-swish: relu (paper's timing form, default) or original")
    p.add_argument("--weights", metavar="PATH", help="local state_dict to load (one model at a time)")
    p.add_argument("--train-form", action="store_true", help="use the unfused train-time form (ablation)")
    p.add_argument("--option", action="append", metavar="DEVICE.KEY=VALUE",
                   help="a device option, e.g. coreml.compute_units=CPU_AND_NE (see bench.toml)")
    if run:
        p.add_argument("--both-forms", action="store_true", help="measure deploy and train forms")
        p.add_argument("--protocol", metavar="NAME", help="default, quick, paper, modelbench, mlperf")
        p.add_argument("--threads", metavar="N", help="intra-op threads (default: the cores this process may use)")
        p.add_argument("--out", metavar="DIR", help="results folder (default: results/runs)")
        p.add_argument("--interleave", action=argparse.BooleanOptionalAction, default=None,
                       help="run the rounds of a device's cells round-robin, a fresh order each pass, so drift "
                            "hits every model alike (the default here; every cell of the device is loaded "
                            "first); --no-interleave: one cell after another")
        p.add_argument("--wait-budget", metavar="SECONDS",
                       help="the most the whole run waits for quiet between redone rounds (each cell also has "
                            "its protocol's contention_budget_s, default 10 s); then cells are kept, flagged")
        p.add_argument("--cluster", metavar="HEAD:PORT",
                       help="run the cells on a Ray cluster's nodes, each where its device is (see docs/cluster.md)")
        p.add_argument("--node-timeout", metavar="SECONDS",
                       help="with --cluster: a node that returns nothing for this long while it has cells is "
                            "dropped and its cells move on (default 1800)")


def register(sub) -> None:
    p = sub.add_parser("run", help="export, load and time models on devices; write a results file")
    _suite_arguments(p, run=True)
    p.add_argument("--resume", metavar="RUN", help="finish an interrupted run (path, run id or 'latest') as it was "
                   "configured; only --out (where to find it) and --cache-dir may be given with it")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("export", help="export models for a device and print each artifact's path")
    _suite_arguments(p, run=False)
    p.add_argument("--out", dest="out_artifacts", metavar="DIR", help="copy the artifacts into DIR")
    p.add_argument("--json", action="store_true", help="print a JSON list of {model, path, sha256, cache_key}")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("devices", help="list devices and whether this host can run them, and why not")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_devices)

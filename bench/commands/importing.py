"""`bench import`: latencies measured on a phone (ModelBench app, CSV, JSON) -> a results file."""
from __future__ import annotations

import sys
from pathlib import Path

from bench.commands import print_json
from bench.console import print_table
from bench.importers import import_file
from bench.store import RunWriter, run_path

DEFAULT_OUT = Path("results/runs")


def cmd_import(args) -> int:

    # Everything is parsed and checked first; the one write below happens only when all of it is good.
    run = import_file(args.file, args.format, device=args.device, device_name=args.device_name,
                      os_version=args.os_version, compute_units=args.compute_units, runner=args.runner,
                      statistic=args.statistic, trim=args.trim, command=["bench", *sys.argv[1:]])
    path = run_path(Path(args.out), run.run_id)
    RunWriter(path, run)
    if args.json:
        print_json({"path": str(path), "run_id": run.run_id, "cells": [
            {"model": c.model, "latency_ms": c.latency_ms, "statistic": c.summary.statistic,
             "count": c.summary.count} for c in run.cells]})
        return 0

    print_table(["model", "latency (ms)", "statistic", "samples"],
                [[c.model, f"{c.latency_ms:.3f}", c.summary.statistic,
                  str(c.summary.count or "") + ("" if c.samples_ms else " (aggregates only)")]
                 for c in run.cells],
                title=f"{len(run.cells)} models imported from {args.file} ({args.device_name})",
                footnotes=[f"written to {path}"])
    return 0


def register(sub) -> None:
    p = sub.add_parser("import", help="import latencies measured on a phone (ModelBench app, CSV, JSON)",
                       description="Import latencies measured on a phone into a results file. Formats are "
                                   "described in docs/coreml.md.")
    p.add_argument("file", help="the file exported from the phone")
    p.add_argument("--device", default="iphone", choices=["iphone"],
                   help="the kind of device the numbers come from (default iphone)")
    p.add_argument("--format", required=True, choices=["modelbench", "csv", "json"],
                   help="modelbench: the ModelBench app's rounds and averages; csv: model,latency_ms[,round] "
                        "per inference; json: a list of {model, samples_ms | latency_ms, ...}")
    p.add_argument("--device-name", default="iPhone 12", help="the phone's model, e.g. \"iPhone 12\" (default)")
    p.add_argument("--os-version", default=None, help="the phone's OS version, e.g. 17.5.1")
    p.add_argument("--compute-units", default=None,
                   help="the Core ML compute units the app used: ALL, CPU_AND_NE, CPU_ONLY or CPU_AND_GPU "
                        "(ModelBench uses the default, ALL)")
    p.add_argument("--runner", default="coreml-app", help="what measured the numbers (default coreml-app)")
    p.add_argument("--statistic", default=None, choices=["median", "min", "trimmed_mean", "p90_early_stop"],
                   help="csv/json samples: the summary statistic (default median)")
    p.add_argument("--trim", type=int, default=None,
                   help="csv/json samples with --statistic trimmed_mean: drop this many lowest and highest per round")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"results folder (default {DEFAULT_OUT})")
    p.add_argument("--json", action="store_true", help="print the imported cells as JSON")
    p.set_defaults(func=cmd_import)

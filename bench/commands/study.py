"""`bench study`: Table 1, the correlations, the reparameterization and ablation stages and the CPU sweep,
resumable, with one report (docs/study.md)."""
from __future__ import annotations

import sys
from pathlib import Path

from bench.config import load_config, with_cli
from bench.core.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, UserError
from bench.progress import RichReporter
from bench.study.plan import parse_stages
from bench.study.study import paper_report, run_study

DEFAULT_OUT = "results/study"


def cmd_study(args) -> int:
    out = Path(args.out or DEFAULT_OUT)
    only = parse_stages(args.stages)
    if args.paper:
        if args.resume or args.devices or args.protocol or args.stages or args.models or args.redo:
            raise UserError("--paper renders the paper's figures without measuring; drop --resume, --devices, "
                            "--protocol, --models and --stages")
        files = paper_report(out, with_cli(load_config(args.config), cache=args.cache_dir))
        print(f"report: {files.markdown}\nreport: {files.html}")
        return 0
    redo = parse_stages(args.redo) or ()
    if redo and not args.resume:
        raise UserError("--redo measures stages of an existing study again; add --resume")
    if args.resume and (args.devices or args.protocol or args.models):
        raise UserError("--resume continues the study as it was planned; drop --devices, --protocol and --models")
    base = None if args.resume else with_cli(load_config(args.config), devices=args.devices or ["cpu,torch"],
                                             protocol=args.protocol, cache=args.cache_dir)
    reporter = RichReporter()
    try:
        with reporter:
            files = run_study(out, base, resume=args.resume, only=only, models=args.models, redo=redo,
                              command=sys.argv, reporter=reporter, announce=reporter.console.print)
    except KeyboardInterrupt as e:
        what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"bench: {what}; every finished cell is saved. Continue with: bench study --out {out} --resume",
              file=sys.stderr)
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
    print(f"report: {files.markdown}\nreport: {files.html}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("study", help="the paper's latency study: Table 1, correlations, ablations, CPU sweep, "
                                     "one report")
    p.add_argument("--devices", action="append", metavar="NAME",
                   help="devices for Table 1 and the ablations, comma-separated (default cpu,torch); the CPU "
                        "sweep runs when one of them is a CPU device")
    p.add_argument("--protocol", metavar="NAME", help="default, quick, paper, modelbench, mlperf")
    p.add_argument("--out", metavar="DIR", help=f"study folder: manifest, run files, report (default {DEFAULT_OUT})")
    p.add_argument("--models", metavar="PATTERN", help="restrict every stage to these models (a small study)")
    p.add_argument("--resume", action="store_true", help="continue the study in --out")
    p.add_argument("--redo", metavar="NAMES", help="with --resume: measure these stages again into new run files "
                                                   "(e.g. on a quieter machine); comma-separated")
    p.add_argument("--paper", action="store_true", help="render the paper-only parts without measuring")
    p.add_argument("--stages", metavar="NAMES", help="only these stages, comma-separated (table1, reparam, ablation, "
                                                     "sweep_1t, sweep_1t_train, sweep_extra, sweep_extra_train)")
    p.add_argument("--config", metavar="FILE", help="suite file for the cache folder and device options")
    p.add_argument("--cache-dir", metavar="DIR", help="artifact cache (default: ~/.cache/mobileone-bench)")
    p.set_defaults(func=cmd_study)

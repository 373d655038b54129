"""`bench ab`, `bench compare`, `bench calibrate`, `bench baseline`: the latency regression gate.

Exit codes of ab and compare: 0 every cell PASS, 1 a FAIL (or a head that could not be measured),
3 an UNSTABLE and no FAIL, 2 bad input.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench import ab, zoo
from bench.commands import print_json
from bench.compare import (
    BASELINES_DIR,
    ABPlan,
    accept_baseline,
    calibrate,
    calibration_rows,
    check_effect,
    compare_sets,
    list_baselines,
    load_effects,
    load_result_set,
    log_to_stderr,
    print_report,
    run_ab,
    write_outputs,
)
from bench.config import load_config, parse_option_flags
from bench.console import print_table
from bench.core.errors import UserError
from bench.core.io import atomic_write_json
from bench.core.protocol import get_protocol
from bench.env import cpu_info, usable_cores
from bench.reference import REPO_ROOT
from devices.registry import get_device, require_runnable

GATE_MODELS = "mobileone_s0,mobileone_s1,mobileone_s2,mobilenetv2_100"


def _fraction(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise UserError(f"{text!r} is not a fraction; write 0.05 or 5%") from None
    return check_effect(value, text)


def _positive_int(text: str, flag: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise UserError(f"{flag} {text!r} must be a whole number >= 1")
    return value


def _threads(text: str | None) -> int | None:
    if text is None or text == "auto":
        return None
    return _positive_int(text, "--threads")


def _options(items: list[str] | None, device: str) -> dict:

    parsed = parse_option_flags(items)
    other = next((d for d in parsed if d != device), None)
    if other:
        raise UserError(f"--option {other}.* is for device {other}, but the A/B runs on {device}")
    return parsed.get(device, {})


def _device(name: str):
    return require_runnable(name)


def _alpha(text: str) -> float:
    try:
        a = float(text)
    except ValueError:
        a = -1.0
    if not 0 < a < 1:
        raise UserError(f"--alpha {text!r} must be a fraction between 0 and 1 (0.05 = at most 5% false alarms per job)")
    return a


def _finish(report, args) -> int:

    write_outputs(report, args.markdown, args.json_out)
    print_report(report)
    return report.exit_code


def _plan(args):
    rounds = _positive_int(args.rounds, "--rounds")
    cap = _positive_int(args.max_rounds, "--max-rounds") if args.max_rounds else max(rounds, ABPlan().max_pairs)
    return ABPlan(min_pairs=rounds, max_pairs=cap, step=_positive_int(args.step, "--step"), ci=args.ci)


def _effects(args, threads: int, device: str):

    effects = load_effects(args.effects, _fraction(args.min_effect) if args.min_effect else None)
    notes = []
    if args.effects:
        meta = json.loads(Path(args.effects).read_text())
        if isinstance(meta, dict) and "effects" in meta:
            here = cpu_info().get("model", "")
            if meta.get("cpu_model") not in (None, here) or meta.get("threads") not in (None, threads):
                notes.append(f"minimum effects calibrated on {meta.get('cpu_model')} at {meta.get('threads')} "
                             f"thread(s), used here on {here} at {threads}")
    return effects, notes


def _protocol(name: str, device: str):
    return get_protocol(name, get_device(device).kind)


def cmd_ab(args) -> int:

    kinds = {"revisions": args.base is not None or args.head is not None,
             "configs": args.base_config is not None or args.head_config is not None,
             "artifacts": args.base_artifacts is not None or args.head_artifacts is not None}
    chosen = [k for k, v in kinds.items() if v]
    if len(chosen) != 1:
        raise UserError("name the two variants one way: --base REV [--head REV], or --base-config A.toml "
                        "--head-config B.toml, or --base-artifacts DIR --head-artifacts DIR")
    kind = chosen[0]
    device = args.device
    _device(device)
    options = _options(args.option, device)
    threads = _threads(args.threads)
    if threads is None and kind != "configs":
        threads = load_config(args.config).threads or usable_cores()
    protocol = _protocol(args.protocol, device)
    plan = _plan(args)
    with tempfile.TemporaryDirectory(prefix="bench-ab-cache-") as scratch:
        cache = Path(args.cache_dir) if args.cache_dir else Path(scratch)
        if kind == "revisions":
            if args.base is None:
                raise UserError("--head needs --base REV (the revision to compare against, e.g. origin/main)")
            if not args.models:
                raise UserError(f"--base REV needs --models (e.g. --models {GATE_MODELS}): each one is exported "
                                "twice")
            if not get_device(device).exporter:
                raise UserError(f"device {device} runs the PyTorch model in this process, so two revisions' "
                                "models cannot both load here; use --device cpu")
            models = zoo.list_models(args.models)
            repo = Path(args.repo) if args.repo else _repo_root()
            base = ab.variant_from_revision("base", args.base, repo, models, device, threads, options, cache,
                                            log_to_stderr)
            head = ab.variant_from_revision("head", args.head or ab.WORKTREE, repo, models, device, threads,
                                            options, cache, log_to_stderr)
        elif kind == "configs":
            if not (args.base_config and args.head_config):
                raise UserError("pass both --base-config FILE and --head-config FILE")
            cache_dir = Path(args.cache_dir) if args.cache_dir else None
            base = ab.variant_from_config("base", args.base_config, args.models, device, threads, cache_dir,
                                          log_to_stderr)
            head = ab.variant_from_config("head", args.head_config, args.models, device, threads, cache_dir,
                                          log_to_stderr)
            if options:
                raise UserError("--option does not apply to --base-config/--head-config: put options in the files")
        else:
            if not (args.base_artifacts and args.head_artifacts):
                raise UserError("pass both --base-artifacts DIR and --head-artifacts DIR")
            base = ab.variant_from_artifacts("base", args.base_artifacts, args.models, device, threads)
            head = ab.variant_from_artifacts("head", args.head_artifacts, args.models, device, threads)
            from dataclasses import replace
            base, head = replace(base, options=options), replace(head, options=options)
        effects, notes = _effects(args, head.threads, device)
        report = run_ab(base, head, protocol, plan, effects, _alpha(args.alpha), args.seed, log_to_stderr)
    if notes:
        from dataclasses import replace
        report = replace(report, notes=report.notes + tuple(notes))
    return _finish(report, args)


def _repo_root() -> Path:
    return REPO_ROOT


def cmd_compare(args) -> int:

    def runs_dir() -> Path:
        return load_config(args.config).out_dir

    baselines = Path(args.baselines or BASELINES_DIR)
    base = load_result_set(args.base, runs_dir, baselines)
    new = load_result_set(args.new, runs_dir, baselines)
    models = None
    if args.models:
        models = zoo.list_models(args.models)
    effects, _ = _effects(args, 0, "cpu")
    report = compare_sets(base, new, effects, _alpha(args.alpha), args.force, models)
    return _finish(report, args)


def cmd_calibrate(args) -> int:

    device = args.device
    _device(device)
    threads = _threads(args.threads)
    pairs = _positive_int(args.pairs, "--pairs")
    repeats = _positive_int(args.repeats, "--repeats")
    if pairs < 12:
        raise UserError(f"--pairs {pairs} is too few to bound an interval; use 12 or more (default 44)")
    protocol = _protocol(args.protocol, device)
    cache_dir = Path(args.cache_dir) if args.cache_dir else None
    variant = ab.variant_from_config("base", args.config, args.models or GATE_MODELS, device, threads, cache_dir,
                                     log_to_stderr)
    if variant.errors:
        for m, why in variant.errors.items():
            log_to_stderr(f"{m}: not calibrated ({why})")
    data = calibrate(variant, protocol, pairs, repeats, _alpha(args.alpha), _fraction(args.floor), ABPlan(),
                     args.seed, log_to_stderr)
    out = (Path(args.out) if args.out else
           Path("results/calibration") / f"effects-{_slug(data['cpu_model'])}-t{variant.threads}.json")
    atomic_write_json(out, data)
    headers, rows = calibration_rows(data)
    print_table(headers, rows,
                title=f"A/A calibration: {device}, {variant.threads} thread(s), {pairs} pairs x {repeats}",
                footnotes=[f"saved {out}; use it with `bench ab --effects {out}`"])
    return 0


def _slug(text: str) -> str:
    import re
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "cpu"


def cmd_baseline(args) -> int:

    folder = Path(args.dir or BASELINES_DIR)
    if args.action == "accept":
        if not args.run:
            raise UserError("bench baseline accept needs a RUN (a path, a run id, or 'latest')")
        dst = accept_baseline(args.run, load_config(args.config).out_dir, folder, args.name, args.force)
        print(f"accepted {args.run} as baseline {dst}")
        return 0
    rows = list_baselines(folder)
    if args.json:
        print_json(rows)
        return 0
    print_table(["name", "run", "created", "host", "cpu", "revision", "cells", "devices"],
                [[r["name"], r.get("run_id", "?"), r.get("created", ""), r.get("host", ""), r.get("cpu", ""),
                  (r.get("revision") or "")[:12], str(r.get("cells", "")), r.get("devices", r.get("error", ""))]
                 for r in rows], title=f"baselines in {folder}")
    return 0


def _verdict_arguments(p) -> None:
    p.add_argument("--min-effect", metavar="FRACTION",
                   help="smallest slowdown that fails the gate, e.g. 0.05 or 5%% (default 5%%)")
    p.add_argument("--effects", metavar="FILE", help="per-model minimum effects (JSON from `bench calibrate`)")
    p.add_argument("--alpha", default="0.05", metavar="P",
                   help="at most this chance of a false FAIL per job, over all cells (Bonferroni; default 0.05)")
    p.add_argument("--models", metavar="PATTERN", help="names, wildcards or comma-separated list")
    p.add_argument("--markdown", metavar="FILE", help="also write a pull-request summary in Markdown")
    p.add_argument("--json", dest="json_out", metavar="FILE", help="also write the verdicts as JSON")
    p.add_argument("--config", metavar="FILE", help="suite file (default: ./bench.toml if present)")


def register(sub) -> None:
    p = sub.add_parser("ab", help="time two versions of the same models here, rounds interleaved; gate on the ratio",
                       description="Measure two variants in one process, rounds interleaved A B B A with a random "
                       "start, and judge each model's head/base latency ratio. Exit 0 PASS, 1 FAIL, 3 UNSTABLE.")
    g = p.add_argument_group("variants (one pair)")
    g.add_argument("--base", metavar="REV", help="git revision to compare against (e.g. origin/main)")
    g.add_argument("--head", metavar="REV", help="git revision under test (default: the working tree as it is)")
    g.add_argument("--base-config", metavar="FILE", help="suite file of the base variant")
    g.add_argument("--head-config", metavar="FILE", help="suite file of the head variant")
    g.add_argument("--base-artifacts", metavar="DIR", help="folder written by `bench export --out DIR`")
    g.add_argument("--head-artifacts", metavar="DIR", help="folder written by `bench export --out DIR`")
    p.add_argument("--device", default="cpu", metavar="NAME", help="device both run on (default cpu)")
    p.add_argument("--threads", metavar="N", help="intra-op threads (default: the cores this process may use)")
    p.add_argument("--protocol", default="default", metavar="NAME",
                   help="shape of one round: default, quick, paper, ... (warm-up and iterations per round)")
    p.add_argument("--rounds", default="12", metavar="N", help="pairs of rounds before the first look (default 12)")
    p.add_argument("--max-rounds", metavar="N", help="cap on pairs while the interval is too wide (default 44)")
    p.add_argument("--step", default="8", metavar="N",
                   help="pairs added per look (default 8; each look costs a share of --alpha)")
    p.add_argument("--ci", choices=("hodges-lehmann", "bootstrap"), default="hodges-lehmann",
                   help="interval of the paired log ratio (default hodges-lehmann)")
    p.add_argument("--seed", type=int, metavar="N", help="seed of the random start (default: random, printed)")
    p.add_argument("--option", action="append", metavar="DEVICE.KEY=VALUE", help="a device option for both sides")
    p.add_argument("--cache-dir", metavar="DIR", help="artifact cache (default: a temporary folder per job)")
    p.add_argument("--repo", metavar="DIR", help="git repository of --base/--head (default: this checkout)")
    _verdict_arguments(p)
    p.set_defaults(func=cmd_ab)

    p = sub.add_parser("compare", help="verdicts between two stored result sets (runs, folders or baselines)",
                       description="Compare two stored result sets cell by cell (per-round medians, bootstrap "
                       "interval of the ratio of medians). Refuses cells from different environments unless --force. "
                       "Exit 0 PASS, 1 FAIL, 3 UNSTABLE.")
    p.add_argument("base", metavar="BASE", help="run file, folder, baseline name, run id or 'latest'")
    p.add_argument("new", metavar="NEW", help="run file, folder, baseline name, run id or 'latest'")
    p.add_argument("--force", action="store_true",
                   help="compare cells measured in different environments anyway (verdicts then advisory)")
    p.add_argument("--baselines", metavar="DIR", help="baselines folder (default results/baselines)")
    _verdict_arguments(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("calibrate", help="A/A on this machine: noise floor and a minimum effect per model",
                       description="Time each model against itself (two sessions, rounds interleaved) to measure "
                       "this machine's noise and suggest each model's minimum effect; writes JSON for "
                       "`bench ab --effects`.")
    p.add_argument("--models", metavar="PATTERN", help=f"models (default {GATE_MODELS})")
    p.add_argument("--device", default="cpu", metavar="NAME", help="device (default cpu)")
    p.add_argument("--threads", metavar="N", help="intra-op threads (default: the cores this process may use)")
    p.add_argument("--protocol", default="default", metavar="NAME", help="shape of one round (default: default)")
    p.add_argument("--pairs", default="44", metavar="N",
                   help="pairs of rounds per A/A run (default 44, bench ab's cap)")
    p.add_argument("--repeats", default="3", metavar="N", help="A/A runs per model (default 3)")
    p.add_argument("--alpha", default="0.05", metavar="P", help="family-wise level the effects are sized for")
    p.add_argument("--floor", default="0.02", metavar="FRACTION", help="smallest effect ever suggested (default 2%%)")
    p.add_argument("--seed", type=int, metavar="N", help="seed of the random starts")
    p.add_argument("--config", metavar="FILE", help="suite file whose form, activation and device options to use")
    p.add_argument("--cache-dir", metavar="DIR", help="artifact cache")
    p.add_argument("--out", metavar="FILE",
                   help="where to write the JSON (default results/calibration/effects-<cpu>-t<threads>.json)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("baseline", help="accept a run as a baseline (results/baselines/), or list them")
    p.add_argument("action", choices=("accept", "list"))
    p.add_argument("run", nargs="?", metavar="RUN", help="accept: a run file, run id or 'latest'")
    p.add_argument("--name", metavar="NAME", help="baseline name (default: the run id)")
    p.add_argument("--force", action="store_true", help="replace a baseline of that name; accept an unfinished run")
    p.add_argument("--dir", metavar="DIR", help="baselines folder (default results/baselines)")
    p.add_argument("--config", metavar="FILE", help="suite file (its `out` is where run ids are looked up)")
    p.add_argument("--json", action="store_true", help="list: print JSON")
    p.set_defaults(func=cmd_baseline)

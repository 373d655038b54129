"""Latencies measured on a phone (the authors' ModelBench app, a per-inference log, a JSON summary) -> a Run.

Parsers are pure functions of the text: they check everything before any result exists, so a malformed file
gives one error naming the file, the line and the problem, and nothing is written (the caller writes the Run
only after `import_text` returns). Formats are documented in docs/coreml.md.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench import zoo
from bench.core.errors import UserError
from bench.core.io import now_iso
from bench.core.protocol import PRESETS
from bench.core.result import OK, ComparabilityKey, LatencyResult, Summary
from bench.stats import summarize
from bench.store import Run, new_run_id
from devices.coreml import compute_units_name

FORMATS = ("modelbench", "csv", "json")
SAMPLE_STATISTICS = ("median", "min", "trimmed_mean", "p90_early_stop")  # bench.stats.STATISTICS
# What a tool may report as its one number when it gives no per-inference times.
AGGREGATE_STATISTICS = ("median", "mean", "min", "trimmed_mean", "p90")
# ModelBench's defaults (ViewController.swift): 20 rounds x 50 inferences, 1 warm-up per round, model
# re-created each round, 10 lowest and 10 highest dropped per round; values shown to 3 decimals (ms).
MODELBENCH_DEFAULTS = {"rounds": 20, "inferences": 50, "trim": 10}
MODELBENCH_TOLERANCE_MS = 0.0015  # the app prints %.3f: a recomputed mean may differ by rounding only


@dataclass(frozen=True)
class DeviceInfo:
    """What the command line says about where the numbers were measured (the files do not say)."""

    device: str = "iphone"
    device_name: str = "iPhone 12"
    os_version: str | None = None
    compute_units: str | None = None
    runner: str = "coreml-app"
    precision: str = "fp16"


@dataclass(frozen=True)
class ImportedCell:
    """One model's numbers as parsed, before they become a LatencyResult."""

    model: str  # registry name
    given_name: str
    line: int
    samples_ms: tuple[tuple[float, ...], ...] = ()  # by round; empty when the file gives aggregates only
    statistic: str = "median"
    trim: int = 0
    aggregates: dict = field(default_factory=dict)  # latency_ms and what else the file states
    protocol: dict = field(default_factory=dict)
    load_ms: float | None = None
    first_inference_ms: float | None = None
    notes: dict = field(default_factory=dict)  # kept in the result's runner_info


MAX_NAME = 100  # characters of a model name (the zoo's longest is under 40)
MAX_JSON_DEPTH = 32  # levels of [ and { (the JSON format needs 4: list > entry > samples_ms > round)
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def clip(text: str, n: int = 60) -> str:
    """`text` shortened for an error message: a hostile file must not make a message of megabytes."""
    return text if len(text) <= n else f"{text[:n]}... ({len(text)} characters)"


def json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply `text`'s arrays and objects nest, counted without parsing and only to just past `limit`
    (json's parser recurses once per level: 100,000 levels raise RecursionError)."""
    depth = deepest = 0
    for m in _JSON_TOKEN.finditer(text):
        c = m.group()
        if c in ("[", "{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif c in ("]", "}"):
            depth -= 1
    return deepest


def _err(source: str, line: int | None, problem: str) -> UserError:
    where = f"{source}:{line}" if line else source
    return UserError(f"{where}: {problem}")


def _number(text, source: str, line: int, what: str, positive: bool = True) -> float:
    if isinstance(text, str) and text.strip().lower().endswith("ms"):  # "0.812 ms" as a person writes it
        text = text.strip()[:-2]
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise _err(source, line, f"{what} {clip(repr(text))} is not a number; write milliseconds like 0.812"
                   ) from None
    if isinstance(text, bool) or not math.isfinite(value) or (positive and value <= 0) or value < 0:
        sign = "positive" if positive else "non-negative"
        raise _err(source, line, f"{what} {clip(repr(text))} is not a {sign} finite number of milliseconds")
    return value


def _count(text, source: str, line: int, what: str, minimum: int = 1) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise _err(source, line, f"{what} {clip(repr(text))} is not a whole number") from None
    if value < minimum:
        raise _err(source, line, f"{what} is {value}; it must be at least {minimum}")
    return value


def _name(name: str, source: str, line: int) -> str:
    """A model name as the file gives it, refused when longer than any name could be."""
    if len(name) > MAX_NAME:
        raise _err(source, line, f"model name {clip(repr(name))} is longer than {MAX_NAME} characters; "
                                 "use a zoo name or paper name (`bench models` lists them)")
    return name


def _resolve(name: str, source: str, line: int) -> str:
    _name(name, source, line)
    try:
        return zoo.resolve(name).name
    except UserError as e:
        raise _err(source, line, f"{e} (use a zoo name or paper name; `bench models` lists them)") from None


def _no_duplicates(cells: list[ImportedCell], source: str) -> None:
    seen: dict[str, ImportedCell] = {}
    for c in cells:
        if c.model in seen:
            raise _err(source, c.line, f"model {c.model} ({c.given_name!r}) already given on line "
                                       f"{seen[c.model].line}; one file holds one measurement per model "
                                       "(import other settings as a separate run)")
        seen[c.model] = c
    if not cells:
        raise _err(source, None, "no measurements found; see docs/coreml.md for the format")


# ---- ModelBench ----

_KEY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9 ()/_.-]*")
_SEPARATOR = re.compile(r"[:=]")


def _key_value(line: str) -> tuple[str, str] | None:
    """'key: value' or 'key = value' -> (key, value); None when the line is not one. Linear in the line's
    length (a backtracking regex took minutes on a line of a million spaces)."""
    m = _SEPARATOR.search(line)
    if m is None:
        return None
    key = line[:m.start()].strip()
    if not _KEY_NAME.fullmatch(key):
        return None
    return key, line[m.end():].strip()
_MB_KEYS = {
    "model": "model", "rounds": "rounds", "inferencesperround": "inferences", "inferences": "inferences",
    "lowhightrim": "trim", "trim": "trim", "averageall": "average", "average": "average",
    "averagealllatency": "average", "avg": "average", "averagelast": "average_last",
    "averagelastlatency": "average_last", "low": "low", "latencylow": "low", "high": "high",
    "latencyhigh": "high", "note": "note", "notes": "note",
}


@dataclass
class _Block:
    name: str
    line: int
    fields: dict = field(default_factory=dict)  # key -> (value text, line)
    rounds: list = field(default_factory=list)  # (values, line)


def _modelbench_blocks(text: str, source: str) -> list[_Block]:
    blocks: list[_Block] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or line.lower() == "running...":
            continue
        if line.startswith("["):
            if not blocks:
                raise _err(source, n, "latencies before any 'model:' line; start each model's block with "
                                      "'model: <name>'")
            body = line.rstrip(",").rstrip()
            if not body.endswith("]"):
                raise _err(source, n, "a round of latencies has no closing ']'; paste each round on one line "
                                      "as the app shows it: [ 0.512, 0.515, ... ],")
            values = [v.strip() for v in body[1:-1].split(",") if v.strip()]
            if not values:
                raise _err(source, n, "an empty round '[ ]'")
            blocks[-1].rounds.append(([_number(v, source, n, "latency") for v in values], n))
            continue
        kv = _key_value(line)
        if kv is None:
            raise _err(source, n, f"cannot read {line[:60]!r}; expected 'key: value' (model, rounds, inferences "
                                  "per round, low/high trim, average all, average last, low, high) or a round "
                                  "'[ 0.512, ... ],'")
        given, value = kv
        key = _MB_KEYS.get(re.sub(r"[^a-z]", "", given.lower()))
        if key is None:
            raise _err(source, n, f"unknown key {clip(repr(given))}; known keys: model, rounds, inferences per "
                                  "round, low/high trim, average all, average last, low, high, note")
        if key == "model":
            if not value:
                raise _err(source, n, "'model:' without a name")
            blocks.append(_Block(_name(value, source, n), n))
            continue
        if not blocks:
            raise _err(source, n, f"{clip(repr(given))} before any 'model:' line; start each block with "
                                  "'model: <name>'")
        if key in blocks[-1].fields:
            raise _err(source, n, f"{clip(repr(given))} given twice for {blocks[-1].name} "
                                  f"(first on line {blocks[-1].fields[key][1]})")
        blocks[-1].fields[key] = (value, n)
    return blocks


def _modelbench_cell(b: _Block, source: str) -> ImportedCell:
    f = b.fields
    assumed = [k for k in MODELBENCH_DEFAULTS if k not in f]
    rounds_n = _count(f["rounds"][0], source, f["rounds"][1], "rounds") if "rounds" in f else None
    inferences = (_count(f["inferences"][0], source, f["inferences"][1], "inferences per round")
                  if "inferences" in f else None)
    trim = (_count(f["trim"][0], source, f["trim"][1], "low/high trim", minimum=0) if "trim" in f
            else MODELBENCH_DEFAULTS["trim"])
    stated = {k: _number(f[k][0], source, f[k][1], k.replace("_", " "))
              for k in ("average", "average_last", "low", "high") if k in f}
    model = _resolve(b.name, source, b.line)
    samples: tuple[tuple[float, ...], ...] = ()
    if b.rounds:
        lengths = {len(v) for v, _ in b.rounds}
        if inferences is not None:
            wrong = next(((v, n) for v, n in b.rounds if len(v) != inferences), None)
            if wrong:
                raise _err(source, wrong[1], f"a round of {len(wrong[0])} latencies; 'inferences per round' "
                                             f"says {inferences} (copy whole rounds, or fix the setting)")
        elif len(lengths) > 1:
            raise _err(source, b.rounds[0][1], f"rounds of different lengths {sorted(lengths)} for {b.name}; "
                                               "the app runs the same number of inferences in every round")
        if rounds_n is not None and rounds_n != len(b.rounds):
            raise _err(source, f["rounds"][1], f"'rounds: {rounds_n}' but {len(b.rounds)} rounds of latencies "
                                               f"follow for {b.name}; copy every round")
        rounds_n, inferences = len(b.rounds), len(b.rounds[0][0])
        if inferences <= 2 * trim:
            raise _err(source, b.rounds[0][1], f"rounds of {inferences} latencies cannot drop {trim} lowest and "
                                               f"{trim} highest; fix 'low/high trim'")
        samples = tuple(tuple(v) for v, _ in b.rounds)
        _check_modelbench_aggregates(b, samples, trim, stated, source)
    elif "average" not in stated:
        raise _err(source, b.line, f"no latencies for {b.name}: give 'average all: <ms>' (with low and high) "
                                   "or paste the rounds '[ ... ],'")
    rounds_n = rounds_n or MODELBENCH_DEFAULTS["rounds"]
    inferences = inferences or MODELBENCH_DEFAULTS["inferences"]
    if not samples and inferences <= 2 * trim:
        raise _err(source, f.get("trim", ("", b.line))[1],
                   f"{inferences} inferences per round cannot drop {trim} lowest and {trim} highest")

    protocol = replace(PRESETS["modelbench"], min_rounds=rounds_n, max_rounds=rounds_n,
                       round_min_iters=inferences, round_max_iters=inferences, trim=trim).to_dict()
    aggregates = {}
    if not samples:
        aggregates = {"latency_ms": stated["average"], "statistic": "trimmed_mean",
                      "count": rounds_n * inferences, "rounds": rounds_n,
                      "trimmed_low_ms": stated.get("low"), "trimmed_high_ms": stated.get("high"),
                      "last_round_ms": stated.get("average_last")}
    notes = {"app": "ModelBench (apple/ml-mobileone)", "stated": stated,
             "settings_assumed": [k for k in assumed if not (b.rounds and k in ("rounds", "inferences"))]}
    if samples:
        notes["sample_order"] = "sorted within each round, as the app displays them"
    return ImportedCell(model=model, given_name=b.name, line=b.line, samples_ms=samples, statistic="trimmed_mean",
                        trim=trim, aggregates=aggregates, protocol=protocol, notes=notes)


def _check_modelbench_aggregates(b: _Block, samples, trim: int, stated: dict, source: str) -> None:
    """The app's own numbers must follow from the pasted rounds: catches a partial paste or a wrong trim."""
    kept = [sorted(r)[trim:len(r) - trim] for r in samples]
    means = [sum(k) / len(k) for k in kept]
    derived = {"average": sum(means) / len(means), "average_last": means[-1],
               "low": min(min(k) for k in kept), "high": max(max(k) for k in kept)}
    for key, value in stated.items():
        if abs(value - derived[key]) > MODELBENCH_TOLERANCE_MS:
            raise _err(source, b.fields[key][1],
                       f"{key.replace('_', ' ')} {value:.3f} ms does not follow from the {len(samples)} rounds "
                       f"given for {b.name} ({derived[key]:.3f} ms with low/high trim {trim}); "
                       "check the trim setting and that every round was copied")


def parse_modelbench(text: str, source: str = "<modelbench>") -> list[ImportedCell]:
    cells = [_modelbench_cell(b, source) for b in _modelbench_blocks(text, source)]
    _no_duplicates(cells, source)
    return cells


# ---- CSV: one row per inference ----

def _csv_row(line: str, source: str, n: int) -> list[str]:
    try:
        return next(csv.reader([line]))
    except csv.Error as e:  # a field over csv's limit (128 KiB), a stray quote in strict mode
        raise _err(source, n, f"not a CSV row ({e}); expected model,latency_ms[,round] with one row per "
                              "inference") from None

def parse_csv(text: str, source: str = "<csv>", statistic: str = "median", trim: int = 0) -> list[ImportedCell]:
    """Columns model, latency_ms and optionally round (other columns are ignored); '#' lines are comments."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise _err(source, None, "empty file; expected a header 'model,latency_ms[,round]' and one row per inference")
    header_line, header_text = lines[0]
    header = [h.strip().lower() for h in _csv_row(header_text, source, header_line)]
    missing = [c for c in ("model", "latency_ms") if c not in header]
    if missing:
        raise _err(source, header_line, f"header {clip(repr(header_text.strip()))} lacks "
                                        f"{', '.join(missing)}; expected columns model,latency_ms[,round]")
    if len(set(header)) != len(header):
        raise _err(source, header_line, "a column name appears twice in the header")
    col = {name: header.index(name) for name in ("model", "latency_ms", "round") if name in header}
    groups: dict[str, dict] = {}
    for n, line in lines[1:]:
        row = _csv_row(line, source, n)
        if len(row) != len(header):
            raise _err(source, n, f"{len(row)} fields, the header has {len(header)}")
        name = _name(row[col["model"]].strip(), source, n)
        if not name:
            raise _err(source, n, "empty model name")
        value = _number(row[col["latency_ms"]].strip(), source, n, "latency_ms")
        rnd = _count(row[col["round"]], source, n, "round", minimum=0) if "round" in col else 0
        g = groups.setdefault(name, {"line": n, "rounds": {}})
        g["rounds"].setdefault(rnd, []).append(value)
    if not groups:
        raise _err(source, header_line, "a header but no rows; expected one row per inference")
    cells = []
    for name, g in groups.items():
        rounds = tuple(tuple(g["rounds"][r]) for r in sorted(g["rounds"]))
        cells.append(ImportedCell(model=_resolve(name, source, g["line"]), given_name=name, line=g["line"],
                                  samples_ms=rounds, statistic=statistic, trim=trim,
                                  protocol={"name": "external", "statistic": statistic, "trim": trim}))
    _no_duplicates(cells, source)  # rows for 'MobileOne-S0' and 'mobileone_s0' are one model: refuse to guess
    return cells


# ---- JSON: a list of {model, samples_ms | latency_ms, ...} ----

_JSON_KEYS = {"model", "samples_ms", "latency_ms", "statistic", "trim", "min_ms", "max_ms", "mean_ms",
              "median_ms", "p90_ms", "std_ms", "count", "rounds", "load_ms", "compile_ms",
              "first_inference_ms", "note"}


def _json_entries(text: str, source: str) -> list[tuple[object, int]]:
    """The top-level list's elements with the line each starts on (json alone gives no positions)."""
    decoder = json.JSONDecoder()
    if not text.strip():
        raise _err(source, None, "empty file; expected a list [ {\"model\": ..., \"samples_ms\": [...]}, ... ]")
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise _err(source, None, f"nested {depth}+ levels deep (at most {MAX_JSON_DEPTH}); expected a list "
                                 "[ {\"model\": ..., \"samples_ms\": [...]}, ... ] (see docs/coreml.md)")
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise _err(source, e.lineno, f"not valid JSON: {e.msg} (column {e.colno})") from None
    except RecursionError:
        raise _err(source, None, "nested too deeply to read; expected a list of objects (see docs/coreml.md)"
                   ) from None
    i = len(text) - len(text.lstrip())
    if not text[i:i + 1] == "[":
        raise _err(source, text.count("\n", 0, i) + 1,
                   "the top level must be a list: [ {\"model\": ..., \"samples_ms\": [...]}, ... ]")
    i += 1
    out = []
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if text[i] == "]":
            return out
        obj, end = decoder.raw_decode(text, i)
        out.append((obj, text.count("\n", 0, i) + 1))
        i = end


def _json_cell(obj, line: int, source: str, statistic: str, trim: int) -> ImportedCell:
    if not isinstance(obj, dict):
        raise _err(source, line, f"an entry is a {type(obj).__name__}, not an object {{\"model\": ..., ...}}")
    unknown = sorted(set(obj) - _JSON_KEYS)
    if unknown:
        raise _err(source, line, f"unknown key {clip(', '.join(unknown))}; known keys: "
                                 f"{', '.join(sorted(_JSON_KEYS))}")
    name = obj.get("model")
    if not isinstance(name, str) or not name.strip():
        raise _err(source, line, "an entry without a \"model\" name")
    _name(name, source, line)
    has_samples, has_latency = "samples_ms" in obj, "latency_ms" in obj
    if has_samples == has_latency:
        raise _err(source, line, f"{name}: give either \"samples_ms\" (per-inference times) or \"latency_ms\" "
                                 "(one summary number), " + ("not both" if has_samples else "none is given"))
    extra = {}
    for key in ("load_ms", "compile_ms", "first_inference_ms"):
        if key in obj:
            extra[key] = _number(obj[key], source, line, f"{name}: {key}")
    notes = {k: extra[k] for k in ("compile_ms",) if k in extra}
    if "note" in obj:
        notes["note"] = str(obj["note"])
    stat = obj.get("statistic", statistic)
    if not isinstance(stat, str):
        known = SAMPLE_STATISTICS if "samples_ms" in obj else AGGREGATE_STATISTICS
        raise _err(source, line, f"{name}: statistic {clip(repr(stat))} is not a name; use one of "
                                 f"{', '.join(known)}")
    entry_trim = _count(obj.get("trim", trim), source, line, f"{name}: trim", minimum=0)
    model = _resolve(name, source, line)
    if has_samples:
        raw = obj["samples_ms"]
        if not isinstance(raw, list) or not raw:
            raise _err(source, line, f"{name}: samples_ms must be a non-empty list of milliseconds, "
                                     "or a list of rounds (lists)")
        rounds = raw if all(isinstance(r, list) for r in raw) else [raw]
        if any(isinstance(r, list) for r in raw) and not all(isinstance(r, list) for r in raw):
            raise _err(source, line, f"{name}: samples_ms mixes numbers and lists; give one list or a list of rounds")
        if any(not r for r in rounds):
            raise _err(source, line, f"{name}: an empty round in samples_ms")
        samples = tuple(tuple(_number(v, source, line, f"{name}: a sample") for v in r) for r in rounds)
        if stat not in SAMPLE_STATISTICS:
            raise _err(source, line, f"{name}: statistic {clip(repr(stat))} for samples; "
                                     f"use one of {', '.join(SAMPLE_STATISTICS)}")
        for key in ("count", "rounds", "min_ms", "max_ms", "mean_ms", "median_ms", "p90_ms", "std_ms"):
            if key in obj:
                raise _err(source, line, f"{name}: {key} is computed from samples_ms; leave it out")
        return ImportedCell(model=model, given_name=name, line=line, samples_ms=samples, statistic=stat,
                            trim=entry_trim, protocol={"name": "external", "statistic": stat, "trim": entry_trim},
                            load_ms=extra.get("load_ms"), first_inference_ms=extra.get("first_inference_ms"),
                            notes=notes)
    if stat not in AGGREGATE_STATISTICS:
        raise _err(source, line, f"{name}: statistic {clip(repr(stat))}; use one of "
                                 f"{', '.join(AGGREGATE_STATISTICS)} (what the one latency_ms number is)")
    aggregates = {"latency_ms": _number(obj["latency_ms"], source, line, f"{name}: latency_ms"), "statistic": stat}
    for key in ("min_ms", "max_ms", "mean_ms", "median_ms", "p90_ms"):
        if key in obj:
            aggregates[key] = _number(obj[key], source, line, f"{name}: {key}")
    if "std_ms" in obj:
        aggregates["std_ms"] = _number(obj["std_ms"], source, line, f"{name}: std_ms", positive=False)
    for key in ("count", "rounds"):
        if key in obj:
            aggregates[key] = _count(obj[key], source, line, f"{name}: {key}")
    if "min_ms" in aggregates and "max_ms" in aggregates and aggregates["min_ms"] > aggregates["max_ms"]:
        raise _err(source, line, f"{name}: min_ms {aggregates['min_ms']} is above max_ms {aggregates['max_ms']}")
    return ImportedCell(model=model, given_name=name, line=line, statistic=stat, trim=entry_trim,
                        aggregates=aggregates, protocol={"name": "external", "statistic": stat},
                        load_ms=extra.get("load_ms"), first_inference_ms=extra.get("first_inference_ms"),
                        notes=notes)


def parse_json(text: str, source: str = "<json>", statistic: str = "median", trim: int = 0) -> list[ImportedCell]:
    cells = [_json_cell(obj, line, source, statistic, trim) for obj, line in _json_entries(text, source)]
    _no_duplicates(cells, source)
    return cells


# ---- cells -> results -> run ----

def aggregate_summary(agg: dict) -> Summary:
    """A Summary from a tool's aggregates: what the tool did not report stays None."""
    latency, stat = agg["latency_ms"], agg["statistic"]
    return Summary(
        statistic=stat, latency_ms=latency,
        median_ms=agg.get("median_ms", latency if stat == "median" else None),
        p90_ms=agg.get("p90_ms", latency if stat == "p90" else None),
        mean_ms=agg.get("mean_ms", latency if stat == "mean" else None), std_ms=agg.get("std_ms"),
        min_ms=agg.get("min_ms", latency if stat == "min" else None), max_ms=agg.get("max_ms"),
        count=agg.get("count"), rounds=agg.get("rounds"),
        **{k: v for k, v in agg.items() if k.startswith(("trimmed_", "last_round"))})


def imported_env(info: DeviceInfo, fmt: str, source: str, when: str, source_sha256: str | None = None) -> dict:
    """The run's env of imported numbers: what the command line says about the phone, and the import itself."""
    return {"device": info.device, "device_name": info.device_name,
            "os": {"system": "iOS" if info.device == "iphone" else info.device, "version": info.os_version or ""},
            "compute_units": info.compute_units, "runner": info.runner, "precision": info.precision,
            "imported": {"file": source, "format": fmt, "sha256": source_sha256, "at": when,
                         "host": _importing_host()}}


def to_result(cell: ImportedCell, fmt: str, info: DeviceInfo, source: str, when: str,
              env: dict | None = None) -> LatencyResult:
    """One imported cell; `env` is the run's (imported_env), whose phone facts make its comparability key."""

    if cell.samples_ms:
        try:
            summary = Summary.from_dict(summarize([list(r) for r in cell.samples_ms], cell.statistic,
                                                  cell.trim).to_dict())
        except ValueError as e:
            raise _err(source, cell.line, f"{cell.given_name}: {e}") from None
    else:
        summary = aggregate_summary(cell.aggregates)
    env = env if env is not None else imported_env(info, fmt, source, when)
    env_key = ComparabilityKey.of(env, info.device, info.runner, None, info.precision, runtime=None)
    return LatencyResult(
        model=cell.model, device=info.device, runner=info.runner, form="deploy", precision=info.precision,
        threads=None, status=OK, protocol=cell.protocol, summary=summary,
        samples_ms=[list(r) for r in cell.samples_ms], load_ms=cell.load_ms,
        first_inference_ms=cell.first_inference_ms,
        runner_info={"source_file": source, "line": cell.line, "name_in_file": cell.given_name,
                     "device_name": info.device_name, "os_version": info.os_version,
                     "compute_units": info.compute_units, **cell.notes},
        env_key=env_key, source=f"imported:{fmt}", started=when, finished=when)


def parse(text: str, fmt: str, source: str, statistic: str | None = None, trim: int | None = None
          ) -> list[ImportedCell]:
    if fmt not in FORMATS:
        raise UserError(f"unknown import format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "modelbench":
        if statistic not in (None, "trimmed_mean") or trim is not None:
            raise UserError("ModelBench files carry their own statistic (trimmed mean) and trim; "
                            "drop --statistic/--trim")
        return parse_modelbench(text, source)
    if trim is not None and trim < 0:
        raise UserError(f"--trim {trim} is negative; give how many lowest and highest samples to drop per round")
    stat = statistic or "median"
    if stat not in SAMPLE_STATISTICS:
        raise UserError(f"statistic {stat!r} not known; use one of {', '.join(SAMPLE_STATISTICS)}")
    parser = parse_csv if fmt == "csv" else parse_json
    return parser(text, source, stat, trim or 0)


def import_text(text: str, fmt: str, source: str, info: DeviceInfo, statistic: str | None = None,
                trim: int | None = None, command: list[str] | None = None, source_sha256: str | None = None):
    """Parse everything, then build the Run; raises before anything exists when any part is wrong."""

    if not info.device_name or not info.device_name.strip():
        raise UserError("a device name is needed for imported numbers; pass --device-name \"iPhone 12\"")
    cells = parse(text, fmt, source, statistic, trim)
    when = now_iso()
    env = imported_env(info, fmt, source, when, source_sha256)
    results = [to_result(c, fmt, info, source, when, env) for c in cells]
    config = {"command": "import", "format": fmt, "file": source, "device": info.device,
              "models": [r.model for r in results], "statistic": statistic, "trim": trim}
    return Run(run_id=new_run_id(), created=when, command=command or [], config=config, env=env,
               status="complete", finished=when, cells=results)


def _importing_host() -> dict:
    import platform
    import socket

    return {"hostname": socket.gethostname(), "platform": platform.platform()}


def import_file(path: str | Path, fmt: str, device: str = "iphone", device_name: str = "iPhone 12",
                os_version: str | None = None, compute_units: str | None = None, runner: str = "coreml-app",
                precision: str = "fp16", statistic: str | None = None, trim: int | None = None,
                command: list[str] | None = None):
    """Read a file of phone measurements and return a Run (not written: the caller writes it)."""
    if compute_units is not None and device == "iphone":

        compute_units = compute_units_name(compute_units)
    p = Path(path)
    if p.is_dir():
        raise UserError(f"import file {p} is a folder; pass the file exported from the phone")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise UserError(f"import file {p} not found; pass the path of the file exported from the phone") from None
    except OSError as e:
        raise UserError(f"cannot read import file {p} ({e.strerror or e}); check the path and its permissions"
                        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise _err(str(p), line, "not UTF-8 text; save the file as UTF-8") from None
    info = DeviceInfo(device=device, device_name=device_name, os_version=os_version, compute_units=compute_units,
                      runner=runner, precision=precision)
    return import_text(text, fmt, str(p), info, statistic, trim, command, hashlib.sha256(data).hexdigest())

"""What an A/B compares: two variants of the same models, each from a git revision (exported by that
revision's own code), a suite file, or a folder of exported artifacts."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from bench import zoo
from bench.config import load_config, with_cli
from bench.core.artifact import ExportArtifact, ExportRequest, relocated, verified
from bench.core.errors import UserError
from bench.env import usable_cores
from bench.pipeline import export_request
from bench.reference import REPO_ROOT
from devices.registry import get_device
from exporters.base import ARTIFACT_FILE, get_exporter

WORKTREE = "WORKTREE"  # --head's default: the checkout as it is, uncommitted edits included
EXPORT_TIMEOUT_S = 3600
GATE_MODELS = "mobileone_s0,mobileone_s1,mobileone_s2,mobilenetv2_100"  # what CI gates, and calibrate's default


@dataclass(frozen=True)
class Variant:
    """One side of an A/B: what to load for each model, and how to run it."""

    label: str  # base | head
    source: str  # for people: "rev 1a2b3c4d5e6f (origin/main)", "config slow.toml", "artifacts out/a"
    device: str
    threads: int
    options: dict[str, Any] = field(default_factory=dict)  # runner options (the device's [devices.X] table)
    targets: dict[str, Any] = field(default_factory=dict)  # model -> ExportArtifact, or ExportRequest (no exporter)
    forms: dict[str, str] = field(default_factory=dict)  # model -> deploy | train
    errors: dict[str, str] = field(default_factory=dict)  # model -> why it has no target

    def load_target(self, model: str):
        """What the runner's load() takes: the artifact, or the PyTorch model built from the request."""
        target = self.targets[model]
        return zoo.build_model(target) if isinstance(target, ExportRequest) else target


def form_of(artifact) -> str:
    """deploy | train, as the zoo recorded it in the artifact's build info."""
    build = (artifact.metadata or {}).get("build") or {}
    return "train" if build.get("deploy") is False else "deploy"


def _git(repo: Path, *args: str, binary: bool = False):
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=600)
    except FileNotFoundError:
        raise UserError("git is not installed; install git, or use --base-artifacts/--base-config instead") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise subprocess.CalledProcessError(proc.returncode, args, proc.stdout, msg[-1] if msg else "")
    return proc.stdout if binary else proc.stdout.decode().strip()


def resolve_revision(repo: Path, rev: str) -> str:
    """The full commit id of `rev` in `repo`, or a one-line error naming both."""
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        raise UserError(f"{rev!r} is not a commit of the git repository {repo}; pass a commit, branch or tag "
                        "(in CI fetch the history first: actions/checkout with fetch-depth: 0)") from None


def materialize_revision(repo: Path, commit: str, into: Path) -> Path:
    """The tracked files of `commit`, written into the empty folder `into` (git archive: unlike a worktree
    it registers nothing in the repository, so an interrupted job leaves nothing to prune)."""
    data = _git(repo, "archive", "--format=tar", commit, binary=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def export_in_tree(tree: Path, models: list[str], device: str, cache_dir: Path,
                   options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Export `models` with the exporter of the source tree `tree` (its own `bench export`, run with the
    tree first on the import path), into `cache_dir`. Returns (model -> ExportArtifact, model -> error)."""

    def run(names: list[str]):
        cmd = [sys.executable, "-m", "bench.cli", "export", "--device", device, "--models", ",".join(names),
               "--json", "--cache-dir", str(cache_dir)]
        for key, value in sorted(options.items()):
            cmd += ["--option", f"{device}.{key}={str(value).lower() if isinstance(value, bool) else value}"]
        env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("BENCH_CACHE_DIR", None)
        try:
            return subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise UserError(f"exporting {', '.join(names)} in {tree} took over {EXPORT_TIMEOUT_S} s; "
                            "try fewer models with --models") from None

    def parse(stdout: str) -> list[dict]:
        start = stdout.find("[")  # anything a library printed before the JSON is not ours
        try:
            rows = json.loads(stdout[start:]) if start >= 0 else None
        except json.JSONDecodeError:
            rows = None
        return rows if isinstance(rows, list) else []

    def last_line(text: str) -> str:
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        return lines[-1].strip() if lines else "no output"

    targets: dict[str, Any] = {}
    errors: dict[str, str] = {}
    proc = run(models)
    rows = parse(proc.stdout)
    if proc.returncode not in (0, 1) or not rows:
        # The whole call was refused (say, a model this revision does not know): try each model alone.
        for model in models:
            p = run([model]) if len(models) > 1 else proc
            r = parse(p.stdout)
            if r and "path" in r[0]:
                rows.extend(r)
            else:
                errors[model] = (r[0].get("error") if r else None) or last_line(p.stderr or p.stdout)
    for row in rows:
        if "path" in row:
            targets[row["model"]] = _artifact_from_row(row, ExportArtifact)
        else:
            errors[row.get("model", "?")] = row.get("error", "export failed")
    return targets, errors


def _artifact_from_row(row: dict, cls):
    """`bench export --json` prints a row per model; the full record sits beside the cached file."""
    record = Path(row["path"]).parent / ARTIFACT_FILE
    if record.is_file():
        # Records hold the file's name (older ones an absolute path): resolve it beside the record, and check
        # the file is the one recorded before it is timed.
        return verified(relocated(cls.from_dict(json.loads(record.read_text())), record.parent))
    raise UserError(f"the exporter wrote {row['path']} without its record {record}; "
                    "that revision's exporter is too old for bench ab: pick a newer --base")


def variant_from_revision(label: str, rev: str, repo: Path, models: list[str], device: str, threads: int,
                          options: dict[str, Any], cache_dir: Path, log: Callable[[str], None] = lambda s: None,
                          ) -> Variant:
    """Export `models` at revision `rev` of `repo` (WORKTREE: the checkout as it is) with that revision's
    own exporter, into `cache_dir`/<commit> (each revision its own cache)."""
    repo = Path(repo).resolve()
    if rev == WORKTREE:
        commit, tree, scratch = None, repo, None
        source = f"working tree of {repo}"
    else:
        commit = resolve_revision(repo, rev)
        scratch = Path(tempfile.mkdtemp(prefix=f"bench-ab-{label}-"))
        tree = materialize_revision(repo, commit, scratch)
        source = f"rev {commit[:12]}" + (f" ({rev})" if not commit.startswith(rev) else "")
    try:
        log(f"{label}: exporting {len(models)} model(s) at {source}")
        cache = Path(cache_dir) / (commit[:12] if commit else "worktree")
        targets, errors = export_in_tree(tree, models, device, cache, options)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return Variant(label, source, device, threads, dict(options), targets,
                   {m: form_of(a) for m, a in targets.items()}, errors)


def variant_from_config(label: str, config_path: str | None, models: str | None, device: str, threads: int | None,
                        cache_dir: Path | None, log: Callable[[str], None] = lambda s: None) -> Variant:
    """The suite file's models, form, activation and [devices.<device>] options, exported with this checkout
    (None: ./bench.toml if present, else the defaults)."""
    if config_path is not None and not Path(config_path).is_file():
        raise UserError(f"--{label}-config {config_path} not found; pass an existing suite file (see bench.toml)")
    cfg = with_cli(load_config(config_path), models=models, cache=str(cache_dir) if cache_dir else None)
    dev = get_device(device)
    options = cfg.options_for(device)
    form = "train" if cfg.form == "train" else "deploy"
    targets: dict[str, Any] = {}
    forms: dict[str, str] = {}
    errors: dict[str, str] = {}
    names = zoo.list_models(cfg.models)
    log(f"{label}: {'exporting' if dev.exporter else 'building'} {len(names)} model(s) from "
        f"{config_path or 'the default suite'}")
    for model in names:
        deploy = form == "deploy" or not zoo.resolve(model).reparameterizable
        request = export_request(cfg, model, device, deploy)
        forms[model] = "deploy" if deploy else "train"
        if not dev.exporter:
            targets[model] = request
            continue
        try:
            targets[model], _hit = get_exporter(dev.exporter)(request, cfg.cache_dir)
        except UserError:
            raise
        except Exception as e:  # a model that fails to export is reported, the others still run
            errors[model] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    forms = {m: f for m, f in forms.items() if m in targets}
    return Variant(label, f"config {config_path or 'defaults'}", device, threads or cfg.threads or usable_cores(),
                   options, targets, forms, errors)


def variant_from_artifacts(label: str, folder: str, models: str | None, device: str, threads: int) -> Variant:
    """Artifacts as `bench export --out DIR` writes them: <model>.<ext> with the record <model>.<target>.json."""

    d = Path(folder)
    if not d.is_dir():
        raise UserError(f"--{label}-artifacts {folder} is not a folder; pass one written by `bench export --out DIR`")
    target = get_device(device).exporter
    if not target:
        raise UserError(f"device {device} runs the PyTorch model, not an artifact; use --device cpu (or another "
                        "exporting device) with --base-artifacts/--head-artifacts")
    wanted = set(zoo.list_models(models)) if models else None
    targets: dict[str, Any] = {}
    for record in sorted(d.glob(f"*.{target}.json")):
        try:
            art = ExportArtifact.from_dict(json.loads(record.read_text()))
        except (ValueError, TypeError, KeyError, OSError) as e:
            raise UserError(f"{record} is not an artifact record ({type(e).__name__}); re-create the folder "
                            "with `bench export --out DIR`") from None
        if wanted is not None and art.model not in wanted:
            continue
        local = d / Path(art.path).name  # the record may name the path where it was written, elsewhere
        if not local.exists():
            raise UserError(f"{record} names {Path(art.path).name}, which is not in {d}; copy the artifact "
                            "beside its record")
        # A swapped or truncated file would time the wrong model: check it is the one its record names.
        targets[art.model] = verified(replace(art, path=str(local)), f"--{label}-artifacts")
    if not targets:
        raise UserError(f"no {target} artifacts in {folder}" + (f" for --models {models}" if models else "")
                        + f"; write them with `bench export --device {device} --out {folder}`")
    return Variant(label, f"artifacts {folder}", device, threads, {}, targets,
                   {m: form_of(a) for m, a in targets.items()}, {})


@dataclass(frozen=True)
class VariantChoice:
    """How `bench ab` was told to make its two sides: one pair of revisions, suite files or artifact folders."""
    base: str | None = None  # git revisions
    head: str | None = None
    base_config: str | None = None  # suite files
    head_config: str | None = None
    base_artifacts: str | None = None  # folders written by `bench export --out DIR`
    head_artifacts: str | None = None

    def __post_init__(self):
        kind = self.kind
        if kind == "revisions" and self.base is None:
            raise UserError("--head needs --base REV (the revision to compare against, e.g. origin/main)")
        if kind == "configs" and not (self.base_config and self.head_config):
            raise UserError("pass both --base-config FILE and --head-config FILE")
        if kind == "artifacts" and not (self.base_artifacts and self.head_artifacts):
            raise UserError("pass both --base-artifacts DIR and --head-artifacts DIR")

    @property
    def kind(self) -> str:
        """revisions | configs | artifacts"""
        kinds = {"revisions": self.base is not None or self.head is not None,
                 "configs": self.base_config is not None or self.head_config is not None,
                 "artifacts": self.base_artifacts is not None or self.head_artifacts is not None}
        chosen = [k for k, v in kinds.items() if v]
        if len(chosen) != 1:
            raise UserError("name the two variants one way: --base REV [--head REV], or --base-config A.toml "
                            "--head-config B.toml, or --base-artifacts DIR --head-artifacts DIR")
        return chosen[0]


def prepare_variants(choice: VariantChoice, models: str | None, device: str, threads: int | None,
                     options: dict[str, Any], scratch: Path, cache_dir: Path | None = None,
                     repo: Path | None = None, config: str | None = None,
                     log: Callable[[str], None] = lambda s: None) -> tuple[Variant, Variant]:
    """The (base, head) variants `choice` names, exported (revisions: into `cache_dir`, else `scratch`; suite
    files: into `cache_dir`, else their own cache). `threads` None: the suite file's, else every usable core."""
    kind = choice.kind
    if threads is None and kind != "configs":
        threads = load_config(config).threads or usable_cores()
    if kind == "revisions":
        if not models:
            raise UserError(f"--base REV needs --models (e.g. --models {GATE_MODELS}): each one is exported twice")
        if not get_device(device).exporter:
            raise UserError(f"device {device} runs the PyTorch model in this process, so two revisions' "
                            "models cannot both load here; use --device cpu")
        names = zoo.list_models(models)
        repo = Path(repo) if repo else REPO_ROOT
        cache = Path(cache_dir) if cache_dir else Path(scratch)
        base = variant_from_revision("base", choice.base, repo, names, device, threads, options, cache, log)
        head = variant_from_revision("head", choice.head or WORKTREE, repo, names, device, threads, options, cache,
                                     log)
        return base, head
    if kind == "configs":
        if options:
            raise UserError("--option does not apply to --base-config/--head-config: put options in the files")
        cache = Path(cache_dir) if cache_dir else None
        return (variant_from_config("base", choice.base_config, models, device, threads, cache, log),
                variant_from_config("head", choice.head_config, models, device, threads, cache, log))
    base = variant_from_artifacts("base", choice.base_artifacts, models, device, threads)
    head = variant_from_artifacts("head", choice.head_artifacts, models, device, threads)
    only = {side: sorted(set(v.targets) - set(other.targets)) for side, v, other in
            (("base", base, head), ("head", head, base))}
    if only["base"] or only["head"]:
        said = "; ".join(f"only in --{side}-artifacts: {', '.join(names)}" for side, names in only.items() if names)
        raise UserError(f"the artifact folders hold different models ({said}); export the same models into "
                        "both, or pick the common ones with --models")
    return replace(base, options=dict(options)), replace(head, options=dict(options))

"""`ssm-gitops plan` and `ssm-gitops apply`: one pass from the command line.

Stage: the whole pipeline once. Fetch the repository (`controller.source`), load it
(`controller.repository`), then `Reconciler.plan_only` (plan) or `Reconciler.run_pass` (apply),
and print: a reviewer-friendly diff, or one line per action as it happens, then a summary.
Exit codes (contract: Command line): plan 0 no changes / 2 changes / 1 error; apply 0
converged / 1 error. The `--json` output is documented in docs/reconcile.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from controller.aws.artifacts import check_bucket
from controller.errors import PREFIX, UserError
from controller.model.kinds import Kind, Verb, resource_symbol
from controller.model.ownership import local_origin, source_id
from controller.model.state import Location
from controller.reconcile.cache import LastingStore, store_path
from controller.reconcile.engine import PlannedPass, Reconciler
from controller.reconcile.kinds import Action, DeleteAssociation, DeletePackage
from controller.reconcile.plan import Plan
from controller.reconcile.progress import (
    LOG_SECONDS,
    TTY_SECONDS,
    Progress,
    location_counts,
    location_lines,
)
from controller.reconcile.result import (
    ActionRecord,
    ActionResult,
    Failure,
    PassOutcome,
    PassResult,
    Reason,
)
from controller.repository import Repository


def _cache_dir(args: argparse.Namespace | None = None) -> Path:
    given = getattr(args, "cache_dir", None)
    if given:
        return Path(given).expanduser()
    return Path(os.environ.get("SSM_GITOPS_CACHE_DIR") or Path.home() / ".cache" / "ssm-gitops")


def _cache_named(args: argparse.Namespace) -> str:
    """How the user gave the cache folder, for messages."""
    if getattr(args, "cache_dir", None):
        return f"--cache-dir {args.cache_dir}"
    named = os.environ.get("SSM_GITOPS_CACHE_DIR")
    return f"SSM_GITOPS_CACHE_DIR={named}" if named else f"the cache {_cache_dir()}"


def _git_source(args: argparse.Namespace) -> Any:
    """The repository's GitSource, with its clone in the cache folder's `git/`.

    A running controller (`run`) holds `git/` for itself (`controller.source.cache`); `plan`
    and `apply` sharing its cache folder then use a clone of their own for this command, in a
    temporary folder, with a build folder of their own too (`args.private_work`). They still
    share the observe cache (`observe/`), which any number of processes may use at once."""
    import atexit
    import shutil
    import tempfile

    from controller.source import GitSource
    from controller.source.cache import CacheError

    try:
        return GitSource(
            args.repo, args.ref, _cache_dir(args) / "git", cache_named=_cache_named(args)
        )
    except CacheError as error:
        if "in use by another" not in str(error):
            raise
    private = Path(tempfile.mkdtemp(prefix="ssm-gitops-"))
    atexit.register(shutil.rmtree, private, ignore_errors=True)  # this command's only
    args.private_work = private / "work"
    print(
        f"note: {_cache_named(args)} is in use by a running controller: this {args.command} "
        "uses a clone of its own (the AWS read cache is shared)",
        file=sys.stderr,
    )
    return GitSource(args.repo, args.ref, private / "git")


def _load(args: argparse.Namespace) -> tuple[Repository, str]:
    """Fetch the followed ref, materialise it, load the repository: (Repository, commit).

    Also sets `args.source_id` (the `ssm-gitops:source` tag value) from --repo and --path.
    """
    from controller.repository import load_repository
    from controller.source import source_root
    from controller.source.signatures import TrustedKeys, verify_revision

    keys = TrustedKeys.from_flags(
        args.verify_signatures, args.allowed_signers_file, args.trusted_gpg_keys_file
    )
    source = _git_source(args)
    revision = source.fetch()
    if keys is not None:  # --verify-signatures: an untrusted head commit is never read
        signer = verify_revision(source, revision, keys)
        print(f"commit {revision.short}: good {signer.describe()}", file=sys.stderr)
    path = source.within(args.path)
    # The same check as `run`: never a folder outside the repository (`..`, a symlink).
    root = source_root(source.materialise(revision), path, revision)
    _warn_uncommitted(source, path)
    args.source_id = source_id(
        args.repo, path, inner=source.within(None), origin=local_origin(args.repo)
    )
    return load_repository(root, display_prefix=_display_prefix(path)), revision.commit


def _warn_uncommitted(source: Any, path: str) -> None:
    """GitOps reads commits: say so when the work tree holds edits the plan cannot see."""
    changed = source.uncommitted(path)
    if changed:
        shown = ", ".join(changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        )
        print(
            f"note: uncommitted changes are not part of this plan ({shown}): commit them first",
            file=sys.stderr,
        )


def _display_prefix(path: str | None) -> str:
    path = (path or ".").strip("/")
    return "" if path in ("", ".") else f"{path}/"


def _reconciler(args: argparse.Namespace, *, dry_run: bool) -> Reconciler:
    source = getattr(args, "source_id", "")
    return Reconciler(
        args.name,
        source=source,
        dry_run=dry_run,
        work_dir=getattr(args, "private_work", None) or _cache_dir(args) / "work",
        # What earlier passes (any process on this cache folder) read from AWS.
        store=LastingStore(store_path(_cache_dir(args), args.name, source)),
    )


def _print_errors(errors: Iterable[str], out: TextIO) -> None:
    for error in errors:
        print(f"{PREFIX}{error}", file=out)


def plan_command(args: argparse.Namespace) -> int:
    try:
        repository, commit = _load(args)
    except UserError as error:
        errors = str(error).splitlines() or [type(error).__name__]
        _print_errors(errors, sys.stderr)
        if args.json:  # a script reading stdout gets JSON either way
            print(json.dumps({"errors": errors, "actions": [], "blocked": []}, indent=2))
        return 1
    reconciler = _reconciler(args, dry_run=True)
    # Not a full resync: what the cache folder knows and the list pages confirm is not read
    # again (docs/reconcile.md, "Cost of a pass"); apply re-reads before it changes anything.
    planned = reconciler.plan_only(repository, commit, full_resync=False)
    missing = _missing_bucket(reconciler, planned)
    if missing:  # apply would stop on it: say so now, not after the review
        missing_bucket = Failure(Reason.ARTIFACTS, missing)
        planned = dataclasses.replace(planned, failures=(*planned.failures, missing_bucket))
    if args.json:
        print(json.dumps(plan_json(planned, commit, args.name), indent=2))
    else:
        print(render_plan(planned.plan, commit, args.name, planned.desired.source))
        _print_errors(planned.errors, sys.stderr)
        # On standard error: standard output stays the reviewer's diff.
        print(f"{sum(planned.api_calls.values())} AWS calls", file=sys.stderr)
    if planned.errors:
        return 1
    return 2 if planned.plan.has_changes else 0


def _missing_bucket(reconciler: Reconciler, planned: PlannedPass) -> str | None:
    """The artifacts bucket, when the plan publishes versions and the bucket is missing."""
    artifacts = planned.artifacts
    regions = sorted(
        {
            action.location.region
            for action in planned.plan.actions
            if action.kind.publishes(action.verb)
        }
    )
    if artifacts is None or not regions:
        return None
    try:
        for region in regions:
            check_bucket(reconciler.sessions.home(region), artifacts.bucket)
    except UserError as error:
        return " ".join(str(error).split())
    return None


def render_plan(plan: Plan, commit: str, owner: str, source: str = "") -> str:
    """The reviewer's diff: one block per resource, the fields that change, a summary."""
    whose = f"owner {owner}, source {source}" if source else f"owner {owner}"
    lines = [f"Plan for {commit[:12]} ({whose}):", ""]
    groups: dict[tuple[Kind, str, Location], list[Action]] = {}
    for action in plan.actions:
        groups.setdefault(action.group, []).append(action)
    for (kind, name, location), actions in groups.items():
        symbol = resource_symbol(action.verb for action in actions)
        lines.append(f"{symbol} {kind} {name} ({location})")
        for action in actions:
            lines.extend(_action_lines(action))
    for blocked in plan.blocked:
        lines.append(f"! blocked: {blocked.action.describe()}: {blocked.reason}")
    moving = {(a.name, a.location.region) for a in plan.actions if a.verb is Verb.ROLLOUT}
    for rollout in plan.rollouts:  # rollouts that wait (targets, a bake): where they are
        if rollout.state != "idle" and (rollout.package, rollout.region) not in moving:
            lines.append(f"  rollout {rollout.package} ({rollout.region}): {rollout.step}")
    if not plan.actions and not plan.blocked:
        lines.append("No changes: live SSM matches the repository.")
    lines += ["", plan.summary()]
    return "\n".join(lines)


def _action_lines(action: Action) -> list[str]:
    if isinstance(action.step, DeleteAssociation):
        return [f"    - delete {action.step.association_id}"]
    if isinstance(action.step, DeletePackage):
        return ["    - delete with all its versions"]
    if action.verb is Verb.ROLLOUT:  # "ring 1/3: pin datadog-agent-canary to 6.10.0 ..."
        return [f"    ~ rollout: {action.step.subject}"]
    out = []
    for change in action.changes:
        if change.old and change.new:
            out.append(f"    ~ {change.field}: {change.old} -> {change.new}")
        elif change.new:
            out.append(f"    + {change.field}: {change.new}")
        else:
            out.append(f"    - {change.field}: {change.old}")
    return out or [f"    {action.symbol} {action.verb}"]


def _action_json(action: Action) -> dict[str, Any]:
    return {
        "kind": action.kind,
        "name": action.name,
        "account": action.location.account,
        "region": action.location.region,
        "action": action.verb,
        "symbol": action.symbol,
        "effect": action.verb.effect,
        "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in action.changes],
        **({"step": action.step.subject} if action.verb is Verb.ROLLOUT else {}),
    }


def plan_json(planned: PlannedPass, commit: str, owner: str) -> dict[str, Any]:
    plan = planned.plan
    counts: dict[str, int] = {str(effect): count for effect, count in plan.counts().items()}
    return {
        "revision": commit,
        "owner": owner,
        "source": planned.desired.source,
        "actions": [_action_json(action) for action in plan.actions],
        "blocked": [_action_json(b.action) | {"reason": b.reason} for b in plan.blocked],
        "errors": list(planned.errors),
        "resources": [r.to_json() for r in plan.resources],
        "rollouts": [r.to_json() for r in plan.rollouts],
        "summary": counts | {"blocked": len(plan.blocked), "errors": len(planned.errors)},
        "api_calls": _calls_json(planned.api_calls),
        "aws_calls": sum(planned.api_calls.values()),
    }


def _calls_json(calls: Any) -> dict[str, int]:
    return {f"{operation}:{result}": count for (operation, result), count in sorted(calls.items())}


def apply_command(args: argparse.Namespace) -> int:
    try:
        repository, commit = _load(args)
    except UserError as error:
        _print_errors(str(error).splitlines() or [type(error).__name__], sys.stderr)
        return 1
    reconciler = _reconciler(args, dry_run=False)
    printing = threading.Lock()
    progress = Progress(sys.stderr, _progress_every(args))

    def show(record: ActionRecord) -> None:
        # Called from the apply workers: one whole line at a time, never interleaved.
        if not args.json:
            with printing:
                print(format_record(record), flush=True)
        progress.action(record)

    result = reconciler.run_pass(
        repository, commit, full_resync=True, on_action=show, on_planned=progress.planned
    )
    if args.json:
        print(json.dumps(result_json(result) | {"locations": location_counts(result)}, indent=2))
    else:
        for line in location_lines(result):
            print(line)
        print(apply_summary(result))
        _print_errors(result.errors, sys.stderr)
    # Not converged either while a rollout is failed (its failure is no pass failure).
    return 1 if result.outcome is PassOutcome.FAILURE or result.failures else 0


def _progress_every(args: argparse.Namespace) -> float:
    """--progress-every, or a second on a terminal and 10 s elsewhere (progress.py)."""
    every: float | None = getattr(args, "progress_every", None)
    if every is not None:
        return every
    return TTY_SECONDS if sys.stderr.isatty() else LOG_SECONDS


def format_record(record: ActionRecord) -> str:
    symbol = Verb(record.action).symbol
    text = f"{symbol} {record.kind} {record.name} {record.action}"
    if record.result is ActionResult.SUCCESS:
        detail = f" {record.message}" if record.message else ""
        return (
            f"{text}{detail} ({record.account}/{record.region}) done in "
            f"{record.duration_seconds:.1f}s"
        )
    return f"{text} ({record.account}/{record.region}) {record.result}: {record.message}"


def apply_summary(result: PassResult) -> str:
    counts = {"add": 0, "change": 0, "destroy": 0, "failed": 0}
    for record in result.actions:
        if record.result is ActionResult.FAILURE:
            counts["failed"] += 1
        elif record.result is ActionResult.SUCCESS:
            counts[Verb(record.action).effect] += 1
    calls = sum(result.api_calls.values())
    if result.outcome is PassOutcome.FAILURE:
        verdict = "not converged"
    elif result.blocked:
        # Exit 0: everything the safety rules allow is done; the rest waits for a person.
        verdict = f"converged except {len(result.blocked)} blocked deletion(s)"
    else:
        verdict = "converged"
    return (
        f"Apply {verdict}: {counts['add']} added, {counts['change']} changed, "
        f"{counts['destroy']} destroyed, {len(result.blocked)} blocked, "
        f"{counts['failed']} failed ({calls} AWS calls, {result.duration_seconds:.1f}s)"
    )


def result_json(result: PassResult) -> dict[str, Any]:
    return {
        "revision": result.revision,
        "outcome": str(result.outcome),
        "duration_seconds": round(result.duration_seconds, 3),
        "actions": [r.to_json() for r in result.actions],
        "blocked": list(result.blocked),
        "errors": list(result.errors),
        "resources": [r.to_json() for r in result.resources],
        "api_calls": _calls_json(result.api_calls),
    }

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
from controller.reconcile.engine import PlannedPass, Reconciler
from controller.reconcile.kinds import Action, DeleteAssociation, DeletePackage
from controller.reconcile.plan import Plan
from controller.reconcile.result import (
    ActionRecord,
    ActionResult,
    Failure,
    PassOutcome,
    PassResult,
    Reason,
)
from controller.repository import Repository


def _cache_dir() -> Path:
    return Path(os.environ.get("SSM_GITOPS_CACHE_DIR") or Path.home() / ".cache" / "ssm-gitops")


def _load(args: argparse.Namespace) -> tuple[Repository, str]:
    """Fetch the followed ref, materialise it, load the repository: (Repository, commit).

    Also sets `args.source_id` (the `ssm-gitops:source` tag value) from --repo and --path.
    """
    from controller.repository import load_repository
    from controller.source import GitSource, source_root
    from controller.source.signatures import TrustedKeys, verify_revision

    keys = TrustedKeys.from_flags(
        args.verify_signatures, args.allowed_signers_file, args.trusted_gpg_keys_file
    )
    named = os.environ.get("SSM_GITOPS_CACHE_DIR")
    source = GitSource(
        args.repo,
        args.ref,
        _cache_dir() / "git",
        cache_named=f"SSM_GITOPS_CACHE_DIR={named}" if named else f"the cache {_cache_dir()}",
    )
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
    return Reconciler(
        args.name,
        source=getattr(args, "source_id", ""),
        dry_run=dry_run,
        work_dir=_cache_dir() / "work",
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
    planned = reconciler.plan_only(repository, commit, full_resync=True)
    missing = _missing_bucket(reconciler, planned)
    if missing:  # apply would stop on it: say so now, not after the review
        missing_bucket = Failure(Reason.ARTIFACTS, missing)
        planned = dataclasses.replace(planned, failures=(*planned.failures, missing_bucket))
    if args.json:
        print(json.dumps(plan_json(planned, commit, args.name), indent=2))
    else:
        print(render_plan(planned.plan, commit, args.name, planned.desired.source))
        _print_errors(planned.errors, sys.stderr)
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

    def show(record: ActionRecord) -> None:
        # Called from the apply workers: one whole line at a time, never interleaved.
        if not args.json:
            with printing:
                print(format_record(record), flush=True)

    result = reconciler.run_pass(repository, commit, full_resync=True, on_action=show)
    if args.json:
        print(json.dumps(result_json(result), indent=2))
    else:
        print(apply_summary(result))
        _print_errors(result.errors, sys.stderr)
    return 1 if result.outcome is PassOutcome.FAILURE else 0


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

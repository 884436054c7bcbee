"""The status page at `/`: the `Status` snapshot as server-rendered HTML, readable at a glance.

Sits at the HTTP edge beside `/status` (the same snapshot as JSON). No JavaScript and no
external assets: the page must work in a locked-down cluster and through `kubectl
port-forward`; it refreshes itself every few seconds. Every value is HTML-escaped: commit
messages and error text come from the repository, which is user input.
"""

from __future__ import annotations

import time
from html import escape

from controller.model.state import Location
from controller.reconcile.result import Failure, PassOutcome, PassResult, ResourceStatus, Rollout
from controller.runtime import page_locations
from controller.runtime.status import Status, state_counts

REFRESH_SECONDS = 5

_STYLE = """
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       background: #f4f5f7; color: #1d2330; }
header { background: #1d2330; color: #fff; padding: 14px 28px; display: flex;
         align-items: center; gap: 18px; flex-wrap: wrap; }
header h1 { font-size: 19px; margin: 0; font-weight: 600; }
header .repo { color: #b8c0cf; font-family: ui-monospace, Menlo, Consolas, monospace;
               font-size: 13px; }
header nav { margin-left: auto; font-size: 13px; }
header nav a { color: #9cc3ff; margin-left: 14px; }
main { padding: 20px 28px; max-width: 1200px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; }
.card { background: #fff; border-radius: 8px; padding: 14px 18px;
        box-shadow: 0 1px 2px rgba(0,0,0,.08); margin-bottom: 16px; }
.card h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: #6b7385;
           margin: 0 0 8px; font-weight: 600; }
.big { font-size: 18px; font-weight: 600; }
.muted { color: #6b7385; font-size: 13px; }
code, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 12px;
         font-weight: 600; white-space: nowrap; }
.ok { background: #dcf5e3; color: #146c2e; }
.warn { background: #fff1cc; color: #7a5200; }
.bad { background: #fde2e1; color: #a4161a; }
.info { background: #e2ecff; color: #1c4fa8; }
.error-box { background: #fff5f5; border: 1px solid #f3b5b3; border-left: 5px solid #d62d28; }
.error-box h2 { color: #a4161a; }
.error-box li { margin: 4px 0; }
.error-box .where { font-weight: 700; color: #a4161a; }
.blocked-box { border-left: 5px solid #e0a100; }
table { width: 100%; border-collapse: collapse; }
th { text-align: left; font-size: 12px; color: #6b7385; font-weight: 600;
     border-bottom: 1px solid #e3e6ec; padding: 6px 8px; }
td { border-bottom: 1px solid #eef0f4; padding: 7px 8px; vertical-align: top; }
tr:last-child td { border-bottom: none; }
ul { margin: 0; padding-left: 20px; }
.empty { color: #8a91a1; font-style: italic; }
"""


def _ago(then: float, now: float) -> str:
    seconds = max(0, int(now - then))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s ago"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m ago"
    return f"{seconds // 86400}d ago"


def _when(then: float, now: float) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(then))
    return f'<span title="{stamp}">{escape(_ago(then, now))}</span>'


_STATE_CLASS = {"in_sync": "ok", "drifted": "warn", "failed": "bad"}
_OUTCOME_CLASS = {
    PassOutcome.SUCCESS: "ok",
    PassOutcome.NO_CHANGE: "ok",
    PassOutcome.FAILURE: "bad",
}
_ROLLOUT_CLASS = {"Success": "ok", "Failed": "bad", "Pending": "info", "InProgress": "info"}
_OUTCOME_TEXT = {
    PassOutcome.SUCCESS: "success",
    PassOutcome.NO_CHANGE: "no change",
    PassOutcome.FAILURE: "failure",
}


def _badge(text: str, css: str) -> str:
    return f'<span class="badge {css}">{escape(text)}</span>'


def _overall(status: Status) -> str:
    if status.failures:
        return _badge("needs attention", "bad")
    if not status.ready:
        return _badge("starting", "info")
    counts = state_counts(status)
    if counts["failed"]:
        return _badge("failed", "bad")
    if counts["drifted"]:
        return _badge("drifted", "warn")
    return _badge("in sync", "ok")


def _title(owner: str) -> str:
    return "ssm-gitops" if owner == "ssm-gitops" else f"ssm-gitops · {owner}"


def _revision_card(status: Status, now: float) -> str:
    applied = status.applied
    if applied is None:
        body = '<div class="empty">no revision loaded yet</div>'
    else:
        body = (
            f'<div class="big"><code>{escape(applied.short)}</code> '
            f"{escape(applied.subject)}</div>"
            f'<div class="muted">{escape(applied.author)}'
            + (f" · committed {_when(applied.time, now)}" if applied.time else "")
            + "</div>"
        )
    fetched = status.fetched
    if fetched is not None and (applied is None or fetched.commit != applied.commit):
        body += (
            f'<div style="margin-top:8px">{_badge("not applied", "bad")} newest commit '
            f"<code>{escape(fetched.short)}</code> {escape(fetched.subject)}"
            + (" — still applying the last good revision" if applied is not None else "")
            + "</div>"
        )
    mode = {
        # The mode, not activity: green would read as "busy" or "healthy".
        "apply": _badge("mode: apply", "info"),
        "dry-run": _badge("dry run: detect only", "warn"),
        "suspended": _badge("suspended: detect only", "warn"),
    }[status.mode]
    return (
        f'<section class="card" id="revision"><h2>Revision</h2>{body}'
        f'<div style="margin-top:8px">{mode}</div></section>'
    )


def _pass_card(status: Status, now: float) -> str:
    last = status.last_pass
    running = f" {_badge('pass running', 'info')}" if status.pass_running else ""
    if last is None:
        body = '<div class="empty">no pass completed yet</div>'
    else:
        changed = sum(1 for a in last.actions if a.result.value == "success")
        failed = sum(1 for a in last.actions if a.result.value == "failure")
        body = (
            f'<div class="big">{_badge(_OUTCOME_TEXT[last.outcome], _OUTCOME_CLASS[last.outcome])}'
            f" finished {_when(last.finished_at, now)}</div>"
            f'<div class="muted">took {last.duration_seconds:.1f}s · revision '
            f"<code>{escape(last.revision[:12])}</code> · {changed} applied"
            + (f", {failed} failed" if failed else "")
            + (f", {len(last.blocked)} blocked" if last.blocked else "")
            + f" · {status.passes} passes since start</div>"
        )
    return f'<section class="card" id="last-pass"><h2>Last pass{running}</h2>{body}</section>'


def _where(failure: Failure) -> str:
    """The place of a failure as the page shows it: `file:line` (a reader opens the file
    at that line), or the resource, or the location."""
    if failure.path:
        return f"{failure.path}:{failure.line}" if failure.line else failure.path
    return failure.where


def _errors_box(status: Status) -> str:
    failures = status.failures
    if not failures:
        return ""
    items = []
    for failure in failures:
        where = _where(failure)
        place = f'<span class="where mono">{escape(where)}</span> ' if where else ""
        items.append(
            f"<li>{_badge(failure.reason.value, 'bad')} {place}{escape(failure.message)}</li>"
        )
    return (
        '<section class="card error-box" id="errors"><h2>Errors</h2>'
        f"<ul>{''.join(items)}</ul></section>"
    )


def _blocked_box(last: PassResult | None) -> str:
    if last is None or not last.blocked:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in last.blocked)
    return (
        '<section class="card blocked-box" id="blocked"><h2>Blocked prunes</h2>'
        f'<ul>{items}</ul><div class="muted" style="margin-top:6px">Held back by the '
        "safety rules (prune.maxDeletes, empty desired set). Raise maxDeletes or delete "
        "by hand.</div></section>"
    )


def _overlaps_box(last: PassResult | None) -> str:
    if last is None or not last.overlaps:
        return ""
    items = "".join(f"<li>{escape(str(o))}</li>" for o in last.overlaps)
    return (
        '<section class="card blocked-box" id="overlaps"><h2>Associations that overlap</h2>'
        f'<ul>{items}</ul><div class="muted" style="margin-top:6px">Two associations of one '
        "package install different versions on these instances. Make their targets "
        "disjoint (e.g. ring tags that exclude each other).</div></section>"
    )


def _resource_rows(resources: list[ResourceStatus], rollouts: dict[str, Rollout]) -> str:
    rows = []
    for r in resources:
        rollout = rollouts.get(r.name) if r.kind == "association" else None
        rollout_cell = ""
        if r.kind == "association":
            if rollout is None:
                rollout_cell = '<td class="muted">not reported yet</td>'
            else:
                counts = ", ".join(f"{escape(k)} {v}" for k, v in sorted(rollout.counts.items()))
                counts = counts or "no target has run yet"
                rollout_cell = (
                    f"<td>{_badge(rollout.status, _ROLLOUT_CLASS.get(rollout.status, 'info'))}"
                    f' <span class="muted">{counts}</span></td>'
                )
        rows.append(
            f"<tr><td><strong>{escape(r.name)}</strong></td>"
            f'<td class="mono">{escape(r.account)}</td><td class="mono">{escape(r.region)}</td>'
            f"<td>{_badge(r.state.value.replace('_', ' '), _STATE_CLASS[r.state.value])}</td>"
            f"{rollout_cell}<td>{escape(r.message)}</td></tr>"
        )
    return "".join(rows)


def _resources_card(kind: str, title: str, last: PassResult | None) -> str:
    resources = [] if last is None else [r for r in last.resources if r.kind == kind]
    rollouts = {} if last is None else {r.association: r for r in last.rollouts}
    rollout_head = "<th>Rollout</th>" if kind == "association" else ""
    if not resources:
        table = f'<div class="empty">no {escape(title.lower())}</div>'
    else:
        table = (
            "<table><thead><tr><th>Name</th><th>Account</th><th>Region</th><th>State</th>"
            f"{rollout_head}<th>Detail</th></tr></thead>"
            f"<tbody>{_resource_rows(resources, rollouts)}</tbody></table>"
        )
    counts: dict[str, int] = {}
    for r in resources:
        counts[r.state.value] = counts.get(r.state.value, 0) + 1
    tally = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in sorted(counts.items()))
    heading = f"{escape(title)} · {len(resources)}" + (f" ({tally})" if tally else "")
    return f'<section class="card" id="{kind}s"><h2>{heading}</h2>{table}</section>'


_PHASE_CLASS = {
    "progressing": "info",
    "baking": "info",
    "paused": "warn",
    "succeeded": "ok",
    "failed": "bad",
    "rolled_back": "bad",
    "idle": "info",
}


def _rollouts_card(last: PassResult | None) -> str:
    """Progressive rollouts (issue 13): per package, versions, default, rings, bake, failure."""
    if last is None or not last.progressive:
        return ""
    blocks = []
    for r in last.progressive:
        rings = []
        for index, ring in enumerate(r.rings):
            if r.state == "idle":
                where = "idle"
            elif r.state == "succeeded" or index < r.ring:
                where = "rolled back" if r.state == "rolled_back" else "passed"
            elif index == r.ring:
                where = (
                    f"{r.state.replace('_', ' ')}: {r.succeeded} succeeded, {r.failed} "
                    f"failed, {r.pending} pending"
                )
            else:
                where = "waiting"
            rings.append(f"<li>ring {index + 1} ({escape(', '.join(ring))}): {escape(where)}</li>")
        left = r.bake_left(time.time())
        bake = f"<div>bake: {round(left)}s left</div>" if left else ""
        failure = f'<div class="bad-text">{escape(r.failure)}</div>' if r.failure else ""
        failed = "".join(
            f"<li>{escape(a)} {escape(i)}: {escape(e)}</li>" for a, i, e in r.failed_targets
        )
        target = f" → {escape(r.target)}" if r.target else ""
        blocks.append(
            f'<div class="rollout"><h3>{escape(r.package)} '
            f'<span class="mono">{escape(r.region)}</span> '
            f"{_badge(r.state.replace('_', ' '), _PHASE_CLASS.get(r.state, 'info'))}</h3>"
            f"<div>live default {escape(r.live_default)}{target}; published: "
            f"{escape(', '.join(r.versions))}</div>"
            f'<div class="muted">{escape(r.step)}</div>{bake}{failure}'
            f"<ul>{''.join(rings)}</ul>"
            + (f"<div>failed instances:</div><ul>{failed}</ul>" if failed else "")
            + "</div>"
        )
    return f'<section class="card" id="rollouts"><h2>Rollouts</h2>{"".join(blocks)}</section>'


def _actions_card(last: PassResult | None) -> str:
    if last is None or not last.actions:
        return ""
    css = {"success": "ok", "failure": "bad", "blocked": "warn", "skipped": "info"}
    rows = "".join(
        f"<tr><td>{escape(a.action)}</td><td>{escape(a.kind)}</td>"
        f"<td><strong>{escape(a.name)}</strong></td>"
        f'<td class="mono">{escape(a.account)} {escape(a.region)}</td>'
        f"<td>{_badge(a.result.value, css.get(a.result.value, 'info'))}</td>"
        f"<td>{a.duration_seconds:.2f}s</td><td>{escape(a.message)}</td></tr>"
        for a in last.actions
    )
    return (
        '<section class="card" id="actions"><h2>Actions of the last pass</h2><table><thead><tr>'
        "<th>Action</th><th>Kind</th><th>Name</th><th>Where</th><th>Result</th><th>Took</th>"
        f"<th>Detail</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _body(status: Status, last: PassResult | None, location: Location | None) -> str:
    """Below the cards: the resources of one location (the single-location page, or a
    location's own view), or at organisation scale the table of locations
    (`page_locations`)."""
    if location is not None and last is not None:
        here = page_locations.only(last, location)
        return (
            f'<section class="card" id="location"><h2>Location</h2><div class="big mono">'
            f"{escape(location.account)}/{escape(location.region)}</div>"
            '<div class="muted"><a href="/">all locations</a></div></section>'
            f'{_resources_card("package", "Packages", here)}'
            f'{_resources_card("association", "Associations", here)}'
            f"{_actions_card(here)}"
        )
    if page_locations.spans_locations(last) and last is not None:
        return page_locations.locations_card(last, status.failures)
    return (
        f'{_resources_card("package", "Packages", last)}'
        f'{_resources_card("association", "Associations", last)}'
        f"{_actions_card(last)}"
    )


def render(status: Status, now: float | None = None, query: str = "") -> str:
    """The whole page; `query` `location=<account>/<region>` is that location's own view."""
    now = time.time() if now is None else now
    ref = f" @ {status.ref}" if status.ref else ""
    path = f" / {status.path}" if status.path not in ("", ".") else ""
    last = status.last_pass
    location = page_locations.parse(query)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(_title(status.owner))}</title><style>{_STYLE}</style></head>
<body>
<header><h1>ssm-gitops</h1>{_overall(status)}
<span class="repo">{escape(status.repo + ref + path)} · owner {escape(status.owner)}</span>
<nav><a href="/status">/status</a><a href="/metrics">/metrics</a></nav></header>
<main>
{_errors_box(status)}
<div class="cards">{_revision_card(status, now)}{_pass_card(status, now)}</div>
{_blocked_box(last)}
{_overlaps_box(last)}
{_rollouts_card(last)}
{_body(status, last, location)}
</main></body></html>
"""

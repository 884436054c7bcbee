"""Structured logs: one JSON object per line on stderr, one event per action and per pass.

Sits beside the metrics at the end of the pipeline. Every record carries `time`, `level`,
`event` and a message; the loop adds the fields of what happened (an action's kind, name,
account, region, revision, result and duration), so `jq 'select(.event=="action")'` reads
the controller's history.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from controller.reconcile.result import ActionRecord

LOGGER = "ssm_gitops"

# Attributes every LogRecord has; anything else was passed through `extra=` and is a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with its `extra=` fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": getattr(record, "event", record.name),
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in ("event", "fields"):
                document[key] = value
        # Fields passed through `emit` may use names LogRecord reserves (`name`).
        document.update(getattr(record, "fields", {}))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure(level: int = logging.INFO) -> None:
    """Send every log record of this process to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every job run at INFO: that is noise next to our own events.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found credentials in ..."


def logger() -> logging.Logger:
    return logging.getLogger(LOGGER)


def emit(level: int, event: str, message: str, **fields: Any) -> None:
    """Log one event with its fields at the top level of the JSON line."""
    logger().log(level, message, extra={"event": event, "fields": fields})


def log_action(action: ActionRecord, revision: str) -> None:
    """The one event per action (contract: structured JSON logs)."""
    emit(
        logging.WARNING if action.result.value == "failure" else logging.INFO,
        "action",
        f"{action.action} {action.kind} {action.name}: {action.result.value}"
        + (f" ({action.message})" if action.message else ""),
        kind=action.kind,
        action=action.action,
        name=action.name,
        account=action.account,
        region=action.region,
        revision=revision,
        result=action.result.value,
        duration_seconds=round(action.duration_seconds, 3),
        detail=action.message,
    )

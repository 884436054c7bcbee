"""Errors a user can cause, shown as one line by the command line (never a traceback).

Every stage raises `UserError` (or a subclass) for a mistake the user can fix; `cli.main`
prints `ssm-gitops: <message>` and exits 1. Each message names the file and line where
there is one, and says what to do.
"""

# The one prefix of every error line the command line prints (issue 10: some said `error:`).
PREFIX = "ssm-gitops: "


class UserError(Exception):
    """A mistake the user can fix; its message is one line that says how."""

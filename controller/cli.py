"""The `ssm-gitops` command line: parses flags, calls one function per command, exits.

Each command's work lives in the stage that owns it (see docs/architecture.md); this module
only describes the flags, so that `--help` teaches, and turns `UserError` into one line.
Flags of `run` also read `SSM_GITOPS_<FLAG>` environment variables (contract: Command line).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import unicodedata
from collections.abc import Sequence
from typing import NoReturn

from controller import __version__
from controller.errors import PREFIX, UserError

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> float:
    """'90s', '1m', '1h30m' or a plain number of seconds -> seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text)
    if not text or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use a number of seconds or forms like 30s, 1m, 1h30m"
        )
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


# The owner name is the value of the `ssm-gitops:owner` tag on everything the controller
# manages: 1 to 256 letters, digits, spaces and `_ . : / = + - @` (SSM's Tag Value pattern
# ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$, 0-256 characters; an empty owner would name nobody:
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html).
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_TAG_VALUE_MAX = 256


def owner_name(text: str) -> str:
    """`--name`: checked when the flags are read, so a name AWS would refuse as a tag value
    stops plan, apply and run with one line instead of failing on the first tagged call."""
    if not text:
        raise argparse.ArgumentTypeError(
            "the owner name is empty: give a name such as team-a (it becomes the "
            "ssm-gitops:owner tag value)"
        )
    if len(text) > _TAG_VALUE_MAX:
        raise argparse.ArgumentTypeError(
            f"the owner name is {len(text)} characters long, over the {_TAG_VALUE_MAX} of a "
            "tag value: shorten it"
        )
    for char in text:
        if unicodedata.category(char)[0] not in "LZN" and char not in _TAG_PUNCTUATION:
            raise argparse.ArgumentTypeError(
                f"the owner name {text!r} holds {char!r}, which a tag value may not: use "
                "letters, digits, spaces and _ . : / = + - @"
            )
    return text


def _env(flag: str, default: str | None = None) -> str | None:
    """The default of a `run` flag: the SSM_GITOPS_<FLAG> environment variable, if set."""
    return os.environ.get("SSM_GITOPS_" + flag.upper().replace("-", "_"), default)


# The spellings a boolean SSM_GITOPS_<FLAG> may take; anything else is refused (a typo such as
# `SSM_GITOPS_VERIFY_SIGNATURES=ture` must never quietly turn the check off).
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
_BOOLEAN_ENV_FLAGS = ("verify-signatures", "dry-run")  # the store_true flags of `run`


def _env_bool(flag: str) -> bool:
    """The default of a boolean `run` flag; a value that is neither true nor false reads as
    False here and is refused by `check_boolean_env` before `run` starts."""
    return (_env(flag, "") or "").strip().lower() in _TRUE


def check_boolean_env() -> None:
    """One line naming the variable when a boolean SSM_GITOPS_<FLAG> is not clearly true or
    false (checked by `run` only: other commands read no environment flags)."""
    for flag in _BOOLEAN_ENV_FLAGS:
        name = "SSM_GITOPS_" + flag.upper().replace("-", "_")
        value = os.environ.get(name)
        if value is not None and value.strip().lower() not in _TRUE | _FALSE:
            raise UserError(
                f"{name}={value!r} is neither true nor false: set it to true or false "
                "(or 1/0, yes/no, on/off), or unset it"
            )


def _add_source_flags(parser: argparse.ArgumentParser, *, from_env: bool = False) -> None:
    """--repo/--ref/--path/--name and signature checking, shared by plan, apply and run."""

    def env(flag: str, default: str | None) -> str | None:
        return _env(flag, default) if from_env else default

    repo_default = env("repo", None)
    parser.add_argument(
        "--repo",
        required=repo_default is None,
        default=repo_default,
        help="git repository: a local path, or an https:// or ssh URL",
    )
    parser.add_argument(
        "--ref",
        default=env("ref", None),
        help="branch, tag or commit to follow (default: the remote's HEAD, or the checked-out "
        "branch of a local repository)",
    )
    parser.add_argument(
        "--path",
        default=env("path", "."),
        help="sub-directory of the repository holding the YAML (default: the whole repository)",
    )
    parser.add_argument(
        "--name",
        type=owner_name,
        default=env("name", "ssm-gitops"),
        help="owner name (not a resource's metadata.name): resources are tagged "
        "ssm-gitops:owner=NAME and ssm-gitops:source=<repository//path>, and only those "
        "carrying both are ever changed or deleted (default: ssm-gitops)",
    )
    parser.add_argument(
        "--verify-signatures",
        action="store_true",
        default=_env_bool("verify-signatures") if from_env else False,
        help="refuse the followed ref's head commit unless a trusted key signed it "
        "(SSH or GPG; see --allowed-signers-file, --trusted-gpg-keys-file)",
    )
    parser.add_argument(
        "--allowed-signers-file",
        default=env("allowed-signers-file", None),
        metavar="FILE",
        help="trusted SSH signing keys, in OpenSSH allowed_signers format (ssh-keygen(1))",
    )
    parser.add_argument(
        "--trusted-gpg-keys-file",
        default=env("trusted-gpg-keys-file", None),
        metavar="FILE",
        help="trusted GPG signing keys: an exported public keyring (gpg --armor --export)",
    )


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, with its usage errors as one line under the command line's one prefix
    (argparse prints the usage, then `PROG: error: MESSAGE`)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("ssm-gitops").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"{PREFIX}{where}{message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="ssm-gitops",
        description="GitOps for AWS Systems Manager Distributor: packages (versions, default "
        "version, sharing) and State Manager associations, reconciled from a git repository.",
        epilog="AWS settings come from the usual places (AWS_REGION, AWS_PROFILE, "
        "AWS_ENDPOINT_URL, ...). Try it without an AWS account: `ssm-gitops demo`.",
    )
    parser.add_argument("--version", action="version", version=f"ssm-gitops {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser(
        "validate",
        help="check every YAML file and every source it names",
        description="Load and check every *.yaml/*.yml under PATH and every source folder and "
        "installer they name. Prints one line per problem as path:line:col: message. "
        "Exit 0 valid, 1 invalid.",
    )
    p.add_argument("path", metavar="PATH", help="repository directory")
    p.set_defaults(func=_validate)

    p = commands.add_parser(
        "build",
        help="build every package version's zips and manifest",
        description="Build every package version's zip files and manifest.json into DIR and "
        "print name, file and sha256 of each. The same sources always give the same bytes.",
    )
    p.add_argument("path", metavar="PATH", help="repository directory")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.set_defaults(func=_build)

    p = commands.add_parser(
        "schema",
        help="print the JSON Schema of the repository format",
        description="Print the JSON Schema of the repository format (for editors).",
    )
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(func=_schema)

    for name, helptext, description in (
        (
            "plan",
            "show what apply would change; change nothing",
            "Compare the repository with live SSM and print the difference; reads the "
            "committed revision (uncommitted edits are not part of it). "
            "Exit 0 no changes, 2 changes, 1 error.",
        ),
        (
            "apply",
            "one reconcile pass, then exit",
            "Reconcile live SSM with the repository once, printing each action as it happens. "
            "Package zips go to the artifacts bucket named in the Settings document, which "
            "must exist. Exit 0 converged, 1 error.",
        ),
    ):
        p = commands.add_parser(name, help=helptext, description=description)
        _add_source_flags(p)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument(
            "--cache-dir",
            default=None,
            help="the cache folder, shared with `run` (default SSM_GITOPS_CACHE_DIR, else "
            "~/.cache/ssm-gitops): what earlier passes read from AWS saves calls",
        )
        if name == "apply":
            p.add_argument(
                "--progress-every",
                type=float,
                metavar="SECONDS",
                help="a progress line on stderr at most this often (default 1 on a "
                "terminal, 10 otherwise; 0 = none)",
            )
        p.set_defaults(func=_plan if name == "plan" else _apply)

    p = commands.add_parser(
        "run",
        help="the controller: watch git, reconcile, serve HTTP",
        description="Run the controller until SIGTERM: poll (or receive webhooks for) the git "
        "repository, reconcile on every new revision and on a periodic drift resync, and serve "
        "/metrics, /healthz, /readyz, /status and POST /hooks/git. Every flag also reads the "
        "environment variable SSM_GITOPS_<FLAG>, e.g. SSM_GITOPS_INTERVAL=30s.",
    )
    _add_source_flags(p, from_env=True)
    p.add_argument(
        "--listen",
        default=_env("listen", "0.0.0.0:8080"),
        help="HOST:PORT to serve HTTP on (default 0.0.0.0:8080: every interface; the "
        "endpoints are unauthenticated but for the signed webhook)",
    )
    p.add_argument(
        "--interval",
        type=parse_duration,
        default=_env("interval", "1m"),
        help="how often to poll git (default 1m)",
    )
    p.add_argument(
        "--resync-interval",
        type=parse_duration,
        default=_env("resync-interval", "10m"),
        help="full drift check even without a new commit (default 10m)",
    )
    p.add_argument(
        "--events-queue",
        default=_env("events-queue"),
        metavar="URL",
        help="SQS queue URL fed by the EventBridge rule of deploy/events/: drift made by hand "
        "is healed within seconds (docs/drift-events.md)",
    )
    p.add_argument(
        "--webhook-secret-file",
        default=_env("webhook-secret-file"),
        help="file holding the shared secret of POST /hooks/git",
    )
    p.add_argument(
        "--git-token-file",
        default=_env("git-token-file"),
        help="file holding an https token for the git repository (or SSM_GITOPS_GIT_TOKEN)",
    )
    p.add_argument(
        "--ssh-key-file", default=_env("ssh-key-file"), help="private key for ssh git URLs"
    )
    p.add_argument(
        "--known-hosts-file",
        default=_env("known-hosts-file"),
        help="known_hosts for ssh git URLs (host keys are always checked)",
    )
    p.add_argument(
        "--cache-dir",
        default=_env("cache-dir", os.path.join(os.path.expanduser("~"), ".cache", "ssm-gitops")),
        help="where the git clone and build artifacts are kept (default ~/.cache/ssm-gitops)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        default=_env_bool("dry-run"),
        help="detect only: plan and report drift, change nothing",
    )
    p.set_defaults(func=_run)

    p = commands.add_parser(
        "local",
        help="the embedded local AWS endpoint (SSM, S3, STS, EC2)",
        description="Serve a local AWS endpoint: SSM (documents, packages, sharing, "
        "associations, commands) implemented here, S3/STS/EC2/IAM by moto. Point "
        "AWS_ENDPOINT_URL at it. Runs until SIGTERM.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4566, help="port (default 4566)")
    p.add_argument(
        "--fleet",
        type=int,
        default=0,
        metavar="N",
        help="simulated managed instances that really run packages (default 0; see docs/fleet.md)",
    )
    p.add_argument(
        "--fleet-file", metavar="F", help="YAML list of instances (platform, version, arch, tags)"
    )
    p.add_argument(
        "--create-delay",
        type=float,
        default=0.05,
        metavar="SECONDS",
        help="how long a new document version stays Creating before Active (default 0.05)",
    )
    p.add_argument(
        "--latency",
        action="append",
        metavar="[OP=]SECONDS",
        help="added latency, for every call or one operation (ssm:CreateDocument=0.2); repeatable",
    )
    p.add_argument(
        "--throttle-rate",
        type=float,
        default=0.0,
        metavar="PER_SECOND",
        help="token-bucket rate of SSM calls; beyond it ThrottlingException (default off)",
    )
    p.add_argument(
        "--throttle-burst", type=float, default=0.0, metavar="N", help="token-bucket size"
    )
    p.add_argument(
        "--rate",
        action="append",
        metavar="OP=PER_SECOND[/BURST]",
        help="throttle per account, region and operation, like AWS (ssm:CreateAssociation=1/2, "
        "ssm:*=10); 'aws' loads AWS-like defaults for every SSM call; repeatable",
    )
    p.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="fraction of SSM calls answered with InternalServerError (default 0)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the injected faults")
    p.set_defaults(func=_local)

    p = commands.add_parser(
        "demo",
        help="local endpoint + controller on a scratch copy of sample-repo/",
        description="Copy sample-repo/ into a fresh git repository under the cache folder "
        "(its path is printed), start the embedded local AWS and a simulated fleet, then the "
        "controller on that copy, and print what it did and where to look.",
    )
    p.add_argument("--once", action="store_true", help="exit after the first converged pass")
    p.add_argument(
        "--port",
        type=int,
        default=4566,
        help="port of the local AWS (default 4566; if it is busy the demo takes a free one "
        "and prints it)",
    )
    p.add_argument(
        "--fleet",
        type=int,
        default=8,
        metavar="N",
        help="simulated instances that install the packages (default 8; 0: none, for "
        "machines where bubblewrap cannot run, such as inside a container)",
    )
    p.add_argument(
        "--status-port",
        type=int,
        default=8080,
        help="port of the status page (default 8080; if busy, a free one, printed)",
    )
    p.set_defaults(func=_demo)
    return parser


# Each command hands its parsed flags to the stage that owns the work (lazy imports keep
# `--help` fast and keep the embedded endpoint out of the controller's import graph).


def _validate(args: argparse.Namespace) -> int:
    from controller.repository.commands import validate_command

    return validate_command(args)


def _build(args: argparse.Namespace) -> int:
    from controller.packaging.commands import build_command

    return build_command(args)


def _schema(args: argparse.Namespace) -> int:
    from controller.repository.commands import schema_command

    return schema_command(args)


def _plan(args: argparse.Namespace) -> int:
    from controller.reconcile.commands import plan_command

    return plan_command(args)


def _apply(args: argparse.Namespace) -> int:
    from controller.reconcile.commands import apply_command

    return apply_command(args)


def _run(args: argparse.Namespace) -> int:
    check_boolean_env()
    from controller.runtime.commands import run_command

    return run_command(args)


def _require_local_extra(command: str) -> None:
    """`local` and `demo` run the embedded AWS emulator (moto), which is an extra: the
    controller's own installation (and its container image) carries no emulator."""
    if importlib.util.find_spec("moto") is None:
        raise UserError(
            f"`ssm-gitops {command}` needs the embedded local AWS, which this installation "
            "leaves out: install it with pip install 'ssm-gitops[local]' (from a checkout: "
            "scripts/setup, or pip install -e '.[local]')"
        )


def _local(args: argparse.Namespace) -> int:
    _require_local_extra("local")
    from controller.local.commands import local_command

    return local_command(args)


def _demo(args: argparse.Namespace) -> int:
    _require_local_extra("demo")
    from controller.demo import demo_command

    return demo_command(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except UserError as error:
        print(f"{PREFIX}{error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`ssm-gitops plan --json | head`): not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush cannot complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it


if __name__ == "__main__":
    raise SystemExit(main())

"""The AWS rules a repository must respect, as small pure checks shared by the models.

Each check returns `None` when the value is fine, else one sentence saying what is wrong
and what to do. Every rule cites the API reference page it comes from; patterns are copied
from botocore's SSM service model (`botocore/data/ssm/2014-11-06/service-2.json`).
"""

from __future__ import annotations

import re

# SSM API reference, CreateDocument (DocumentVersionName / VersionName) and the
# Distributor manifest: the manifest `version` equals the VersionName.
VERSION_NAME = re.compile(r"^[a-zA-Z0-9_\-.]{1,128}$")
# SSM API reference, CreateDocument: Name; AttachmentsSource Name; CreateAssociation Name.
DOCUMENT_NAME = re.compile(r"^[a-zA-Z0-9_\-.]{3,128}$")
ATTACHMENT_NAME = DOCUMENT_NAME
ASSOCIATION_NAME = DOCUMENT_NAME
# CreateDocument: "You can't use the following strings as document name prefixes. These
# are reserved by AWS: aws, amazon, amzn" (case-insensitive).
RESERVED_DOCUMENT_PREFIXES = ("aws", "amazon", "amzn")
# CreateAssociation: MaxConcurrency and MaxErrors (botocore patterns, at most 7 chars).
MAX_CONCURRENCY = re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
MAX_ERRORS = re.compile(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")
# ModifyDocumentPermission: AccountIdsToAdd items match (?i)all|[0-9]{12}.
ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
# A package shared with us is named by its ARN in AWS-ConfigureAWSPackage's `name`
# (Distributor user guide, "Install or update packages": "package-ARN (shared from
# different account)").
PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:ssm:[a-z0-9-]+:([0-9]{12}):document/[a-zA-Z0-9_\-.]{3,128}$"
)
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::([0-9]{12}):role/[\w+=,.@/-]{1,512}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
# Amazon S3 user guide, "General purpose bucket naming rules".
S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Tag (AddTagsToResource): key 1-128, value 0-256 of letters, spaces, digits and _.:/=+-@.
TAG_TEXT = re.compile(r"^[\w\s.:/=+\-@]*$")

# Distributor user guide, "Supported package platforms and architectures": the platform
# codes of the manifest file, and the architectures.
LINUX_PLATFORMS = (
    "amazon",
    "centos",
    "debian",
    "opensuse",
    "opensuseleap",
    "oracle",
    "redhat",
    "suse",
    "ubuntu",
)
PLATFORMS = ("windows", *LINUX_PLATFORMS)
# `_any` matches every architecture (agent: arch is matched exactly, else `_any`).
ARCHITECTURES = ("x86_64", "386", "arm64", "_any")
# Distributor user guide, "Step 2: Create the JSON package manifest": a platform version is
# an exact release ("2023", "7.6"), a wildcard ("7.*"), `_any`, or `*`.
PLATFORM_VERSION = re.compile(r"^(_any|\*|[0-9A-Za-z_-]+(\.[0-9A-Za-z_-]+)*(\.\*)?)$")

# Distributor user guide, "What is a package?": each zip holds install and uninstall
# scripts, .ps1 on Windows, .sh on Linux; the agent also runs optional update and validate
# scripts (agent-semantics.md), each at the zip's root, lowercase.
SCRIPT_ACTIONS = ("install", "uninstall", "update", "validate")
REQUIRED_ACTIONS = ("install", "uninstall")


def script_extension(platform: str) -> str:
    """The script type the agent runs on a platform: `.ps1` on Windows, `.sh` elsewhere."""
    return ".ps1" if platform == "windows" else ".sh"


# SSM quotas (Distributor): at most 25 versions per package, 20 files per version, 1 GB
# per file ("AWS Systems Manager endpoints and quotas"). 1 GB read strictly as 10^9 bytes.
MAX_VERSIONS = 25
MAX_FILES = 20
MAX_FILE_BYTES = 1_000_000_000

# --- schedules -------------------------------------------------------------------------
# "Reference: Cron and rate expressions for Systems Manager", section on associations:
# rate(value unit) with unit minute(s) | hour(s) | day(s), singular for 1 and plural
# otherwise, at least 30 minutes; cron(...) with Minutes Hours Day-of-month Month
# Day-of-week [Year] (an optional leading Seconds field), Day-of-month and Day-of-week not
# both given (one of them is `?`).

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_MINUTES_PER_UNIT = {"minute": 1, "hour": 60, "day": 1440}
_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"


def _field(atom: str, low: int, high: int, names: str = "") -> str:
    number = rf"(?:\d{{1,4}}{'|' + names if names else ''})"
    del low, high  # ranges are checked below, numerically
    return rf"^(?:\*|{number}(?:-{number})?)(?:/\d{{1,4}})?{atom}$"


_CRON_FIELDS: tuple[tuple[str, int, int, str, str], ...] = (
    # (name, low, high, names, extra atoms)
    ("seconds", 0, 59, "", ""),
    ("minutes", 0, 59, "", ""),
    ("hours", 0, 23, "", ""),
    ("day-of-month", 1, 31, "", r"|^\?$|^L$|^\d{1,2}W$|^LW$"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, r"|^\?$|^L$|^\d{1}L$|^(?:\d|" + _DAYS + r")#[1-5]$"),
    ("year", 1970, 2199, "", ""),
)


def _check_cron_field(text: str, name: str, low: int, high: int, names: str, extra: str) -> bool:
    pattern = re.compile(_field("", low, high, names) + extra)
    for part in text.split(","):
        if not pattern.match(part):
            return False
        for number in re.findall(r"(?<![/#\d])\d+", part.split("/")[0]):
            if not low <= int(number) <= high and not (
                name == "day-of-week" and part.endswith("L")
            ):
                return False
    return True


def check_schedule(expression: str) -> str | None:
    """None if SSM accepts `expression` as an association schedule, else what to write."""
    example = "write e.g. rate(30 minutes), rate(1 day) or cron(0 2 ? * SUN *)"
    rate = _RATE.match(expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        singular = unit.rstrip("s")
        if value < 1:
            return f"rate value must be at least 1, got {value}"
        if value == 1 and unit.endswith("s"):
            return f"write rate(1 {singular}), singular for a value of 1"
        if value > 1 and not unit.endswith("s"):
            return f"write rate({value} {singular}s), plural for values above 1"
        if value * _MINUTES_PER_UNIT[singular] < 30:
            return f"{expression} is too frequent: State Manager's minimum rate is 30 minutes"
        return None
    if expression.startswith("rate"):
        return f"invalid rate expression {expression!r}: {example}"
    cron = _CRON.match(expression)
    if not cron:
        return f"invalid schedule {expression!r}: {example}"
    fields = cron.group(1).split()
    if len(fields) == 5:
        named = list(zip(_CRON_FIELDS[1:6], fields, strict=True))
    elif len(fields) == 6:
        named = list(zip(_CRON_FIELDS[1:7], fields, strict=True))
    elif len(fields) == 7:
        named = list(zip(_CRON_FIELDS, fields, strict=True))
    else:
        return (
            f"cron expression needs Minutes Hours Day-of-month Month Day-of-week [Year], got "
            f"{len(fields)} fields: {example}"
        )
    for (name, low, high, names, extra), text in named:
        if not _check_cron_field(text.upper(), name, low, high, names, extra):
            return f"invalid {name} field {text!r} in {expression}: {example}"
    values = {spec[0]: text for spec, text in named}
    if (values["day-of-month"] == "?") == (values["day-of-week"] == "?"):
        return (
            f"{expression}: give exactly one of day-of-month and day-of-week and put ? in the "
            "other, e.g. cron(0 2 ? * SUN *) or cron(0 2 1 * ? *)"
        )
    return None


def is_rate(expression: str) -> bool:
    return expression.startswith("rate(")

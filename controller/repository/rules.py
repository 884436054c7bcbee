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


def path_problem(value: str, what: str) -> str | None:
    """Why a package or version name that AWS accepts cannot be a folder name, or None.

    `build` writes OUT/<package>/<version>/ and the agent unpacks each package version into
    a folder of that name (agent-semantics.md), so a name must stay one plain folder: `..`
    built into OUT/ itself, and on an instance its uninstall would remove the package's
    parent folder, every other package with it. AWS's patterns allow dots anywhere.
    """
    if value.strip(".") == "":
        return (
            f"{value!r} cannot be a {what}: a name of only dots is a path ('.' is the same "
            "folder, '..' its parent), and each package and version is stored in a folder of "
            "its name: use letters or digits"
        )
    if value.endswith("."):
        return (
            f"{value!r} cannot be a {what}: Windows drops a trailing dot from folder names, so "
            f"it would share the folder of {value.rstrip('.')!r}: remove the final dot"
        )
    return None


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
# Organizations ListAccountsForParent / ListOrganizationalUnitsForParent `ParentId`: a root
# (r-...) or an OU (ou-<root part>-<8-32 chars>)
# (https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccountsForParent.html).
ORGANIZATIONAL_UNIT = re.compile(r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$")
# IAM CreateRole `RoleName`: 1-64 of [\w+=,.@-]
# (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
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

"""The AWS-owned documents the endpoint serves: `AWS-ConfigureAWSPackage`, `AWS-RunShellScript`.

Where it sits: documents.py looks these up for any name starting with `AWS-` and lists them
under Owner `Amazon`. Their parameters are the real ones (the Distributor guide, "Install or
update packages": https://docs.aws.amazon.com/systems-manager/latest/userguide/distributor-working-with-packages-deploy.html),
so association and command parameters are checked against what AWS checks.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from controller.local.ssm.store import Document, DocumentVersion

_CONFIGURE_AWS_PACKAGE: dict[str, object] = {
    "schemaVersion": "2.2",
    "description": "Install or uninstall a Distributor package. You can install the latest "
    "version, default version, or a version of the package you specify. Packages provided by "
    "AWS such as AmazonCloudWatchAgent, AwsEnaNetworkDriver, and AWSPVDriver are also supported.",
    "parameters": {
        "action": {
            "description": "(Required) Specify whether or not to install or uninstall the package.",
            "type": "String",
            "allowedValues": ["Install", "Uninstall"],
        },
        "installationType": {
            "description": "(Optional) Specify the type of installation. Uninstall and reinstall: "
            "The application is taken offline until the reinstallation process completes. "
            "In-place update: The application is available while new or updated files are "
            "added to the installation.",
            "type": "String",
            "allowedValues": ["Uninstall and reinstall", "In-place update"],
            "default": "Uninstall and reinstall",
        },
        "name": {
            "description": "(Required) The package to install/uninstall.",
            "type": "String",
            "allowedPattern": "^arn:[a-z0-9][-.a-z0-9]{0,62}:[a-z0-9][-.a-z0-9]{0,62}:"
            "([a-z0-9][-.a-z0-9]{0,62})?:([a-z0-9][-.a-z0-9]{0,62})?:(package|document)\\/"
            "[a-zA-Z0-9/:.\\-_]{1,128}$|^[a-zA-Z0-9/:.\\-_]{1,128}$",
        },
        "version": {
            "description": "(Optional) The version of the package to install or uninstall. If "
            "you don't specify a version, the system installs the latest published version by "
            "default.",
            "type": "String",
            "default": "",
        },
        "additionalArguments": {
            "description": "(Optional) The additional parameters to provide to your install, "
            "uninstall, or update scripts.",
            "type": "StringMap",
            "displayType": "textarea",
            "default": {},
            "maxChars": 4096,
        },
    },
    "mainSteps": [
        {
            "action": "aws:configurePackage",
            "name": "configurePackage",
            "inputs": {
                "name": "{{ name }}",
                "action": "{{ action }}",
                "installationType": "{{ installationType }}",
                "version": "{{ version }}",
                "additionalArguments": "{{ additionalArguments }}",
            },
        }
    ],
}

_RUN_SHELL_SCRIPT: dict[str, object] = {
    "schemaVersion": "1.2",
    "description": "Run a shell script or specify the commands to run.",
    "parameters": {
        "commands": {
            "type": "StringList",
            "description": "(Required) Specify a shell script or a command to run.",
            "minItems": 1,
            "displayType": "textarea",
        },
        "workingDirectory": {
            "type": "String",
            "default": "",
            "description": "(Optional) The path to the working directory on your instance.",
            "maxChars": 4096,
        },
        "executionTimeout": {
            "type": "String",
            "default": "3600",
            "description": "(Optional) The time in seconds for a command to complete before it "
            "is considered to have failed. Default is 3600 (1 hour). Maximum is 172800 (48 hours).",
            "allowedPattern": "([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|"
            "(172[0-7][0-9]{2})|(172800)",
        },
    },
    "runtimeConfig": {
        "aws:runShellScript": {
            "properties": [
                {
                    "id": "0.aws:runShellScript",
                    "runCommand": "{{ commands }}",
                    "workingDirectory": "{{ workingDirectory }}",
                    "timeoutSeconds": "{{ executionTimeout }}",
                }
            ]
        }
    },
}

_CREATED = datetime(2018, 1, 1, tzinfo=UTC)


def _document(name: str, body: dict[str, object]) -> Document:
    content = json.dumps(body, indent=2)
    parameters = body.get("parameters", {})
    assert isinstance(parameters, dict)
    version = DocumentVersion(
        number=1,
        version_name=None,
        content=content,
        content_hash=hashlib.sha256(content.encode()).hexdigest(),
        document_format="JSON",
        created=_CREATED,
        ready_at=0.0,
        pending_status="Creating",
        final_status="Active",
        status_information=None,
        attachments=(),
        display_name=None,
        target_type=None,
        parameters=parameters,
        description=str(body.get("description", "")),
        schema_version=str(body["schemaVersion"]),
    )
    return Document(
        name=name,
        owner="Amazon",
        document_type="Command",
        created=_CREATED,
        versions={1: version},
        default_version=1,
        next_version=2,
    )


AWS_DOCUMENTS: dict[str, Document] = {
    "AWS-ConfigureAWSPackage": _document("AWS-ConfigureAWSPackage", _CONFIGURE_AWS_PACKAGE),
    "AWS-RunShellScript": _document("AWS-RunShellScript", _RUN_SHELL_SCRIPT),
}

"""AWS-ConfigureAWSPackage: the defaults of its parameters, named once for every stage.

A neutral module: the repository format gives an Association these defaults, desired state
leaves them out of the normalised parameters, and the AWS adapter drops them from what
DescribeAssociation returns, so that a default written or omitted never shows as drift.
The values are the document's own Parameters section (DescribeDocument `DefaultValue`):
https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DocumentParameter.html
"""

from __future__ import annotations

from typing import Final

DEFAULT_ACTION: Final = "Install"
DEFAULT_INSTALLATION_TYPE: Final = "Uninstall and reinstall"

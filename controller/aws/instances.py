"""Instances an association may target: EC2 tags and managed instance ids, page-bounded.

Stage: the AWS edge, read only by overlap detection (controller/reconcile/observe/overlap.py),
never by plan or apply. Each listing stops after `max_pages` pages and says so
(`TooManyPages`), so a huge fleet costs a bounded number of calls:
- EC2 DescribeInstances, at most 1000 instances a page, tags included
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html);
  terminated instances are left out (the `instance-state-name` filter).
- SSM DescribeInstanceInformation, at most 50 a page: every managed node, EC2 or not, which
  `InstanceIds: ["*"]` targets
  (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html).
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.aws.api import pages
from controller.aws.session import AwsClients

_LIVE_STATES = ["pending", "running", "stopping", "stopped"]


class TooManyPages(Exception):
    """A listing had more pages than the caller allowed."""


def ec2_instance_tags(clients: AwsClients, max_pages: int) -> dict[str, Mapping[str, str]]:
    """instance id -> its tags, for every EC2 instance not terminated."""
    found: dict[str, Mapping[str, str]] = {}
    listing = pages(
        clients,
        "ec2",
        "DescribeInstances",
        Filters=[{"Name": "instance-state-name", "Values": _LIVE_STATES}],
        MaxResults=1000,
    )
    for number, page in enumerate(listing, 1):
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                tags = {str(t["Key"]): str(t["Value"]) for t in instance.get("Tags", [])}
                found[str(instance["InstanceId"])] = tags
        if number >= max_pages and page.get("NextToken"):
            raise TooManyPages(f"DescribeInstances has more than {max_pages} pages")
    return found


def managed_instance_ids(clients: AwsClients, max_pages: int) -> set[str]:
    """Every managed node's id (DescribeInstanceInformation)."""
    found: set[str] = set()
    listing = pages(clients, "ssm", "DescribeInstanceInformation", MaxResults=50)
    for number, page in enumerate(listing, 1):
        found.update(str(i["InstanceId"]) for i in page.get("InstanceInformationList", []))
        if number >= max_pages and page.get("NextToken"):
            raise TooManyPages(f"DescribeInstanceInformation has more than {max_pages} pages")
    return found

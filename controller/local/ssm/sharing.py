"""Document sharing: DescribeDocumentPermission and ModifyDocumentPermission.

Where it sits: handlers registered with the SSM service. AWS's rules
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ModifyDocumentPermission.html):
at most 20 account ids per call (the model's AccountIdList max, so validation.py rejects
more), at most 1,000 accounts in total (DocumentPermissionLimit), `All` makes the document
public and is not mixed with account ids, `SharedDocumentVersion` is $DEFAULT, $LATEST or
$ALL. Sharing with your own account is refused. A shared document is visible to the other
account by ARN (documents.find_document).
"""

from __future__ import annotations

from controller.local.ssm.documents import find_document
from controller.local.ssm.errors import SsmError
from controller.local.ssm.paging import page
from controller.local.ssm.service import Context, Params, operation

MAX_SHARED_ACCOUNTS = 1000


@operation("DescribeDocumentPermission")
def describe_document_permission(context: Context, params: Params) -> Params:
    document = find_document(context, params["Name"], owned=True)
    accounts = sorted(document.shared_with.items())
    chunk, token = page(accounts, params.get("MaxResults"), params.get("NextToken"), 200)
    result: Params = {
        "AccountIds": [account for account, _ in chunk],  # "all" when public
        "AccountSharingInfoList": [
            {"AccountId": account, "SharedDocumentVersion": version} for account, version in chunk
        ],
    }
    if token:
        result["NextToken"] = token
    return result


@operation("ModifyDocumentPermission")
def modify_document_permission(context: Context, params: Params) -> Params:
    document = find_document(context, params["Name"], owned=True)
    if document.owner == "Amazon":
        raise SsmError("InvalidDocument", "AWS-owned documents can't be shared.")
    to_add = [a.lower() if a.lower() == "all" else a for a in params.get("AccountIdsToAdd") or []]
    to_remove = [
        a.lower() if a.lower() == "all" else a for a in params.get("AccountIdsToRemove") or []
    ]
    for ids in (to_add, to_remove):
        if "all" in ids and len(ids) > 1:
            raise SsmError(
                "InvalidPermissionType",
                "The account id All makes the document public and can't be combined with "
                "account ids in the same request.",
            )
    if context.account in to_add:
        raise SsmError(
            "InvalidPermissionType",
            f"You can't share {document.name} with its own account {context.account}.",
        )
    shared_version = params.get("SharedDocumentVersion", "$DEFAULT")
    after = dict(document.shared_with)
    for account in to_remove:
        after.pop(account, None)
    for account in to_add:
        after[account] = shared_version
    if len([a for a in after if a != "all"]) > MAX_SHARED_ACCOUNTS:
        raise SsmError(
            "DocumentPermissionLimit",
            f"The document can't be shared with more than {MAX_SHARED_ACCOUNTS} accounts.",
        )
    document.shared_with = after
    return {}

"""`/status` errors: typed failures shown as fields, backward compatible with the text form."""

from __future__ import annotations

from controller.model.state import Location
from controller.reconcile.result import Failure, PassResult, Reason
from controller.runtime.status import Status, to_json

LOAD = Failure(Reason.LOAD, "unknown field 'x'", path="packages/a.yaml", line=4, col=3)
GIT = Failure(Reason.SOURCE, "git fetch failed: host unreachable")


def test_errors_list_load_then_git_then_the_pass_each_with_its_reason(a_pass: PassResult) -> None:
    status = Status(repo="r", config_failures=(LOAD,), git_failure=GIT, last_pass=a_pass)
    errors = to_json(status)["errors"]
    assert [e["reason"] for e in errors] == ["load", "source", "apply"]
    # The keys readers had before (text, file, line, message, reason) keep their meaning.
    assert errors[0] == {
        "text": "packages/a.yaml:4:3: unknown field 'x'",
        "reason": "load",
        "message": "unknown field 'x'",
        "file": "packages/a.yaml",
        "line": 4,
        "col": 3,
        "kind": None,
        "name": None,
        "action": None,
        "account": None,
        "region": None,
    }
    assert errors[1]["text"] == errors[1]["message"] == GIT.message
    assert errors[1]["file"] is None and errors[1]["line"] is None
    applied = errors[2]
    assert (applied["kind"], applied["name"], applied["action"]) == (
        "association",
        "nginx-web",
        "update",
    )
    assert (applied["account"], applied["region"]) == ("123456789012", "us-east-1")
    assert applied["text"] == (
        "association nginx-web update (123456789012/us-east-1): "
        "AccessDenied: not allowed to UpdateAssociation nginx-web"
    )
    # The one-line forms, for logs and the demo.
    assert status.errors == tuple(e["text"] for e in errors)
    assert to_json(status)["last_pass"]["errors"] == [applied["text"]]


def test_a_clean_status_has_no_errors() -> None:
    status = Status(repo="r")
    assert status.config_valid and status.git_error == "" and status.config_errors == ()
    assert to_json(status)["errors"] == []


def test_an_unread_location_is_shown_with_its_account_and_region() -> None:
    unread = Failure(
        Reason.OBSERVE, "could not read its packages", location=Location("1111", "eu-west-1")
    )
    (error,) = to_json(Status(repo="r", config_failures=(unread,)))["errors"]
    assert (error["account"], error["region"], error["name"]) == ("1111", "eu-west-1", None)
    assert error["text"] == "1111/eu-west-1: could not read its packages"


def test_the_signature_check_names_its_reason_with_the_shared_word() -> None:
    from controller.source import signatures

    assert Reason(signatures.REASON) is Reason.SIGNATURE

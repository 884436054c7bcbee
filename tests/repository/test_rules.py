"""The AWS rules as tables: schedules, rate control, names, platform versions."""

from __future__ import annotations

import pytest

from controller.repository import rules, schedules


@pytest.mark.parametrize(
    "expression",
    [
        "rate(30 minutes)",
        "rate(1 hour)",
        "rate(12 hours)",
        "rate(1 day)",
        "rate(7 days)",
        "cron(0 2 ? * SUN *)",
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(0 0 ? * THU#2 *)",
        "cron(30 23 ? * TUE#3 *)",
        "cron(0 2 ? * MON-FRI *)",
        "cron(0 */4 ? * * *)",
        "cron(0 2 1 * ? *)",
        "cron(0 2 L * ? *)",
        "cron(0 0 2 ? * SUN *)",
    ],
)
def test_schedules_ssm_accepts(expression: str) -> None:
    assert schedules.check_schedule(expression) is None


@pytest.mark.parametrize(
    ("expression", "complaint"),
    [
        ("rate(5 minutes)", "minimum rate is 30 minutes"),
        ("rate(29 minutes)", "minimum rate is 30 minutes"),
        ("rate(1 days)", "singular"),
        ("rate(2 day)", "plural"),
        ("rate(0 days)", "at least 1"),
        ("rate(1 week)", "invalid rate"),
        ("cron(0 2 * * MON *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 2 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(60 2 ? * SUN *)", "minutes field"),
        ("cron(0 24 ? * SUN *)", "hours field"),
        ("cron(0 2 32 * ? *)", "day-of-month field"),
        ("cron(0 2 ? 13 SUN *)", "month field"),
        ("cron(0 2 ? * FUNDAY *)", "day-of-week field"),
        ("cron(0 2)", "got 2 fields"),
        ("daily", "invalid schedule"),
        ("cron()", "invalid schedule"),
    ],
)
def test_schedules_ssm_rejects(expression: str, complaint: str) -> None:
    problem = schedules.check_schedule(expression)
    assert problem is not None and complaint in problem


@pytest.mark.parametrize(
    ("value", "concurrency_ok", "errors_ok"),
    [
        ("1", True, True),
        ("10", True, True),
        ("0", False, True),
        ("1%", True, True),
        ("10%", True, True),
        ("100%", True, True),
        ("0%", False, True),
        ("101%", False, False),
        ("010", False, False),
        ("ten", False, False),
    ],
)
def test_rate_control_patterns_follow_botocore(
    value: str, concurrency_ok: bool, errors_ok: bool
) -> None:
    assert bool(rules.MAX_CONCURRENCY.match(value)) is concurrency_ok
    assert bool(rules.MAX_ERRORS.match(value)) is errors_ok


@pytest.mark.parametrize(
    ("name", "ok"),
    [("6.9.0", True), ("v1_beta-2", True), ("a" * 128, True), ("a" * 129, False), ("1 0", False)],
)
def test_version_names(name: str, ok: bool) -> None:
    assert bool(rules.VERSION_NAME.match(name)) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [("_any", True), ("*", True), ("2023", True), ("7.6", True), ("7.*", True), ("7.x*", False)],
)
def test_platform_versions(text: str, ok: bool) -> None:
    assert bool(rules.PLATFORM_VERSION.match(text)) is ok


def test_script_types_per_platform() -> None:
    assert rules.script_extension("windows") == ".ps1"
    assert {rules.script_extension(platform) for platform in rules.LINUX_PLATFORMS} == {".sh"}

"""CloudWatch alarms of an association's `AlarmConfiguration`: which one fired.

Where it sits: the SSM service asks `alarm_states` when an association execution starts
and before each further target (service.check_alarms), reading the alarms from moto's
CloudWatch backend in this process -- the same alarms PutMetricAlarm / SetAlarmState make
through the endpoint. AWS rules:
- API_AlarmConfiguration
  (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AlarmConfiguration.html):
  `IgnorePollAlarmFailure` true: "your automation or command continues to run in cases
  where we can't retrieve alarm status information from CloudWatch"; an alarm that is OK or
  INSUFFICIENT_DATA lets it run whatever the value; default false.
- API_AlarmStateInformation: `State` is `ALARM` or `UNKNOWN` (the model's
  ExternalAlarmState); `TriggeredAlarms` holds at most one item.
- "Creating associations" in the State Manager user guide
  (https://docs.aws.amazon.com/systems-manager/latest/userguide/state-manager-associations-creating.html):
  an association with a CloudWatch alarm stops running when the alarm is in ALARM; what
  has not started does not start (we report those targets `Skipped`, an inference).
"""

from __future__ import annotations

from collections.abc import Mapping


def alarm_states(account: str, region: str, names: list[str]) -> dict[str, str | None]:
    """Each alarm's StateValue (OK, ALARM, INSUFFICIENT_DATA), None when it does not exist."""
    from moto.cloudwatch.models import cloudwatch_backends

    alarms = cloudwatch_backends[account][region].alarms
    return {name: (alarms[name].state_value if name in alarms else None) for name in names}


def triggered(
    account: str, region: str, configuration: Mapping[str, object] | None
) -> dict[str, str] | None:
    """The AlarmStateInformation that stops the run, or None when it may run."""
    if not configuration:
        return None
    names = [str(a["Name"]) for a in configuration.get("Alarms") or []]  # type: ignore[attr-defined]
    ignore_failure = bool(configuration.get("IgnorePollAlarmFailure"))
    for name, state in alarm_states(account, region, names).items():
        if state == "ALARM":
            return {"Name": name, "State": "ALARM"}
        if state is None and not ignore_failure:
            return {"Name": name, "State": "UNKNOWN"}
    return None

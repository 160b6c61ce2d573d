"""The local stand-in for the template's schedules: ``DriftCheckSchedule`` (the drift check of the ACTIVE
apps), ``InvitationReminderSchedule`` (resending the invitations of apps with autoResend) and
``AccessExpirySchedule`` (ending the access of invited users whose end has come).

On AWS, EventBridge invokes the provisioner on each rule's rate with the rule's input.  Locally nothing runs
on a clock (tests must not wait for one): ``portcullis_local run-schedule NAME`` (``check-drift`` for the
first) invokes the rule's function target with the same input, through the emulator's Lambda front, once.
The input and the target are read from ``infra/template.yaml``, so the local trigger follows the schedule
rather than a copy of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from .bootstrap import client
from .gateway import kebab_case

DRIFT_CHECK = "DriftCheckSchedule"
INVITATION_REMINDER = "InvitationReminderSchedule"
ACCESS_EXPIRY = "AccessExpirySchedule"


class ScheduleError(RuntimeError):
    pass


@dataclass(frozen=True)
class Schedule:
    name: str  # the rule's logical id
    function: str  # the local function name of the schedule's Lambda target
    event: dict

    @classmethod
    def from_template(cls, path: Path, name: str) -> Schedule:
        with open(path) as stream:
            template = yaml.safe_load(stream)
        try:
            properties = template["Resources"][name]["Properties"]
            if "ScheduleExpression" not in properties:
                raise ScheduleError(f"{name} is not a schedule")
            (target,) = properties["Targets"]
            logical_id = target["Arn"]["Fn::GetAtt"][0]
            event = json.loads(target["Input"])
        except (KeyError, TypeError, ValueError) as error:
            raise ScheduleError(f"{name} must be a schedule with one function target and a JSON Input: {error!r}") from None
        if not logical_id.endswith("Function"):
            raise ScheduleError(f"{name}'s target {logical_id} is not a function")
        return cls(name, kebab_case(logical_id.removesuffix("Function")), event)


def run_schedule(aws_endpoint: str, schedule: Schedule) -> dict:
    """Invokes the target as the schedule would; returns its answer (what the job did)."""
    answer = client("lambda", aws_endpoint).invoke(
        FunctionName=schedule.function, Payload=json.dumps(schedule.event).encode()
    )
    body = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        raise ScheduleError(f"{schedule.name}'s job failed: {body}")
    return body

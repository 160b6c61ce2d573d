"""The local stand-in for the template's ``DriftCheckSchedule``: the drift check of the ACTIVE apps.

On AWS, EventBridge invokes the provisioner every ``DriftCheckMinutes`` with the schedule's input.  Locally
nothing runs on a clock (tests must not wait for one): ``portcullis_local check-drift`` invokes the rule's
function target with the same input, through the emulator's Lambda front, once.  The input and the target
are read from ``infra/template.yaml``, so the local trigger follows the schedule rather than a copy of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from .bootstrap import client
from .gateway import kebab_case

SCHEDULE = "DriftCheckSchedule"


class ScheduleError(RuntimeError):
    pass


@dataclass(frozen=True)
class Schedule:
    function: str  # the local function name of the schedule's Lambda target
    event: dict

    @classmethod
    def from_template(cls, path: Path) -> Schedule:
        with open(path) as stream:
            template = yaml.safe_load(stream)
        try:
            properties = template["Resources"][SCHEDULE]["Properties"]
            (target,) = properties["Targets"]
            logical_id = target["Arn"]["Fn::GetAtt"][0]
            event = json.loads(target["Input"])
        except (KeyError, TypeError, ValueError) as error:
            raise ScheduleError(f"{SCHEDULE} must have one function target with a JSON Input: {error!r}") from None
        if not logical_id.endswith("Function"):
            raise ScheduleError(f"{SCHEDULE}'s target {logical_id} is not a function")
        return cls(kebab_case(logical_id.removesuffix("Function")), event)


def check_drift(aws_endpoint: str, schedule: Schedule) -> dict:
    """Invokes the target as the schedule would; returns its answer (how many apps were checked)."""
    answer = client("lambda", aws_endpoint).invoke(
        FunctionName=schedule.function, Payload=json.dumps(schedule.event).encode()
    )
    body = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        raise ScheduleError(f"the drift check failed: {body}")
    return body

from pathlib import Path

import pytest
import yaml

from portcullis_local.schedules import ACCESS_EXPIRY, DRIFT_CHECK, INVITATION_REMINDER, Schedule, ScheduleError

TEMPLATE = Path(__file__).resolve().parents[2] / "infra/template.yaml"


def test_the_local_trigger_sends_what_the_template_schedules():
    schedule = Schedule.from_template(TEMPLATE, DRIFT_CHECK)
    assert schedule.function == "provisioner"
    assert schedule.event == {"checkDrift": {"limit": 50}}
    reminder = Schedule.from_template(TEMPLATE, INVITATION_REMINDER)
    assert (reminder.function, reminder.event) == ("provisioner", {"resendInvitations": {}})
    expiry = Schedule.from_template(TEMPLATE, ACCESS_EXPIRY)
    assert (expiry.function, expiry.event) == ("provisioner", {"endExpiredAccess": {}})


def test_only_a_schedule_can_be_run():
    with pytest.raises(ScheduleError, match="not a schedule"):
        Schedule.from_template(TEMPLATE, "WorkflowEndedRule")
    with pytest.raises(ScheduleError, match="must be a schedule"):
        Schedule.from_template(TEMPLATE, "NoSuchRule")


def test_a_schedule_without_a_json_input_is_refused(tmp_path):
    template = {
        "Resources": {
            "DriftCheckSchedule": {
                "Properties": {
                    "ScheduleExpression": "rate(5 minutes)",
                    "Targets": [{"Arn": {"Fn::GetAtt": ["ProvisionerFunction", "Arn"]}, "Input": "{"}],
                }
            }
        }
    }
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template))
    with pytest.raises(ScheduleError, match="JSON Input"):
        Schedule.from_template(path, DRIFT_CHECK)

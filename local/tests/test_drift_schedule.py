from pathlib import Path

import pytest
import yaml

from portcullis_local.drift_schedule import Schedule, ScheduleError

TEMPLATE = Path(__file__).resolve().parents[2] / "infra/template.yaml"


def test_the_local_trigger_sends_what_the_template_schedules():
    schedule = Schedule.from_template(TEMPLATE)
    assert schedule.function == "provisioner"
    assert schedule.event == {"checkDrift": {"limit": 50}}


def test_a_schedule_without_a_json_input_is_refused(tmp_path):
    template = {
        "Resources": {
            "DriftCheckSchedule": {
                "Properties": {"Targets": [{"Arn": {"Fn::GetAtt": ["ProvisionerFunction", "Arn"]}, "Input": "{"}]}
            }
        }
    }
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template))
    with pytest.raises(ScheduleError, match="JSON Input"):
        Schedule.from_template(path)

"""run_events.py: the local stand-in for the template's WorkflowEndedRule."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from portcullis_local import constants as c
from portcullis_local.invoke import LambdaEndpoint
from portcullis_local.run_events import DETAIL_TYPE, MAX_ATTEMPTS, Rule, RunEvents

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"

# Waits long enough to be stopped by hand.
WAITING = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}}})


def test_the_rule_is_read_from_the_template():
    rule = Rule.from_template(TEMPLATE)
    assert rule == Rule(frozenset({"FAILED", "TIMED_OUT", "ABORTED"}), "provisioner")


def _aborted_run(sfn, machine_arn: str, payload: dict) -> str:
    arn = sfn.start_execution(stateMachineArn=machine_arn, name=str(uuid.uuid4()), input=json.dumps(payload))["executionArn"]
    sfn.stop_execution(executionArn=arn, error="Stopped", cause="by hand")
    return arn


def test_a_run_that_ended_is_delivered_once_as_eventbridge_shapes_it(aws, emulator, stub_lambda):
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(name=f"m-{uuid.uuid4().hex[:8]}", definition=WAITING, roleArn=c.state_machine_role_arn("run-events-test"))
    earlier = _aborted_run(sfn, machine["stateMachineArn"], {"appId": "before"})
    events = RunEvents(emulator.url, LambdaEndpoint("127.0.0.1", stub_lambda.port), Rule(frozenset({"ABORTED"}), "echo"))
    events.skip_ended_so_far()
    assert earlier in events.done

    ended = _aborted_run(sfn, machine["stateMachineArn"], {"appId": "a-1"})
    stub_lambda.calls.clear()
    assert events.deliver_once() == 1
    assert events.deliver_once() == 0, "delivered once"
    [(function, event)] = stub_lambda.calls
    assert (function, event["detail-type"], event["source"], event["resources"]) == ("echo", DETAIL_TYPE, "aws.states", [ended])
    detail = event["detail"]
    assert (detail["executionArn"], detail["stateMachineArn"], detail["status"]) == (ended, machine["stateMachineArn"], "ABORTED")
    assert json.loads(detail["input"]) == {"appId": "a-1"}


def test_a_refused_notice_is_delivered_again_then_given_up(aws, emulator, stub_lambda):
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(name=f"m-{uuid.uuid4().hex[:8]}", definition=WAITING, roleArn=c.state_machine_role_arn("run-events-test"))
    events = RunEvents(emulator.url, LambdaEndpoint("127.0.0.1", stub_lambda.port), Rule(frozenset({"ABORTED"}), "boom"))
    events.skip_ended_so_far()
    ended = _aborted_run(sfn, machine["stateMachineArn"], {})
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert events.deliver_once() == 0
        assert events.attempts[ended] == attempt
    assert ended in events.done

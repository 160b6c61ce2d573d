"""patches/stepfunctions_lambda_errors.py: a refused Invoke fails a function-ARN task as Lambda.<code>."""

from __future__ import annotations

import json
import uuid

from portcullis_local import constants as c

# The executor's calls carry the execution role's name (conftest's machines use role/test).
EXECUTOR = "test"


def _machine(retry: list[dict]) -> dict:
    return {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": f"arn:aws:lambda:{c.REGION}:{c.ACCOUNT_ID}:function:echo",
                "Retry": retry,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }


def test_a_throttled_invoke_fails_the_task_as_lambda_too_many_requests(faults, run_to_end):
    faults("lambda:InvokeFunction", "throttle", count=1, caller=EXECUTOR)

    described = run_to_end(_machine([]), f"lambda-errors-{uuid.uuid4().hex[:8]}")

    assert json.loads(described["output"])["error"]["Error"] == "Lambda.TooManyRequestsException"


def test_a_retry_on_lambda_service_errors_absorbs_a_failed_invoke(faults, run_to_end):
    faults("lambda:InvokeFunction", "server-error", count=1, caller=EXECUTOR)
    retry = [{"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 1, "MaxAttempts": 2}]

    described = run_to_end(_machine(retry), f"lambda-errors-{uuid.uuid4().hex[:8]}")

    assert json.loads(described["output"]) == {"function": "echo", "event": {"step": "x"}}

"""faults.py: armed through the control route, each kind fails a call the way AWS or the network does."""

from __future__ import annotations

import json
import uuid

import botocore.exceptions
import pytest
import requests
from botocore.config import Config

from portcullis_local import constants as c
from portcullis_local.bootstrap import client

CALLER = "portcullis-echo"  # a "function" the stub Lambda serves (conftest.py)


def _client(emulator, service: str, app: str | None = None, attempts: int = 1):
    """A client making ``attempts`` attempts per call (by default no retry, so that the test sees the first
    answer); ``app`` is its caller."""
    retries = {"total_max_attempts": attempts, "mode": "standard"}
    return client(service, emulator.url, Config(retries=retries, user_agent_appid=app))


def _pool_names(cognito) -> set[str]:
    return {pool["Name"] for pool in cognito.list_user_pools(MaxResults=60)["UserPools"]}


def _error(call) -> botocore.exceptions.ClientError:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    return raised.value


def test_nothing_is_armed_by_default_and_bad_faults_are_refused(emulator, faults):
    assert requests.get(faults.url, timeout=5).json() == {"faults": []}
    for bad in (
        {"action": "CreateRule", "kind": "throttle"},
        {"action": "elasticloadbalancing:CreateRule", "kind": "explode"},
        {"action": "elasticloadbalancing:CreateRule", "kind": "throttle", "count": 0},
        {"action": "elasticloadbalancing:CreateRule", "kind": "die-after"},
        {"action": "elasticloadbalancing:CreateRule", "kind": "throttle", "colour": "red"},
    ):
        answer = requests.post(faults.url, json=bad, timeout=5)
        assert answer.status_code == 400, bad
        assert answer.json()["message"]


@pytest.mark.parametrize(
    ("service", "action", "call", "code"),
    [
        ("acm", "acm:ListCertificates", lambda cl: cl.list_certificates(), "ThrottlingException"),
        ("cognito-idp", "cognito-idp:ListUserPools", _pool_names, "TooManyRequestsException"),
        ("dynamodb", "dynamodb:ListTables", lambda cl: cl.list_tables(), "ThrottlingException"),
        ("elbv2", "elasticloadbalancing:DescribeLoadBalancers", lambda cl: cl.describe_load_balancers(), "Throttling"),
        ("route53", "route53:ListHostedZones", lambda cl: cl.list_hosted_zones(), "Throttling"),
    ],
)
def test_throttle_answers_the_services_own_throttling_error_then_passes(emulator, faults, service, action, call, code):
    client = _client(emulator, service)
    faults(action, "throttle", count=1)

    error = _error(lambda: call(client))

    assert error.response["Error"]["Code"] == code
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # botocore's own classifier (like aws-smithy's) takes it for throttling, so SDKs retry it.
    assert code in botocore.retries.standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES
    call(client)  # count 1: the next call goes through
    listed = requests.get(faults.url, timeout=5).json()["faults"]
    assert [(f["action"], f["fired"]) for f in listed] == [(action, 1)]


def test_server_error_answers_500_in_the_services_format_and_a_retrying_sdk_absorbs_one(emulator, faults):
    elbv2 = _client(emulator, "elbv2")
    faults("elasticloadbalancing:DescribeLoadBalancers", "server-error", count=1)
    error = _error(elbv2.describe_load_balancers)
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert error.response["Error"]["Code"] == "InternalFailure"

    faults("acm:ListCertificates", "server-error", count=1)
    retrying = _client(emulator, "acm", attempts=3)
    assert retrying.list_certificates()["ResponseMetadata"]["RetryAttempts"] == 1


def test_faults_match_only_their_caller_and_their_match_string(emulator, faults):
    name = f"faults-match-{uuid.uuid4().hex[:8]}"
    faults("cognito-idp:CreateUserPool", "throttle", count=5, caller=CALLER, match=name)

    _client(emulator, "cognito-idp").create_user_pool(PoolName=name)  # another caller
    _client(emulator, "cognito-idp", CALLER).create_user_pool(PoolName=f"other-{name[7:]}")  # another pool
    error = _error(lambda: _client(emulator, "cognito-idp", CALLER).create_user_pool(PoolName=name))

    assert error.response["Error"]["Code"] == "TooManyRequestsException"


@pytest.mark.parametrize(("kind", "performed"), [("timeout", False), ("lost-answer", True)])
def test_timeout_and_lost_answer_close_the_connection_and_only_a_lost_answer_is_performed(
    emulator, faults, kind, performed
):
    cognito = _client(emulator, "cognito-idp")
    name = f"faults-{kind}-{uuid.uuid4().hex[:8]}"
    faults("cognito-idp:CreateUserPool", kind, count=1, match=name)

    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        cognito.create_user_pool(PoolName=name)

    assert (name in _pool_names(cognito)) is performed


def test_die_after_answers_the_call_then_the_invocation_dies_as_lambda_unknown(emulator, faults, run_to_end):
    as_function = _client(emulator, "cognito-idp", CALLER)
    name = f"faults-die-{uuid.uuid4().hex[:8]}"
    faults("cognito-idp:CreateUserPool", "die-after", caller=CALLER, match=name)

    # The call is performed and answered ...
    pool_id = as_function.create_user_pool(PoolName=name)["UserPool"]["Id"]
    # ... then the dying invocation makes no further call ...
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        as_function.delete_user_pool(UserPoolId=pool_id)
    # ... and Step Functions sees the invocation die without a result.
    described = run_to_end(_task_catching_every_error("echo"), f"faults-{uuid.uuid4().hex[:8]}")

    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["error"]["Error"] == "Lambda.Unknown"
    assert name in _pool_names(as_function)
    # The next invocation lives: its calls go through again.
    as_function.delete_user_pool(UserPoolId=pool_id)
    assert name not in _pool_names(as_function)


def _task_catching_every_error(function: str) -> dict:
    """A one-task machine invoking ``function`` by ARN, as Portcullis's do; any error is caught."""
    return {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": f"arn:aws:lambda:{c.REGION}:{c.ACCOUNT_ID}:function:{function}",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }

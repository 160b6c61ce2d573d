"""The emulator's Lambda front: Invoke API to cargo lambda (here a stub), everything else to moto."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from portcullis_local.invoke import bare_function_name


@pytest.mark.parametrize(
    "given, bare",
    [
        ("provisioner", "provisioner"),
        ("provisioner:live", "provisioner"),
        ("arn:aws:lambda:us-east-1:123456789012:function:provisioner", "provisioner"),
        ("arn:aws:lambda:us-east-1:123456789012:function:provisioner:3", "provisioner"),
        ("123456789012:function:provisioner", "provisioner"),
    ],
)
def test_function_names_are_cut_to_the_bare_name(given, bare):
    assert bare_function_name(given) == bare


@pytest.mark.parametrize(
    "name",
    ["echo", "echo:live", "arn:aws:lambda:us-east-1:123456789012:function:echo", "arn:aws:lambda:us-east-1:123456789012:function:echo:7"],
)
def test_invoke_reaches_the_function_under_its_bare_name(aws, stub_lambda, name):
    result = aws("lambda").invoke(FunctionName=name, Payload=json.dumps({"n": 1}))

    assert result["StatusCode"] == 200
    assert "FunctionError" not in result
    assert json.loads(result["Payload"].read()) == {"function": "echo", "event": {"n": 1}}
    assert stub_lambda.calls[-1] == ("echo", {"n": 1})


def test_handler_error_becomes_200_with_function_error_and_is_not_retried(aws, stub_lambda):
    before = len(stub_lambda.calls)

    result = aws("lambda").invoke(FunctionName="boom", Payload=b"{}")

    assert result["StatusCode"] == 200
    assert result["FunctionError"] == "Unhandled"
    assert json.loads(result["Payload"].read()) == {"errorType": "Boom", "errorMessage": "it broke"}
    assert [name for name, _ in stub_lambda.calls[before:]] == ["boom"]


def test_unknown_function_is_resource_not_found(aws):
    with pytest.raises(ClientError) as error:
        aws("lambda").invoke(FunctionName="no-such-function", Payload=b"{}")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_emulator_failure_is_a_service_error_not_a_function_error(emulator):
    # Without retries: botocore would otherwise retry a 5xx, which would hide the answer's shape.
    lambda_ = boto3.session.Session().client(
        "lambda",
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError) as error:
        lambda_.invoke(FunctionName="crash", Payload=b"{}")
    assert error.value.response["Error"]["Code"] == "ServiceException"


def test_other_lambda_api_calls_still_reach_moto(aws):
    assert aws("lambda").list_functions()["Functions"] == []


def _task(function: str, **extra) -> dict:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": f"arn:aws:lambda:us-east-1:123456789012:function:{function}", "Payload.$": "$"},
        "OutputPath": "$.Payload",
        **extra,
    }


def test_step_functions_lambda_task_goes_through_the_front(run_to_end):
    described = run_to_end({"StartAt": "Call", "States": {"Call": _task("echo", End=True)}}, "front-ok")

    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"function": "echo", "event": {"step": "x"}}


def test_step_functions_sees_a_handler_error_once_under_its_error_type(run_to_end, stub_lambda):
    before = len(stub_lambda.calls)
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": _task("boom", Catch=[{"ErrorEquals": ["Boom"], "ResultPath": "$.error", "Next": "Caught"}], End=True),
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    described = run_to_end(definition, "front-error")

    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["error"]["Error"] == "Boom"
    assert [name for name, _ in stub_lambda.calls[before:]] == ["boom"]

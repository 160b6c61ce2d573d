"""The IAM audit: which caller performed which IAM action, for every protocol the functions use.

The end-to-end cases go through boto3 over HTTP to the shared emulator, each under an app name of its
own (the emulator's call log is shared by the session).
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import pytest
from botocore.config import Config

from portcullis_local import constants as c
from portcullis_local.bootstrap import client
from portcullis_local.iam_audit import (
    EXECUTOR_WITHOUT_ROLE,
    app_name,
    executor_app_name,
    iam_actions,
    signing_service,
)

# --- pure extraction --------------------------------------------------------------------------------


def test_the_service_is_the_credential_scope_signing_name():
    header = (
        "AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/elasticloadbalancing/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    assert signing_service(header) == "elasticloadbalancing"
    assert signing_service("") is None
    assert signing_service("Bearer x") is None


def test_the_caller_is_the_app_name_of_the_user_agent():
    rust = "aws-sdk-rust/1.3.9 ua/2.1 api/dynamodb/1.80.0 os/linux lang/rust/1.88.0 app/portcullis-users-api"
    assert app_name(rust) == "portcullis-users-api"
    assert app_name(None, "Boto3/1.44.5 md/Botocore#1.44.5 ua/2.1 app/portcullis-provision") == "portcullis-provision"
    assert app_name("aws-sdk-rust/1.3.9 ua/2.1 api/sfn/1.0 os/linux", "Boto3/1.44.5 ua/2.1") is None


@pytest.mark.parametrize(
    "service, method, path, target, params, action",
    [
        ("dynamodb", "POST", "/", "DynamoDB_20120810.UpdateItem", {}, "dynamodb:UpdateItem"),
        ("cognito-idp", "POST", "/", "AWSCognitoIdentityProviderService.AdminCreateUser", {}, "cognito-idp:AdminCreateUser"),
        ("states", "POST", "/", "AWSStepFunctions.StartExecution", {}, "states:StartExecution"),
        ("acm", "POST", "/", "CertificateManager.RequestCertificate", {}, "acm:RequestCertificate"),
        ("elasticloadbalancing", "POST", "/", None, {"Action": "CreateRule"}, "elasticloadbalancing:CreateRule"),
        ("elasticbeanstalk", "GET", "/", None, {"Action": "DescribeEnvironments"}, "elasticbeanstalk:DescribeEnvironments"),
        ("lambda", "POST", "/2015-03-31/functions/arn:aws:lambda:us-east-1:1:function:p/invocations", None, {},
         "lambda:InvokeFunction"),
        ("route53", "POST", "/2013-04-01/hostedzone/Z1/rrset/", None, {}, "route53:ChangeResourceRecordSets"),
        ("route53", "GET", "/2013-04-01/hostedzone/Z1/rrset", None, {"name": "a."}, "route53:ListResourceRecordSets"),
        ("route53", "GET", "/2013-04-01/hostedzone/Z1", None, {}, "route53:GetHostedZone"),
        ("route53", "GET", "/2013-04-01/change/C1", None, {}, "route53:GetChange"),
        ("route53", "GET", "/2013-04-01/hostedzonesbyname", None, {"dnsname": "a."}, "route53:ListHostedZonesByName"),
        ("monitoring", "POST", "/", None, {"Action": "PutMetricData"}, "cloudwatch:PutMetricData"),
        # A REST call the tables do not know is named so that no policy allows it.
        ("route53", "DELETE", "/2013-04-01/hostedzone/Z1", None, {}, "route53:? DELETE /2013-04-01/hostedzone/Z1"),
    ],
)  # fmt: skip
def test_each_protocol_names_its_action(service, method, path, target, params, action):
    assert iam_actions(service, method, path, target, params, None) == [action]


def test_a_transaction_is_one_action_per_kind_of_item():
    body = json.dumps(
        {
            "TransactItems": [
                {"Put": {"TableName": "t"}},
                {"Put": {"TableName": "t"}},
                {"ConditionCheck": {"TableName": "t"}},
                {"Delete": {"TableName": "t"}},
                {"Update": {"TableName": "t"}},
            ]
        }
    ).encode()
    actions = iam_actions("dynamodb", "POST", "/", "DynamoDB_20120810.TransactWriteItems", {}, body)
    assert actions == ["dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    get = json.dumps({"TransactItems": [{"Get": {"TableName": "t"}}]}).encode()
    assert iam_actions("dynamodb", "POST", "/", "DynamoDB_20120810.TransactGetItems", {}, get) == ["dynamodb:GetItem"]


def test_the_executor_is_named_after_the_execution_role():
    assert executor_app_name(c.state_machine_role_arn("portcullis-provision")) == "portcullis-provision"
    assert executor_app_name(None) == EXECUTOR_WITHOUT_ROLE


# --- through the emulator ---------------------------------------------------------------------------


def _client(emulator, service: str, app: str | None):
    return client(service, emulator.url, Config(user_agent_appid=app) if app else None)


def _recorded(emulator, app: str) -> dict[str, int]:
    return emulator.calls.snapshot()["calls"].get(app, {})


@pytest.fixture
def app():
    return f"portcullis-test-{uuid.uuid4().hex[:8]}"


def test_json_protocol_calls_and_transactions_are_recorded_per_item(emulator, app):
    harness = _client(emulator, "dynamodb", None)
    table = f"audit-{uuid.uuid4().hex[:8]}"
    harness.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb = _client(emulator, "dynamodb", app)
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "b"}}, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "a"}}, "ConditionExpression": "attribute_exists(pk)"}},
        ]
    )

    assert _recorded(emulator, app) == {"dynamodb:PutItem": 2, "dynamodb:ConditionCheckItem": 1}
    # The body the audit read still reached moto whole.
    assert harness.get_item(TableName=table, Key={"pk": {"S": "b"}})["Item"] == {"pk": {"S": "b"}}


def test_query_protocol_calls_are_recorded_with_their_action(emulator, app):
    _client(emulator, "elbv2", app).describe_load_balancers()
    _client(emulator, "elasticbeanstalk", app).describe_environments()

    assert _recorded(emulator, app) == {
        "elasticloadbalancing:DescribeLoadBalancers": 1,
        "elasticbeanstalk:DescribeEnvironments": 1,
    }


def test_rest_calls_are_recorded_lambda_invoke_and_route53(emulator, app):
    _client(emulator, "lambda", app).invoke(FunctionName="echo", Payload=b"{}")
    zone = _client(emulator, "route53", None).create_hosted_zone(Name="audit.test", CallerReference=app)
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    route53 = _client(emulator, "route53", app)
    route53.get_hosted_zone(Id=zone_id)
    change = route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "_x.audit.test.",
                        "Type": "CNAME",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": "y.example."}],
                    },
                }
            ]
        },
    )
    route53.get_change(Id=change["ChangeInfo"]["Id"].rsplit("/", 1)[-1])
    route53.list_resource_record_sets(HostedZoneId=zone_id)
    route53.list_hosted_zones_by_name(DNSName="audit.test")

    assert _recorded(emulator, app) == {
        "lambda:InvokeFunction": 1,
        "route53:GetHostedZone": 1,
        "route53:ChangeResourceRecordSets": 1,
        "route53:GetChange": 1,
        "route53:ListResourceRecordSets": 1,
        "route53:ListHostedZonesByName": 1,
    }


def test_calls_without_an_app_name_are_the_harness_and_unsigned_ones_only_counted(emulator):
    before = emulator.calls.snapshot()
    _client(emulator, "elbv2", None).describe_target_groups()
    with urllib.request.urlopen(f"{emulator.url}/moto-api/") as answer:
        answer.read()

    after = emulator.calls.snapshot()
    assert after["calls"] == before["calls"]
    assert after["harness"]["elasticloadbalancing:DescribeTargetGroups"] == (
        before["harness"].get("elasticloadbalancing:DescribeTargetGroups", 0) + 1
    )
    assert after["unsigned"] == before["unsigned"] + 1


def test_the_step_functions_executor_calls_as_the_state_machine(emulator):
    sfn = _client(emulator, "stepfunctions", None)
    name = f"audit-{uuid.uuid4().hex[:8]}"
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
                "End": True,
            }
        },
    }
    arn = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=c.state_machine_role_arn(name)
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    deadline = time.monotonic() + 10
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution still running"
        time.sleep(0.1)

    assert _recorded(emulator, name) == {"lambda:InvokeFunction": 1}


def test_the_call_log_is_written_as_json(emulator, tmp_path, app):
    _client(emulator, "acm", app).list_certificates()
    path = tmp_path / "iam" / "calls.json"

    emulator.calls.write(path)

    written = json.loads(path.read_text())
    assert written["calls"][app] == {"acm:ListCertificates": 1}
    assert set(written) == {"calls", "harness", "unsigned"}

"""The IAM check: recorded calls against the roles of the translated template."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from portcullis_local.iam_check import (
    IMPLIED,
    STATE_MACHINE,
    Principal,
    check,
    decide,
    matches,
    principals,
    run,
    translate,
)

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"

# users-api's policy as it was before the check existed: the resend route's UpdateItem is missing.
USERS_API_BEFORE = textwrap.dedent(
    """\
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      OperatorsUserPoolId:
        Type: String
    Resources:
      PortcullisTable:
        Type: AWS::DynamoDB::Table
        Properties:
          BillingMode: PAY_PER_REQUEST
          AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
          KeySchema: [{AttributeName: pk, KeyType: HASH}]
      UsersApiFunction:
        Type: AWS::Serverless::Function
        Properties:
          Runtime: provided.al2023
          Handler: bootstrap
          CodeUri: ./
          Tracing: Active
          Policies:
            - Version: "2012-10-17"
              Statement:
                - Sid: Table
                  Effect: Allow
                  Action:
                    - dynamodb:GetItem
                    - dynamodb:PutItem
                    - dynamodb:Query
                    - dynamodb:DeleteItem
                    - dynamodb:BatchGetItem
                  Resource:
                    Fn::GetAtt: [PortcullisTable, Arn]
                - Sid: AppPoolUsers
                  Effect: Allow
                  Action:
                    - cognito-idp:AdminCreateUser
                    - cognito-idp:AdminGetUser
                    - cognito-idp:ListUsers
                    - cognito-idp:AdminUserGlobalSignOut
                    - cognito-idp:AdminDeleteUser
                  Resource:
                    Fn::Sub: arn:${AWS::Partition}:cognito-idp:${AWS::Region}:${AWS::AccountId}:userpool/*
                  Condition:
                    "Null":
                      aws:ResourceTag/portcullis:app-id: "false"
                - Sid: NotTheOperatorsPool
                  Effect: Deny
                  Action:
                    - cognito-idp:*
                  Resource:
                    Fn::Sub: arn:${AWS::Partition}:cognito-idp:${AWS::Region}:${AWS::AccountId}:userpool/${OperatorsUserPoolId}
    """
)

USERS_API_CALLS = {
    "dynamodb:GetItem": 40,
    "dynamodb:PutItem": 12,
    "dynamodb:Query": 9,
    "dynamodb:DeleteItem": 2,
    "dynamodb:BatchGetItem": 6,
    "dynamodb:UpdateItem": 3,
    "cognito-idp:AdminCreateUser": 14,
    "cognito-idp:ListUsers": 6,
    "cognito-idp:AdminUserGlobalSignOut": 2,
    "cognito-idp:AdminDeleteUser": 2,
}


@pytest.fixture(scope="module")
def roles():
    return principals(translate(TEMPLATE))


def _principal(*statements, managed=()) -> Principal:
    return Principal("portcullis-fn", "FnFunction", "FnFunctionRole", list(statements), list(managed))


def _allow(*actions, **extra) -> dict:
    return {"Effect": "Allow", "Action": list(actions), "Resource": "*", **extra}


# --- the UpdateItem gap ------------------------------------------------------------------------------


def test_users_api_update_item_is_reported_against_the_policy_before_the_fix(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(USERS_API_BEFORE)
    roles = principals(translate(template))

    report = check({"portcullis-users-api": USERS_API_CALLS}, roles)

    assert report.failed
    assert [(v.caller, v.action, v.count) for v in report.violations] == [
        ("portcullis-users-api", "dynamodb:UpdateItem", 3)
    ]
    assert report.violations[0].message.startswith(
        "portcullis-users-api called dynamodb:UpdateItem but its role (UsersApiFunctionRole) does not allow it"
    )
    # And a granted action the calls never used is listed.
    assert report.unexercised["portcullis-users-api"] == ["cognito-idp:AdminGetUser"]


def test_users_api_may_update_items_now(roles):
    assert decide(roles["portcullis-users-api"], "dynamodb:UpdateItem").allowed


# --- the template's callers and roles ----------------------------------------------------------------


def test_every_function_and_state_machine_has_its_role(roles):
    assert {caller: p.role for caller, p in roles.items()} == {
        "portcullis-apps-api": "AppsApiFunctionRole",
        "portcullis-tenants-api": "TenantsApiFunctionRole",
        "portcullis-users-api": "UsersApiFunctionRole",
        "portcullis-provisioner": "ProvisionerFunctionRole",
        "portcullis-provision": "ProvisionStateMachineRole",
        "portcullis-deprovision": "DeprovisionStateMachineRole",
        "portcullis-settings": "SettingsStateMachineRole",
    }


def test_state_machine_policy_templates_become_statements(roles):
    assert decide(roles["portcullis-provision"], "lambda:InvokeFunction").allowed
    assert not decide(roles["portcullis-provision"], "dynamodb:PutItem").allowed


def test_the_operators_pool_deny_is_resource_scoped_so_it_does_not_deny_here(roles):
    # Its Resource is the operators' pool, not "*": whether a call reaches that pool is not known here.
    assert decide(roles["portcullis-users-api"], "cognito-idp:AdminCreateUser").allowed


# --- evaluation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, action, expected",
    [
        ("dynamodb:GetItem", "dynamodb:GetItem", True),
        ("dynamodb:getitem", "DynamoDB:GetItem", True),
        ("dynamodb:Get*", "dynamodb:GetItem", True),
        ("dynamodb:Get*", "dynamodb:BatchGetItem", False),
        ("cognito-idp:*", "cognito-idp:AdminCreateUser", True),
        ("*", "acm:RequestCertificate", True),
        ("ec2:Describe?nstances", "ec2:DescribeInstances", True),
        ("ec2:Describe?nstances", "ec2:DescribeXXnstances", False),
        ("dynamodb:GetItem", "dynamodb:GetItems", False),
        ("dynamodb.GetItem", "dynamodbxGetItem", False),
    ],
)
def test_action_matching(pattern, action, expected):
    assert matches(pattern, action) is expected


def test_allow_with_wildcards_and_no_allow():
    role = _principal(_allow("dynamodb:Get*", "states:StartExecution"))
    assert decide(role, "dynamodb:GetItem").allowed
    assert decide(role, "states:startexecution").allowed
    refused = decide(role, "dynamodb:UpdateItem")
    assert not refused.allowed and refused.why == "no statement allows it"


def test_conditions_are_not_evaluated():
    role = _principal(_allow("acm:RequestCertificate", Condition={"StringEquals": {"acm:ValidationMethod": "DNS"}}))
    assert decide(role, "acm:RequestCertificate").allowed


def test_a_deny_on_every_resource_wins_and_a_scoped_one_is_ignored():
    role = _principal(
        _allow("cognito-idp:*", Sid="Pools"),
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "cognito-idp:Delete*", "Resource": "*"},
        {"Sid": "NotThatPool", "Effect": "Deny", "Action": "cognito-idp:*", "Resource": "arn:aws:cognito-idp:::userpool/x"},
    )
    denied = decide(role, "cognito-idp:DeleteUserPool")
    assert not denied.allowed and denied.why == "denied by statement NoDeletes"
    allowed = decide(role, "cognito-idp:CreateUserPool")
    assert allowed.allowed and allowed.why == "allowed by statement Pools"


def test_not_action():
    role = _principal({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"})
    assert decide(role, "s3:GetObject").allowed
    assert not decide(role, "iam:PassRole").allowed


def test_known_managed_policies_allow_their_actions_only():
    role = _principal(managed=["AWSXrayWriteOnlyAccess", "AWSLambdaBasicExecutionRole"])
    assert decide(role, "xray:PutTraceSegments").why == "allowed by managed policy AWSXrayWriteOnlyAccess"
    assert decide(role, "logs:PutLogEvents").allowed
    assert not decide(role, "xray:BatchGetTraces").allowed


# --- the report --------------------------------------------------------------------------------------


def test_dependent_actions_are_implicit_not_unused_when_their_call_was_made():
    role = _principal(
        _allow("elasticloadbalancing:CreateRule", "elasticloadbalancing:AddTags", "cognito-idp:DescribeUserPoolClient")
    )
    report = check({"portcullis-fn": {"elasticloadbalancing:CreateRule": 2}}, {"portcullis-fn": role})

    assert not report.failed
    assert report.unexercised == {}
    assert sorted(p for p, _ in report.implicit["portcullis-fn"]) == [
        "cognito-idp:DescribeUserPoolClient",
        "elasticloadbalancing:AddTags",
    ]


def test_implicit_grants_whose_call_no_test_made_are_listed_as_unexercised():
    role = _principal(_allow("acm:RequestCertificate", "acm:AddTagsToCertificate"))
    report = check({"portcullis-fn": {"dynamodb:GetItem": 1}}, {"portcullis-fn": role})

    assert report.unexercised["portcullis-fn"] == ["acm:RequestCertificate"]
    [(pattern, implied)] = report.implicit_unexercised["portcullis-fn"]
    assert pattern == "acm:AddTagsToCertificate" and implied.through == ("acm:RequestCertificate",)
    assert report.unused()


def test_a_call_whose_dependent_action_is_not_granted_fails():
    role = _principal(_allow("cognito-idp:CreateUserPool"))
    report = check({"portcullis-fn": {"cognito-idp:CreateUserPool": 1}}, {"portcullis-fn": role})

    [violation] = report.violations
    assert violation.action == "cognito-idp:TagResource"
    assert "called cognito-idp:CreateUserPool, which AWS also authorizes as cognito-idp:TagResource" in violation.message


def test_a_caller_without_a_role_fails():
    report = check({"portcullis-stranger": {"s3:GetObject": 1}}, {"portcullis-fn": _principal(_allow("s3:*"))})
    [violation] = report.violations
    assert "has no role in the template" in violation.message
    assert report.silent == ["portcullis-fn"]


def test_a_recording_without_any_function_call_fails():
    report = check({}, {"portcullis-fn": _principal(_allow("s3:*"))})
    assert report.failed and report.nothing_recorded


def test_a_wildcard_grant_is_exercised_by_any_call_it_matches():
    role = _principal(_allow("dynamodb:*Item"))
    report = check({"portcullis-fn": {"dynamodb:GetItem": 1}}, {"portcullis-fn": role})
    assert report.unexercised == {}


def test_every_implied_entry_has_a_reason_and_names_actions():
    for implied in IMPLIED:
        assert implied.reason
        assert ":" in implied.action and all(":" in t for t in implied.through)


def test_what_the_service_uses_itself_is_implicit_for_its_holder_only():
    log_delivery = _allow("logs:CreateLogDelivery", "logs:DescribeLogGroups")
    machine = Principal("portcullis-m", "MStateMachine", "MStateMachineRole", [log_delivery], [], STATE_MACHINE)
    function = _principal(log_delivery)

    report = check({}, {"portcullis-m": machine, "portcullis-fn": function})

    assert "portcullis-m" not in report.unexercised
    assert [p for p, i in report.implicit["portcullis-m"]] == ["logs:CreateLogDelivery", "logs:DescribeLogGroups"]
    assert report.unexercised["portcullis-fn"] == ["logs:CreateLogDelivery", "logs:DescribeLogGroups"]


def test_render_and_exit_codes(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(USERS_API_BEFORE)
    calls = tmp_path / "calls.json"
    calls.write_text(json.dumps({"calls": {"portcullis-users-api": USERS_API_CALLS}, "harness": {"x:Y": 2}, "unsigned": 1}))

    out = io.StringIO()
    assert run(calls, template, out=out) == 1
    text = out.getvalue()
    assert "portcullis-users-api called dynamodb:UpdateItem but its role (UsersApiFunctionRole) does not allow it" in text
    assert "portcullis-users-api: cognito-idp:AdminGetUser" in text
    assert "2 signed calls without an app name" in text

    without_update = {a: n for a, n in USERS_API_CALLS.items() if a != "dynamodb:UpdateItem"}
    calls.write_text(json.dumps({"calls": {"portcullis-users-api": without_update}}))
    out = io.StringIO()
    assert run(calls, template, out=out) == 0
    assert out.getvalue().rstrip().endswith("IAM check passed: every recorded action is allowed")
    # AdminGetUser is granted and never called: only --strict fails on it.
    assert run(calls, template, strict=True, out=io.StringIO()) == 1

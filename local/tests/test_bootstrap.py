"""bootstrap.py against a real in-process emulator, and the ASL substitution on its own."""

from __future__ import annotations

import base64
import json

import pytest

from portcullis_local import constants as c
from portcullis_local.bootstrap import BootstrapError, bootstrap, demo_registration, id_token, render_definition, state_machine_name
from portcullis_local.stack import functions_env

PROVISION = {
    "StartAt": "Call",
    "States": {
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${ProvisionerFunctionArn}", "Payload.$": "$"},
            "Next": "Save",
        },
        "Save": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:putItem",
            "Parameters": {"TableName": "${TableName}", "Item": {"pk": {"S": "x"}, "sk": {"S": "y"}}},
            "End": True,
        },
    },
}


def test_render_substitutes_every_placeholder():
    text = json.dumps(PROVISION)
    rendered = json.loads(render_definition(text, {"ProvisionerFunctionArn": "arn:fn", "TableName": "t"}))
    assert rendered["States"]["Call"]["Parameters"]["FunctionName"] == "arn:fn"
    assert rendered["States"]["Save"]["Parameters"]["TableName"] == "t"


def test_render_fails_loudly_on_a_placeholder_without_value():
    with pytest.raises(BootstrapError, match=r"provision.asl.json: no substitution for \$\{TableName\}"):
        render_definition(json.dumps(PROVISION), {"ProvisionerFunctionArn": "arn:fn"}, source="provision.asl.json")


def test_render_escapes_values_for_json():
    assert json.loads(render_definition('{"a": "${V}"}', {"V": 'say "hi"'})) == {"a": 'say "hi"'}


def test_render_leaves_jsonpath_and_intrinsics_alone():
    text = '{"a.$": "States.Format(\'{}-{}\', $.x, $.y)", "b.$": "$.c"}'
    assert render_definition(text, {}) == text


def test_state_machine_names_come_from_file_stems(tmp_path):
    assert state_machine_name(tmp_path / "deprovision.asl.json") == "portcullis-deprovision"


@pytest.fixture(scope="module")
def resources(emulator, tmp_path_factory):
    directory = tmp_path_factory.mktemp("statemachine")
    (directory / "provision.asl.json").write_text(json.dumps(PROVISION))
    (directory / "deprovision.asl.json").write_text(json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))
    (directory / "settings.asl.json").write_text(json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))
    (directory / "README.md").write_text("not a state machine")
    return bootstrap(emulator.url, directory)


def test_table(aws, resources):
    table = aws("dynamodb").describe_table(TableName="portcullis")["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = aws("dynamodb").describe_time_to_live(TableName="portcullis")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")


def test_state_machines(aws, resources):
    sfn = aws("stepfunctions")
    assert set(resources["stateMachines"]) == {"portcullis-provision", "portcullis-deprovision", "portcullis-settings"}
    assert resources["settingsStateMachineArn"].endswith(":stateMachine:portcullis-settings")
    assert resources["provisionStateMachineArn"].endswith(":stateMachine:portcullis-provision")
    assert resources["deprovisionStateMachineArn"].endswith(":stateMachine:portcullis-deprovision")
    described = sfn.describe_state_machine(stateMachineArn=resources["provisionStateMachineArn"])
    definition = json.loads(described["definition"])
    assert definition["States"]["Call"]["Parameters"]["FunctionName"] == c.PROVISIONER_FUNCTION_ARN
    assert definition["States"]["Save"]["Parameters"]["TableName"] == "portcullis"
    # A role of its own, named after it: the executor's calls are told apart by it (iam_audit.py).
    assert described["roleArn"] == "arn:aws:iam::123456789012:role/portcullis-provision"


def _decode(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _claims(token: str) -> dict:
    return _decode(token.split(".")[1])


@pytest.mark.parametrize("user, group", [(c.ADMIN_USER, "admin"), (c.VIEWER_USER, "viewer")])
def test_operators_tokens_carry_tenant_and_role(emulator, resources, user, group):
    claims = _claims(id_token(emulator.url, resources["userPoolId"], resources["userPoolClientId"], user))

    assert claims["custom:tenant"] == "demo"
    assert claims["cognito:groups"] == [group]
    assert claims["email"] == user
    assert claims["token_use"] == "id"
    assert claims["aud"] == resources["userPoolClientId"]
    assert claims["iss"] == resources["tokenIssuer"] == f"https://cognito-idp.us-east-1.amazonaws.com/{resources['userPoolId']}"


def test_the_platform_operator_has_no_tenant(emulator, resources):
    claims = _claims(id_token(emulator.url, resources["userPoolId"], resources["userPoolClientId"], c.PLATFORM_USER))

    assert claims["cognito:groups"] == ["platform"]
    assert "custom:tenant" not in claims
    assert claims["email_verified"] is True


def test_the_demo_registration_grants_the_demo_alb_target(resources):
    registration = demo_registration(resources)

    assert registration["allowedDomains"] == ["*.demo.test"]
    assert registration["targets"] == [
        {"id": c.DEMO_TARGET_ID, "type": "alb", "listenerArn": resources["listenerArn"], "targetGroupArn": resources["targetGroupArn"]}
    ]


def test_operators_client_has_no_secret(aws, resources):
    described = aws("cognito-idp").describe_user_pool_client(
        UserPoolId=resources["userPoolId"], ClientId=resources["userPoolClientId"]
    )["UserPoolClient"]
    assert "ClientSecret" not in described
    assert set(described["ExplicitAuthFlows"]) == {"ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}


def test_demo_load_balancer(aws, resources):
    elbv2 = aws("elbv2")
    (balancer,) = elbv2.describe_load_balancers(LoadBalancerArns=[resources["loadBalancerArn"]])["LoadBalancers"]
    assert (balancer["LoadBalancerName"], balancer["Scheme"], balancer["Type"]) == ("portcullis-demo", "internet-facing", "application")
    assert len({zone["ZoneName"] for zone in balancer["AvailabilityZones"]}) == 2

    (listener,) = elbv2.describe_listeners(ListenerArns=[resources["listenerArn"]])["Listeners"]
    assert (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
    assert listener["DefaultActions"][0]["Type"] == "fixed-response"
    assert listener["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    certificate = aws("acm").describe_certificate(CertificateArn=listener["Certificates"][0]["CertificateArn"])["Certificate"]
    assert (certificate["DomainName"], certificate["Status"]) == ("*.demo.test", "ISSUED")

    (group,) = elbv2.describe_target_groups(TargetGroupArns=[resources["targetGroupArn"]])["TargetGroups"]
    assert (group["TargetGroupName"], group["Protocol"], group["Port"], group["TargetType"]) == ("portcullis-demo-app", "HTTP", 80, "instance")
    health = elbv2.describe_target_health(TargetGroupArn=resources["targetGroupArn"])["TargetHealthDescriptions"]
    assert [h["TargetHealth"]["State"] for h in health] == ["healthy"]


def test_functions_env(emulator, resources):
    env = functions_env(emulator.url, resources, environ={"PORTCULLIS_ENV_POLL_SECONDS": "3", "RUST_LOG": "debug"})

    assert env["AWS_ENDPOINT_URL"] == emulator.url
    assert env["AWS_REGION"] == "us-east-1"
    assert env["PORTCULLIS_TABLE_NAME"] == "portcullis"
    assert env["PORTCULLIS_PROVISION_STATE_MACHINE_ARN"] == resources["provisionStateMachineArn"]
    assert env["PORTCULLIS_DEPROVISION_STATE_MACHINE_ARN"] == resources["deprovisionStateMachineArn"]
    assert env["PORTCULLIS_SETTINGS_STATE_MACHINE_ARN"] == resources["settingsStateMachineArn"]
    assert env["PORTCULLIS_JWKS_URL"] == f"{emulator.url}/{resources['userPoolId']}/.well-known/jwks.json"
    assert env["PORTCULLIS_TOKEN_ISSUER"] == resources["tokenIssuer"]
    assert env["PORTCULLIS_TOKEN_AUDIENCE"] == resources["userPoolClientId"]
    assert env["PORTCULLIS_OPERATORS_POOL_ID"] == resources["userPoolId"]
    assert env["PORTCULLIS_SERVICE_TOKEN_URL"] == f"{emulator.url}/{resources['userPoolId']}/oauth2/token"
    assert (env["PORTCULLIS_CERT_POLL_SECONDS"], env["PORTCULLIS_ENV_POLL_SECONDS"]) == ("1", "3")
    assert (env["PORTCULLIS_CERT_DEADLINE_SECONDS"], env["PORTCULLIS_ENV_DEADLINE_SECONDS"]) == ("60", "30")
    assert (env["RUST_LOG"], env["RUST_BACKTRACE"]) == ("debug", "1")
    assert env["PORTCULLIS_ALLOWED_ORIGINS"] == ""  # none unless the launcher names some
    portal = functions_env(emulator.url, resources, environ={"PORTCULLIS_ALLOWED_ORIGINS": "https://portal.test"})
    assert portal["PORTCULLIS_ALLOWED_ORIGINS"] == "https://portal.test"
    # A page token key of its own for every stack, long enough for the functions to accept.
    assert len(env["PORTCULLIS_PAGE_TOKEN_KEY"]) >= 32
    assert env["PORTCULLIS_PAGE_TOKEN_KEY"] != portal["PORTCULLIS_PAGE_TOKEN_KEY"]


def test_the_operators_pool_has_the_service_token_scopes(aws, resources):
    server = aws("cognito-idp").describe_resource_server(UserPoolId=resources["userPoolId"], Identifier="portcullis")
    names = sorted(scope["ScopeName"] for scope in server["ResourceServer"]["Scopes"])
    assert names == ["apps:read", "apps:write", "users:write"]


def test_jwks_is_served_where_the_functions_look(emulator, resources):
    import urllib.request

    env = functions_env(emulator.url, resources, environ={})
    with urllib.request.urlopen(env["PORTCULLIS_JWKS_URL"]) as response:
        keys = json.load(response)["keys"]
    token = id_token(emulator.url, resources["userPoolId"], resources["userPoolClientId"], c.ADMIN_USER)
    header = _decode(token.split(".")[0])
    assert header["kid"] in {key["kid"] for key in keys}

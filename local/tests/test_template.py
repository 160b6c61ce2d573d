"""template.py: infra/template.yaml translated to CloudFormation offline, and its packaged copy."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from portcullis_local.template import (
    DEFAULT_TEMPLATE,
    LOCAL_ARTIFACTS_BUCKET,
    REPO_ROOT,
    load_yaml,
    main,
    package_template,
    translate,
)

FUNCTIONS = {
    "AppsApiFunction": "apps-api",
    "TenantsApiFunction": "tenants-api",
    "UsersApiFunction": "users-api",
    "ProvisionerFunction": "provisioner",
}


@pytest.fixture(scope="module")
def translated() -> dict:
    return translate(DEFAULT_TEMPLATE)


def test_each_function_is_its_cargo_package_built_by_cargo_lambda():
    # What `sam build` relies on: CodeUri is the package, Binary its one bin (the Cargo package name).
    resources = load_yaml(DEFAULT_TEMPLATE)["Resources"]
    functions = {key for key, value in resources.items() if value["Type"] == "AWS::Serverless::Function"}
    assert functions == set(FUNCTIONS)
    for logical_id, binary in FUNCTIONS.items():
        resource = resources[logical_id]
        assert resource["Metadata"]["BuildMethod"] == "rust-cargolambda"
        assert resource["Metadata"]["BuildProperties"]["Binary"] == binary
        package = (DEFAULT_TEMPLATE.parent / resource["Properties"]["CodeUri"]).resolve()
        assert package == REPO_ROOT / "functions" / binary
        assert f'name = "{binary}"' in (package / "Cargo.toml").read_text()


def test_functions_become_arm64_lambdas_with_a_role_each(translated):
    resources = translated["Resources"]
    for logical_id, binary in FUNCTIONS.items():
        function = resources[logical_id]
        assert function["Type"] == "AWS::Lambda::Function"
        props = function["Properties"]
        assert props["Architectures"] == ["arm64"]
        assert props["Runtime"] == "provided.al2023"
        assert props["Handler"] == "bootstrap"
        assert props["Code"] == {"S3Bucket": LOCAL_ARTIFACTS_BUCKET, "S3Key": f"functions/{binary}"}
        assert props["Role"] == {"Fn::GetAtt": [f"{logical_id}Role", "Arn"]}
        role = resources[f"{logical_id}Role"]
        assert role["Type"] == "AWS::IAM::Role"
        statements = [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]
        assert any(s.get("Sid") == "Table" for s in statements)
    assert not [key for key, value in resources.items() if value["Type"].startswith("AWS::Serverless::")]


def test_the_api_body_is_openapi_yaml_and_the_state_machines_are_uploaded(translated):
    resources = translated["Resources"]
    body = resources["PortcullisApi"]["Properties"]["Body"]
    openapi = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text())
    assert "Fn::Transform" not in json.dumps(body)
    assert body["paths"].keys() == openapi["paths"].keys()
    for logical_id, name in (("ProvisionStateMachine", "provision"), ("DeprovisionStateMachine", "deprovision")):
        location = resources[logical_id]["Properties"]["DefinitionS3Location"]
        assert location == {"Bucket": LOCAL_ARTIFACTS_BUCKET, "Key": f"statemachine/{name}.asl.json"}


SMALL = """\
    AWSTemplateFormatVersion: "2010-09-09"
    Transform: AWS::Serverless-2016-10-31
    Resources:
      Table:
        Type: AWS::DynamoDB::Table
        Properties:
          KeySchema:
            - AttributeName: pk
              KeyType: HASH
          AttributeDefinitions:
            - AttributeName: pk
              AttributeType: S
          BillingMode: PAY_PER_REQUEST
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: {code_uri}
          Handler: bootstrap
          Runtime: provided.al2023
          Environment:
            Variables:
              TABLE: !Ref Table
              TABLE_ARN: !GetAtt Table.Arn
          Policies: {policies}
    """


def _small(tmp_path: Path, code_uri: str = "code/", policies: str = "[]") -> Path:
    (tmp_path / "code").mkdir(exist_ok=True)
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(SMALL).format(code_uri=code_uri, policies=policies))
    return path


def test_short_form_tags_read_as_their_long_forms(tmp_path):
    translated = translate(_small(tmp_path))
    variables = translated["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]
    assert variables == {"TABLE": {"Ref": "Table"}, "TABLE_ARN": {"Fn::GetAtt": ["Table", "Arn"]}}


def test_a_local_artifact_that_is_not_there_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Fn.CodeUri: missing/"):
        translate(_small(tmp_path, code_uri="missing/"))


def test_policy_names_other_than_aws_managed_ones_need_their_arn_offline(tmp_path):
    # AWS's managed policies are known by name without IAM; any other bare name would need IAM.
    role = translate(_small(tmp_path, policies="[AWSLambdaExecute]"))["Resources"]["FnRole"]["Properties"]
    assert "arn:aws:iam::aws:policy/AWSLambdaExecute" in role["ManagedPolicyArns"]
    with pytest.raises(ValueError, match="no AWS managed policy the translator knows"):
        translate(_small(tmp_path, policies="[SomeCustomerPolicy]"))
    arn = "arn:aws:iam::123456789012:policy/SomeCustomerPolicy"
    role = translate(_small(tmp_path, policies=f"[{arn}]"))["Resources"]["FnRole"]["Properties"]
    assert arn in role["ManagedPolicyArns"]


def test_package_points_the_functions_at_prebuilt_binaries(tmp_path):
    lambda_dir = tmp_path / "lambda"
    for binary in FUNCTIONS.values():
        (lambda_dir / binary).mkdir(parents=True)
        (lambda_dir / binary / "bootstrap").write_bytes(b"\x7fELF")
    packaged = package_template(DEFAULT_TEMPLATE, lambda_dir)
    resources = packaged["Resources"]
    for logical_id, binary in FUNCTIONS.items():
        assert resources[logical_id]["Properties"]["CodeUri"] == str(lambda_dir / binary)
        assert "BuildMethod" not in resources[logical_id]["Metadata"]
    assert resources["ProvisionStateMachine"]["Properties"]["DefinitionUri"] == str(
        REPO_ROOT / "statemachine" / "provision.asl.json"
    )
    include = resources["PortcullisApi"]["Properties"]["DefinitionBody"]["Fn::Transform"]
    assert include["Parameters"]["Location"] == str(REPO_ROOT / "openapi.yaml")
    # The written copy still translates (its paths are absolute now).
    assert main(["package", "--lambda-dir", str(lambda_dir)]) == 0
    copy = translate(lambda_dir / "template.yaml")
    assert copy["Resources"]["AppsApiFunction"]["Properties"]["Code"]["S3Key"].endswith("lambda/apps-api")


def test_package_needs_every_binary(tmp_path):
    with pytest.raises(FileNotFoundError, match="AppsApiFunction.CodeUri"):
        package_template(DEFAULT_TEMPLATE, tmp_path)


def test_cli_writes_the_translation(tmp_path, capsys):
    output = tmp_path / "out" / "translated.json"
    assert main(["translate", "--output", str(output)]) == 0
    assert json.loads(output.read_text())["Resources"]["AppsApiFunction"]["Type"] == "AWS::Lambda::Function"
    assert main(["translate", "--template", str(tmp_path / "nope.yaml"), "--output", str(output)]) == 1
    assert "FileNotFoundError" in capsys.readouterr().err

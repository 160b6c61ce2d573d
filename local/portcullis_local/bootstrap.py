"""Creates, in a fresh emulator, what Portcullis expects to find in an account.

Everything goes through boto3 against the emulator's endpoint, as an operator's deployment would,
so the same code documents the resources the product depends on:

- the DynamoDB table (what ``infra/template.yaml`` declares);
- the state machines from ``statemachine/*.asl.json`` with SAM-style ``${Name}`` substitutions;
- the operators' Cognito user pool whose ID tokens the API accepts (tenant ``demo``, an admin and a
  viewer);
- a demo shared ALB with an HTTPS listener and a target group with a healthy target, to provision
  apps onto.

The emulator is in-memory and starts empty, so nothing here tries to be idempotent.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import boto3

from . import constants as c

log = logging.getLogger(__name__)

DEFAULT_STATEMACHINE_DIR = Path(__file__).resolve().parents[2] / "statemachine"

DEFAULT_SUBSTITUTIONS: Mapping[str, str] = {
    "ProvisionerFunctionArn": c.PROVISIONER_FUNCTION_ARN,
    "TableName": c.TABLE_NAME,
}

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


class BootstrapError(RuntimeError):
    pass


def client(service: str, endpoint_url: str, config=None):
    # A session of its own: boto3's default session is shared with moto's Step Functions executor,
    # which creates clients from other threads, and client creation on one session is not thread-safe.
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name=c.REGION,
        aws_access_key_id=c.ACCESS_KEY_ID,
        aws_secret_access_key=c.SECRET_ACCESS_KEY,
        config=config,
    )


# --- state machines -------------------------------------------------------------------------------


def render_definition(text: str, substitutions: Mapping[str, str], source: str = "<definition>") -> str:
    """Apply ``DefinitionSubstitutions`` the way SAM does: every ``${Name}`` replaced by its value.

    A placeholder without a value fails loudly instead of reaching the executor as a literal string,
    where it would only surface as a confusing runtime error deep in an execution.  Values are
    JSON-escaped, since placeholders normally sit inside JSON strings.
    """
    missing = sorted({name for name in _PLACEHOLDER.findall(text) if name not in substitutions})
    if missing:
        raise BootstrapError(f"{source}: no substitution for {', '.join('${' + m + '}' for m in missing)}")
    rendered = _PLACEHOLDER.sub(lambda m: json.dumps(str(substitutions[m[1]]))[1:-1], text)
    try:
        json.loads(rendered)
    except ValueError as error:
        raise BootstrapError(f"{source}: not valid JSON after substitution: {error}") from error
    return rendered


def state_machine_name(path: Path) -> str:
    """``provision.asl.json`` → ``portcullis-provision``."""
    return c.STATE_MACHINE_PREFIX + path.name.removesuffix(".asl.json")


def create_state_machines(
    endpoint_url: str, directory: Path, substitutions: Mapping[str, str] = DEFAULT_SUBSTITUTIONS
) -> dict[str, str]:
    """Create one state machine per ``*.asl.json``; returns ``{name: arn}``."""
    sfn = client("stepfunctions", endpoint_url)
    machines = {}
    for path in sorted(directory.glob("*.asl.json")):
        name = state_machine_name(path)
        definition = render_definition(path.read_text(), substitutions, source=str(path))
        arn = sfn.create_state_machine(name=name, definition=definition, roleArn=c.state_machine_role_arn(name))[
            "stateMachineArn"
        ]
        machines[name] = arn
        log.info("state machine %s", arn)
    return machines


# --- DynamoDB --------------------------------------------------------------------------------------


def create_table(endpoint_url: str) -> None:
    dynamodb = client("dynamodb", endpoint_url)
    dynamodb.create_table(
        TableName=c.TABLE_NAME,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    # moto records the TTL setting but never expires items: tests must not wait for expiry.
    dynamodb.update_time_to_live(
        TableName=c.TABLE_NAME, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
    )


# --- operators' user pool -----------------------------------------------------------------------


def _jwt_claims(token: str) -> dict:
    """The payload of a JWT, unverified: only to check what the bootstrap itself just asked for."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def id_token(endpoint_url: str, pool_id: str, client_id: str, username: str, password: str = c.LOCAL_PASSWORD) -> str:
    cognito = client("cognito-idp", endpoint_url)
    result = cognito.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    return result["AuthenticationResult"]["IdToken"]


def create_operators_pool(endpoint_url: str) -> dict[str, str]:
    """The pool the API trusts: users sign in by email; tenant and role travel in the ID token."""
    cognito = client("cognito-idp", endpoint_url)
    pool_id = cognito.create_user_pool(
        PoolName=c.OPERATORS_POOL_NAME,
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        Schema=[{"Name": "tenant", "AttributeDataType": "String", "Mutable": True}],
    )["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=c.OPERATORS_CLIENT_NAME,
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]

    # Service tokens' scopes (on AWS, infra/template.yaml's ServiceTokenScopes makes the same).
    cognito.create_resource_server(
        UserPoolId=pool_id,
        Identifier=c.SERVICE_TOKEN_RESOURCE_SERVER,
        Name="Portcullis API",
        Scopes=[{"ScopeName": name, "ScopeDescription": description} for name, description in c.SERVICE_TOKEN_SCOPES],
    )
    for group in ("admin", "viewer", "platform"):
        cognito.create_group(UserPoolId=pool_id, GroupName=group)
    for email, group, tenant in (
        (c.ADMIN_USER, "admin", c.DEMO_TENANT),
        (c.VIEWER_USER, "viewer", c.DEMO_TENANT),
        (c.PLATFORM_USER, "platform", None),
    ):
        attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
        if tenant is not None:
            attributes.append({"Name": "custom:tenant", "Value": tenant})
        cognito.admin_create_user(UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS", UserAttributes=attributes)
        cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=c.LOCAL_PASSWORD, Permanent=True)
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=group)

    # The API's authorization rests on these two claims: check them once here rather than let a
    # drift in the emulator show up as 403s in every test.
    claims = _jwt_claims(id_token(endpoint_url, pool_id, client_id, c.ADMIN_USER))
    if claims.get("custom:tenant") != c.DEMO_TENANT or "admin" not in claims.get("cognito:groups", []):
        raise BootstrapError(f"operators' ID token lacks custom:tenant or cognito:groups: {claims}")
    return {"userPoolId": pool_id, "userPoolClientId": client_id, "issuer": claims["iss"]}


# --- demo shared ALB ------------------------------------------------------------------------------


def self_signed_certificate(common_name: str) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM).  Imported rather than requested so it is ISSUED at once,
    as a load balancer listener requires; moto would accept a pending one, AWS would not."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def amazon_linux_image(ec2) -> str:
    """An AMI id moto knows.  Filtered by name because describing all of moto's images costs a second."""
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}])["Images"]
    return images[0]["ImageId"]


def create_demo_load_balancer(endpoint_url: str) -> dict[str, str]:
    """A shared internet-facing ALB as a platform team would have: HTTPS:443 answering 404 by
    default (Portcullis adds host-header rules), and the app's target group with a healthy target."""
    ec2 = client("ec2", endpoint_url)
    elbv2 = client("elbv2", endpoint_url)
    acm = client("acm", endpoint_url)

    vpc_id = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for cidr, zone in (("10.40.1.0/24", f"{c.REGION}a"), ("10.40.2.0/24", f"{c.REGION}b"))
    ]
    security_group_id = ec2.create_security_group(
        GroupName="portcullis-demo-alb", Description="demo shared ALB", VpcId=vpc_id
    )["GroupId"]

    load_balancer_arn = elbv2.create_load_balancer(
        Name=c.DEMO_LOAD_BALANCER_NAME,
        Subnets=subnet_ids,
        SecurityGroups=[security_group_id],
        Scheme="internet-facing",
        Type="application",
    )["LoadBalancers"][0]["LoadBalancerArn"]

    certificate_pem, key_pem = self_signed_certificate(c.DEMO_CERTIFICATE_DOMAIN)
    certificate_arn = acm.import_certificate(Certificate=certificate_pem, PrivateKey=key_pem)["CertificateArn"]

    listener_arn = elbv2.create_listener(
        LoadBalancerArn=load_balancer_arn,
        Protocol="HTTPS",
        Port=443,
        Certificates=[{"CertificateArn": certificate_arn}],
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "Not found"},
            }
        ],
    )["Listeners"][0]["ListenerArn"]

    target_group_arn = elbv2.create_target_group(
        Name=c.DEMO_TARGET_GROUP_NAME, Protocol="HTTP", Port=80, VpcId=vpc_id, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    image_id = amazon_linux_image(ec2)
    instance_id = ec2.run_instances(
        ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=subnet_ids[0]
    )["Instances"][0]["InstanceId"]
    elbv2.register_targets(TargetGroupArn=target_group_arn, Targets=[{"Id": instance_id, "Port": 80}])

    health = elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
    states = [description["TargetHealth"]["State"] for description in health]
    if states != ["healthy"]:
        raise BootstrapError(f"demo target group is not healthy: {states}")
    return {
        "loadBalancerArn": load_balancer_arn,
        "listenerArn": listener_arn,
        "targetGroupArn": target_group_arn,
        "certificateArn": certificate_arn,
    }


# --- all of it ------------------------------------------------------------------------------------


def bootstrap(
    endpoint_url: str,
    statemachine_dir: Path = DEFAULT_STATEMACHINE_DIR,
    substitutions: Mapping[str, str] = DEFAULT_SUBSTITUTIONS,
) -> dict[str, str]:
    """Create everything; returns the identifiers the functions and the tests need.

    Keys: ``listenerArn``, ``targetGroupArn``, ``loadBalancerArn``, ``certificateArn``, ``userPoolId``,
    ``userPoolClientId``, ``tokenIssuer``, ``stateMachines`` (``{name: arn}``), and
    ``provisionStateMachineArn`` / ``deprovisionStateMachineArn`` / ``settingsStateMachineArn`` when those
    files exist.
    """
    create_table(endpoint_url)
    machines = create_state_machines(endpoint_url, statemachine_dir, substitutions)
    operators = create_operators_pool(endpoint_url)
    demo = create_demo_load_balancer(endpoint_url)

    result: dict = {
        **demo,
        "userPoolId": operators["userPoolId"],
        "userPoolClientId": operators["userPoolClientId"],
        "tokenIssuer": operators["issuer"],
        "stateMachines": machines,
    }
    for stem in ("provision", "deprovision", "settings"):
        arn = machines.get(c.STATE_MACHINE_PREFIX + stem)
        if arn:
            result[f"{stem}StateMachineArn"] = arn
        else:
            log.warning("no %s/%s.asl.json: the functions get no state machine ARN for it", statemachine_dir, stem)
    return result


# --- the demo tenant ------------------------------------------------------------------------------


def demo_registration(resources: Mapping[str, str]) -> dict:
    """What the demo tenant is granted: every host under demo.test and the demo ALB's target."""
    return {
        "displayName": "Demo",
        "allowedDomains": [f"*.{c.DEMO_CERTIFICATE_DOMAIN.removeprefix('*.')}"],
        "targets": [
            {
                "id": c.DEMO_TARGET_ID,
                "type": "alb",
                "listenerArn": resources["listenerArn"],
                "targetGroupArn": resources["targetGroupArn"],
            }
        ],
    }


def register_demo_tenant(api_url: str, endpoint_url: str, resources: Mapping[str, str]) -> dict:
    """Registers tenant ``demo`` through the API itself, as the platform operator would: the registry's
    own validation, grant guards and history apply.  Needs the functions up."""
    token = id_token(endpoint_url, resources["userPoolId"], resources["userPoolClientId"], c.PLATFORM_USER)
    request = urllib.request.Request(
        f"{api_url}/tenants/{c.DEMO_TENANT}",
        method="PUT",
        data=json.dumps(demo_registration(resources)).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as error:
        raise BootstrapError(f"registering tenant {c.DEMO_TENANT} failed: {error.code} {error.read()!r}") from error

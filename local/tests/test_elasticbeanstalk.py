"""patches/elasticbeanstalk.py: EB environments derive their ALB and health from ELBv2 state."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from botocore.exceptions import ClientError

from portcullis_local.bootstrap import amazon_linux_image

TAG = "elasticbeanstalk:environment-name"


@dataclass
class Environment:
    name: str
    load_balancer_arn: str | None = None
    target_group_arn: str | None = None
    instance_id: str | None = None


@pytest.fixture(scope="module")
def network(aws):
    ec2 = aws("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.77.{i}.0/24", AvailabilityZone=f"us-east-1{zone}")["Subnet"]["SubnetId"]
        for i, zone in ((1, "a"), (2, "b"))
    ]
    image_id = amazon_linux_image(ec2)
    certificate_arn = aws("acm").request_certificate(DomainName="eb.example.test")["CertificateArn"]
    return {"vpc_id": vpc_id, "subnets": subnets, "image_id": image_id, "certificate_arn": certificate_arn}


def _environment(aws, network, *, with_alb=True, with_target=True) -> Environment:
    """An EB environment set up as real EB would leave it: a tagged ALB, HTTPS:443 forwarding to a
    target group, a running instance registered."""
    suffix = uuid.uuid4().hex[:8]
    eb, elbv2, ec2 = aws("elasticbeanstalk"), aws("elbv2"), aws("ec2")
    app = f"app-{suffix}"
    env = Environment(name=f"env-{suffix}")
    eb.create_application(ApplicationName=app)
    eb.create_environment(ApplicationName=app, EnvironmentName=env.name, SolutionStackName="64bit Amazon Linux 2023 v4.6.0 running Python 3.12")
    if not with_alb:
        return env
    env.load_balancer_arn = elbv2.create_load_balancer(
        Name=f"awseb-{suffix}", Subnets=network["subnets"], Scheme="internet-facing", Type="application",
        Tags=[{"Key": TAG, "Value": env.name}],
    )["LoadBalancers"][0]["LoadBalancerArn"]
    env.target_group_arn = elbv2.create_target_group(
        Name=f"awseb-tg-{suffix}", Protocol="HTTP", Port=80, VpcId=network["vpc_id"], TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=env.load_balancer_arn, Protocol="HTTPS", Port=443,
        Certificates=[{"CertificateArn": network["certificate_arn"]}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": env.target_group_arn}],
    )
    if with_target:
        env.instance_id = ec2.run_instances(ImageId=network["image_id"], MinCount=1, MaxCount=1, SubnetId=network["subnets"][0])["Instances"][0]["InstanceId"]
        elbv2.register_targets(TargetGroupArn=env.target_group_arn, Targets=[{"Id": env.instance_id}])
    return env


def _describe(aws, name: str) -> dict:
    (description,) = aws("elasticbeanstalk").describe_environments(EnvironmentNames=[name])["Environments"]
    return description


def test_environment_with_a_healthy_target_is_green_and_names_its_alb_by_arn(aws, network):
    env = _environment(aws, network)

    description = _describe(aws, env.name)
    resources = aws("elasticbeanstalk").describe_environment_resources(EnvironmentName=env.name)["EnvironmentResources"]

    assert description["Status"] == "Ready"
    assert description["Health"] == "Green"
    assert description["HealthStatus"] == "Ok"
    assert description["EnvironmentId"].startswith("e-")
    assert resources["EnvironmentName"] == env.name
    assert resources["LoadBalancers"] == [{"Name": env.load_balancer_arn}]
    assert resources["Instances"] == [{"Id": env.instance_id}]
    # The ARN leads to the ALB's HTTPS listener, which is how Portcullis wires an EB target.
    listeners = aws("elbv2").describe_listeners(LoadBalancerArn=resources["LoadBalancers"][0]["Name"])["Listeners"]
    assert [(l["Protocol"], l["Port"]) for l in listeners] == [("HTTPS", 443)]


def test_environment_whose_target_is_unhealthy_is_not_green(aws, network):
    env = _environment(aws, network)
    aws("ec2").stop_instances(InstanceIds=[env.instance_id])  # ELBv2 then reports it "unused"

    description = _describe(aws, env.name)

    assert description["Health"] == "Red"
    assert description["HealthStatus"] == "Severe"


def test_environment_without_targets_is_grey(aws, network):
    env = _environment(aws, network, with_target=False)

    assert _describe(aws, env.name)["Health"] == "Grey"


def test_environment_without_alb_is_grey_with_no_load_balancer(aws, network):
    env = _environment(aws, network, with_alb=False)

    resources = aws("elasticbeanstalk").describe_environment_resources(EnvironmentName=env.name)["EnvironmentResources"]

    assert _describe(aws, env.name)["Health"] == "Grey"
    assert resources["LoadBalancers"] == []


def test_describe_environments_honours_its_filters(aws, network):
    first, second = _environment(aws, network, with_alb=False), _environment(aws, network, with_alb=False)
    eb = aws("elasticbeanstalk")

    by_name = eb.describe_environments(EnvironmentNames=[first.name])["Environments"]
    by_id = eb.describe_environments(EnvironmentIds=[_describe(aws, second.name)["EnvironmentId"]])["Environments"]

    assert [e["EnvironmentName"] for e in by_name] == [first.name]
    assert [e["EnvironmentName"] for e in by_id] == [second.name]


def test_environment_health_answers(aws, network):
    env = _environment(aws, network)

    health = aws("elasticbeanstalk").describe_environment_health(EnvironmentName=env.name, AttributeNames=["All"])

    assert health["Color"] == "Green"
    assert health["HealthStatus"] == "Ok"
    assert health["Status"] == "Ready"
    assert health["InstancesHealth"]["Ok"] == 1


def test_unknown_environment_is_invalid_parameter(aws):
    with pytest.raises(ClientError) as error:
        aws("elasticbeanstalk").describe_environment_resources(EnvironmentName="no-such-env")
    assert error.value.response["Error"]["Code"] == "InvalidParameterValue"

"""Elastic Beanstalk environments backed by the ELBv2 load balancer that real EB would have made.

Real EB: a load-balanced web environment owns an Application Load Balancer, which EB tags
``elasticbeanstalk:environment-name = <environment name>``; its default process is a target group
the ALB forwards to.  ``DescribeEnvironmentResources`` lists that ALB by ARN under
``LoadBalancers[].Name`` (and the instances, auto scaling groups, … it runs), and the environment's
``Health`` colour follows the health checks of its instances: Green when they pass, Yellow when
some fail, Red when all fail, Grey when there is nothing to judge.

moto 5.2.5 keeps environments as bare records: ``DescribeEnvironments`` ignores its filters and always
says Ready / Grey with an empty ``EnvironmentId``; ``DescribeEnvironmentResources`` and
``DescribeEnvironmentHealth`` are not implemented (HTTP 500).

This patch derives everything from the ELBv2 (and EC2) state in the same account and region, so a
test sets up an environment the way EB would (create the ALB with the tag, a listener forwarding to
a target group, register instances) and the EB API reflects it:

- the environment's load balancer is the ELBv2 *application* load balancer carrying the tag;
- its target groups are those the ALB routes to (listener default actions and rules) plus any target
  group carrying the same tag;
- ``Health``: Grey without an ALB or without registered targets; Green when every target is
  ``healthy``; Red when none is; Yellow in between.  ``HealthStatus`` follows (NoData/Ok/Warning/
  Severe).  ``Status`` stays moto's (Ready);
- ``EndpointURL`` is the ALB's DNS name, as for a real load-balanced environment;
- environments get an ``e-…`` id, and ``DescribeEnvironments`` honours ``ApplicationName``,
  ``EnvironmentNames`` and ``EnvironmentIds``.
"""

from __future__ import annotations

import functools
import secrets
import string
from dataclasses import dataclass, field

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.elasticbeanstalk.exceptions import InvalidParameterValueError
from moto.elasticbeanstalk.models import EBBackend, Environment
from moto.elasticbeanstalk.responses import EBResponse

ENVIRONMENT_NAME_TAG = "elasticbeanstalk:environment-name"

_HEALTH_STATUS = {"Grey": "NoData", "Green": "Ok", "Yellow": "Warning", "Red": "Severe"}


@dataclass
class EnvironmentView:
    """What the ELBv2/EC2 state says about one environment."""

    load_balancer: object | None = None  # moto's FakeLoadBalancer
    target_states: dict[str, str] = field(default_factory=dict)  # target id -> ELBv2 health state

    @property
    def color(self) -> str:
        if self.load_balancer is None or not self.target_states:
            return "Grey"
        healthy = sum(1 for state in self.target_states.values() if state == "healthy")
        if healthy == len(self.target_states):
            return "Green"
        return "Red" if healthy == 0 else "Yellow"

    @property
    def health_status(self) -> str:
        return _HEALTH_STATUS[self.color]


def _elbv2_backend(account_id: str, region: str):
    from moto.elbv2.models import elbv2_backends

    return elbv2_backends[account_id][region]


def inspect_environment(environment: Environment) -> EnvironmentView:
    elbv2 = _elbv2_backend(environment.application.account_id, environment.region)
    name = environment.environment_name

    def tagged(arn: str) -> bool:
        return elbv2.tagging_service.get_tag_dict_for_resource(arn).get(ENVIRONMENT_NAME_TAG) == name

    load_balancer = next(
        (lb for lb in elbv2.load_balancers.values() if lb.type == "application" and tagged(lb.arn)),
        None,
    )
    view = EnvironmentView(load_balancer=load_balancer)
    if load_balancer is None:
        return view
    for target_group in elbv2.target_groups.values():
        if load_balancer.arn in target_group.load_balancer_arns or tagged(target_group.arn):
            for health in elbv2.describe_target_health(target_group.arn, []):
                # A target in several groups counts as unhealthy if any group says so.
                previous = view.target_states.get(health.instance_id, "healthy")
                view.target_states[health.instance_id] = health.status if previous == "healthy" else previous
    return view


def _refresh(environment: Environment) -> EnvironmentView:
    """Update the attributes moto's serializer reads for ``EnvironmentDescription``."""
    view = inspect_environment(environment)
    environment.health = view.color
    environment.health_status = view.health_status
    environment.endpoint_url = view.load_balancer.dns_name if view.load_balancer is not None else ""
    return view


def _new_environment_id() -> str:
    return "e-" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10))


def _find_environment(backend: EBBackend, name: str | None, environment_id: str | None) -> Environment:
    for environment in backend.describe_environments():
        if (name and environment.environment_name == name) or (
            environment_id and environment.environment_id == environment_id
        ):
            return environment
    if name:
        raise InvalidParameterValueError(f"No Environment found for EnvironmentName = '{name}'.")
    if environment_id:
        raise InvalidParameterValueError(f"No Environment found for EnvironmentId = '{environment_id}'.")
    raise InvalidParameterValueError("Either EnvironmentName or EnvironmentId must be specified.")


def describe_environments(self: EBResponse) -> ActionResult:
    application_name = self._get_param("ApplicationName")
    names = set(self._get_param("EnvironmentNames") or [])
    ids = set(self._get_param("EnvironmentIds") or [])
    environments = [
        environment
        for environment in self.elasticbeanstalk_backend.describe_environments()
        if (not application_name or environment.application_name == application_name)
        and (not names or environment.environment_name in names)
        and (not ids or environment.environment_id in ids)
    ]
    for environment in environments:
        _refresh(environment)
    return ActionResult({"Environments": environments})


def describe_environment_resources(self: EBResponse) -> ActionResult:
    environment = _find_environment(
        self.elasticbeanstalk_backend, self._get_param("EnvironmentName"), self._get_param("EnvironmentId")
    )
    view = _refresh(environment)
    return ActionResult(
        {
            "EnvironmentResources": {
                "EnvironmentName": environment.environment_name,
                "AutoScalingGroups": [],
                "Instances": [{"Id": target} for target in view.target_states if target.startswith("i-")],
                "LaunchConfigurations": [],
                "LaunchTemplates": [],
                # Real EB names an ALB by its ARN here (a Classic ELB by its name).
                "LoadBalancers": [{"Name": view.load_balancer.arn}] if view.load_balancer is not None else [],
                "Triggers": [],
                "Queues": [],
            }
        }
    )


def describe_environment_health(self: EBResponse) -> ActionResult:
    environment = _find_environment(
        self.elasticbeanstalk_backend, self._get_param("EnvironmentName"), self._get_param("EnvironmentId")
    )
    view = _refresh(environment)
    states = list(view.target_states.values())
    return ActionResult(
        {
            "EnvironmentName": environment.environment_name,
            "HealthStatus": view.health_status,
            "Status": environment.status,
            "Color": view.color,
            "Causes": [] if view.color in ("Green", "Grey") else ["Some instances are failing health checks."],
            "InstancesHealth": {
                "NoData": 0,
                "Unknown": 0,
                "Pending": 0,
                "Ok": states.count("healthy"),
                "Info": 0,
                "Warning": 0,
                "Degraded": 0,
                "Severe": len(states) - states.count("healthy"),
            },
            "RefreshedAt": utcnow(),
        }
    )


def apply() -> None:
    if getattr(EBResponse.describe_environments, "__portcullis_patch__", False):
        return

    original_init = Environment.__init__

    @functools.wraps(original_init)
    def environment_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.environment_id = _new_environment_id()

    Environment.__init__ = environment_init
    for handler in (describe_environments, describe_environment_resources, describe_environment_health):
        handler.__portcullis_patch__ = True
        setattr(EBResponse, handler.__name__, handler)

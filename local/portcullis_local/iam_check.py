"""The IAM check: every AWS action a function (or state machine) performed during the tests, as recorded
by ``iam_audit``, held against that caller's role in the translated ``infra/template.yaml``.

- **Callers and roles.** The SAM transform turns each function's ``Policies`` into an
  ``AWS::IAM::Role`` and points the function's ``Role`` at it (``Fn::GetAtt [<Fn>Role, Arn]``); a state
  machine's ``RoleArn`` likewise. A function's caller name is ``portcullis-`` and its logical id without
  ``Function`` in kebab-case (``AppsApiFunction`` → ``portcullis-apps-api``, the app name it passes to
  ``load_aws_config``); a state machine's is its ``Name`` (``portcullis-provision``).
- **Evaluation is action-level.** An action is allowed when an ``Allow`` statement's ``Action`` matches
  it (``*`` and ``?`` wildcards, case-insensitive) and no ``Deny`` whose ``Resource`` is ``"*"`` matches
  it. ``Condition`` blocks and resource ARNs are not evaluated (the ARNs are templates of the deployed
  names and the conditions need the request context IAM sees), so a resource-scoped ``Deny`` never
  denies here.
- **Dependent actions.** Some calls are also authorized as other actions, with the caller's rights
  (:data:`IMPLIED`): a caller that performs the first needs the second too, and a granted action that
  only such a call needs is "authorized implicitly", not unused. So is one the AWS service itself uses
  with the role (a state machine's log delivery).
- **Managed policies** SAM attaches (:data:`MANAGED_POLICIES`) serve the Lambda service and runtime
  (logs, X-Ray): they count for allowing, and are never listed as unused.

Exit status: 1 when a caller performed an action its role does not allow, a caller has no role in the
template, or no function call was recorded at all; granted actions no test exercised are listed, and
fail only with ``--strict``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .gateway import kebab_case
from .template import translate

FUNCTION_CALLER_PREFIX = "portcullis-"
FUNCTION = "AWS::Lambda::Function"
STATE_MACHINE = "AWS::StepFunctions::StateMachine"


@dataclass(frozen=True)
class Implied:
    """``action`` is authorized, with the caller's rights, whenever the caller performs one of ``through``;
    with no ``through``, the AWS service itself uses it with the role (no call of the code needs it).
    ``holder``: the CloudFormation type of the roles it applies to (None: any)."""

    action: str
    through: tuple[str, ...]
    reason: str
    holder: str | None = None

    def describe(self) -> str:
        return f"through {' / '.join(self.through)}" if self.through else "by the service itself"


# Elastic Beanstalk lists an environment's resources by reading its CloudFormation stack, Auto Scaling
# group and instances with the caller's rights (InsufficientPrivileges otherwise).
_BEANSTALK_RESOURCES = ("elasticbeanstalk:DescribeEnvironmentResources",)
IMPLIED: tuple[Implied, ...] = (
    Implied(
        "acm:AddTagsToCertificate",
        ("acm:RequestCertificate",),
        "RequestCertificate with Tags is also authorized as AddTagsToCertificate (a dependent action)",
    ),
    Implied(
        "cognito-idp:TagResource",
        ("cognito-idp:CreateUserPool", "cognito-idp:UpdateUserPool"),
        "CreateUserPool and UpdateUserPool with UserPoolTags are also authorized as TagResource (a dependent action)",
    ),
    Implied(
        "elasticloadbalancing:AddTags",
        ("elasticloadbalancing:CreateRule",),
        "CreateRule with Tags is also authorized as AddTags on the new rule (a dependent action)",
    ),
    Implied(
        "cognito-idp:DescribeUserPoolClient",
        ("elasticloadbalancing:CreateRule", "elasticloadbalancing:ModifyRule"),
        "ELB reads the app client with the caller's rights when a rule authenticates with Cognito",
    ),
    *(
        Implied(
            action,
            _BEANSTALK_RESOURCES,
            "Elastic Beanstalk reads what the environment is built from with the caller's rights",
        )
        for action in (
            "cloudformation:DescribeStackResource",
            "cloudformation:DescribeStackResources",
            "autoscaling:DescribeAutoScalingGroups",
            "ec2:DescribeInstances",
        )
    ),
    # The provisioner's asynchronous invocations (EventBridge's notices of ended runs): Lambda sends one
    # it could not handle to the on-failure destination with the function's role.
    Implied(
        "sqs:SendMessage",
        (),
        "Lambda sends an asynchronous invocation that failed to its on-failure destination with the function's role",
        holder=FUNCTION,
    ),
    # A state machine with Logging: Step Functions sets up and uses the log delivery with its role.
    *(
        Implied(
            action,
            (),
            "Step Functions delivers the execution log to CloudWatch Logs with the state machine's role",
            holder=STATE_MACHINE,
        )
        for action in (
            "logs:CreateLogDelivery",
            "logs:GetLogDelivery",
            "logs:UpdateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:DescribeResourcePolicies",
            "logs:DescribeLogGroups",
        )
    ),
)

# The AWS managed policies SAM attaches (by name), with their actions. Any other is reported as not
# evaluated, and allows nothing here.
MANAGED_POLICIES: dict[str, tuple[str, ...]] = {
    # Every function: its log group and streams.
    "AWSLambdaBasicExecutionRole": ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"),
    # Tracing: Active.
    "AWSXrayWriteOnlyAccess": (
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
    ),
}


# --- the template ---------------------------------------------------------------------------------


@dataclass
class Principal:
    """A caller and its role: ``statements`` of its inline policies, ``managed`` policy names."""

    caller: str
    resource: str
    role: str
    statements: list[dict] = field(default_factory=list)
    managed: list[str] = field(default_factory=list)
    kind: str = FUNCTION


def caller_name(logical_id: str, resource: Mapping) -> str | None:
    properties = resource.get("Properties") or {}
    if resource.get("Type") == FUNCTION:
        return FUNCTION_CALLER_PREFIX + kebab_case(logical_id.removesuffix("Function"))
    if resource.get("Type") == STATE_MACHINE:
        name = properties.get("StateMachineName")
        return name if isinstance(name, str) else None
    return None


def principals(translated: Mapping) -> dict[str, Principal]:
    """Every function and state machine of the translated template whose role is in it, by caller name."""
    resources = translated.get("Resources", {})
    found = {}
    for logical_id, resource in resources.items():
        caller = caller_name(logical_id, resource)
        properties = resource.get("Properties") or {}
        role_ref = properties.get("Role") or properties.get("RoleArn")
        if caller is None or not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
            continue
        role_id = role_ref["Fn::GetAtt"][0]
        role = resources[role_id]["Properties"]
        statements = [
            statement
            for policy in role.get("Policies", [])
            for statement in _as_list(policy["PolicyDocument"].get("Statement", []))
        ]
        managed = [_managed_name(arn) for arn in role.get("ManagedPolicyArns", [])]
        found[caller] = Principal(caller, logical_id, role_id, statements, managed, resource["Type"])
    return found


def _managed_name(arn) -> str:
    return arn.rsplit("/", 1)[-1] if isinstance(arn, str) else json.dumps(arn)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# --- evaluation -----------------------------------------------------------------------------------


@cache
def _pattern(action_pattern: str) -> re.Pattern:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in action_pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL)


def matches(action_pattern: str, action: str) -> bool:
    """IAM action matching: ``*`` any run of characters, ``?`` one, case-insensitive."""
    return _pattern(action_pattern).fullmatch(action) is not None


def _statement_matches(statement: Mapping, action: str) -> bool:
    if "NotAction" in statement:
        return not any(matches(p, action) for p in _as_list(statement["NotAction"]))
    return any(matches(p, action) for p in _as_list(statement.get("Action", [])))


def _label(statement: Mapping, index: int) -> str:
    return f"statement {statement['Sid']}" if "Sid" in statement else f"statement #{index + 1}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    why: str


def decide(principal: Principal, action: str) -> Decision:
    """Whether the role allows ``action`` (action-level: see the module's docstring)."""
    for index, statement in enumerate(principal.statements):
        if statement.get("Effect") == "Deny" and "*" in _as_list(statement.get("Resource")):
            if _statement_matches(statement, action):
                return Decision(False, f"denied by {_label(statement, index)}")
    for index, statement in enumerate(principal.statements):
        if statement.get("Effect") == "Allow" and _statement_matches(statement, action):
            return Decision(True, f"allowed by {_label(statement, index)}")
    for name in principal.managed:
        if any(matches(p, action) for p in MANAGED_POLICIES.get(name, ())):
            return Decision(True, f"allowed by managed policy {name}")
    return Decision(False, "no statement allows it")


def granted(principal: Principal) -> list[str]:
    """The action patterns the role's inline ``Allow`` statements name, in order, once each."""
    seen: dict[str, None] = {}
    for statement in principal.statements:
        if statement.get("Effect") == "Allow":
            for pattern in _as_list(statement.get("Action", [])):
                seen.setdefault(pattern, None)
    return list(seen)


# --- the check ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    caller: str
    action: str
    count: int
    message: str


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)
    # caller → granted action patterns no recorded call (direct or implied) used
    unexercised: dict[str, list[str]] = field(default_factory=dict)
    # caller → [(granted pattern, the Implied entry it serves)]
    implicit: dict[str, list[tuple[str, Implied]]] = field(default_factory=dict)
    # caller → [(granted pattern, the Implied entry)] whose through-action no test performed
    implicit_unexercised: dict[str, list[tuple[str, Implied]]] = field(default_factory=dict)
    silent: list[str] = field(default_factory=list)
    unknown_managed: dict[str, list[str]] = field(default_factory=dict)

    nothing_recorded: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.violations) or self.nothing_recorded

    def unused(self) -> bool:
        return any(self.unexercised.values()) or any(self.implicit_unexercised.values())


def check(calls: Mapping[str, Mapping[str, int]], roles: Mapping[str, Principal]) -> Report:
    """``calls`` is ``{caller: {action: count}}`` (calls.json's ``calls``)."""
    report = Report(nothing_recorded=not any(calls.values()))
    for caller, actions in sorted(calls.items()):
        principal = roles.get(caller)
        if principal is None:
            known = ", ".join(sorted(roles)) or "none"
            for action, count in sorted(actions.items()):
                message = f"{caller} called {action} but has no role in the template (known: {known})"
                report.violations.append(Violation(caller, action, count, message))
            continue
        for action, count in sorted(actions.items()):
            decision = decide(principal, action)
            if not decision.allowed:
                report.violations.append(
                    Violation(
                        caller,
                        action,
                        count,
                        f"{caller} called {action} but its role ({principal.role}) does not allow it: {decision.why}",
                    )
                )
            for implied in _applying(principal):
                if any(matches(t, action) for t in implied.through):
                    dependent = decide(principal, implied.action)
                    if not dependent.allowed:
                        report.violations.append(
                            Violation(
                                caller,
                                implied.action,
                                count,
                                f"{caller} called {action}, which AWS also authorizes as {implied.action} "
                                f"({implied.reason}), but its role ({principal.role}) does not allow "
                                f"{implied.action}: {dependent.why}",
                            )
                        )

    for caller, principal in sorted(roles.items()):
        performed = set(calls.get(caller, {}))
        if not performed:
            report.silent.append(caller)
        unknown = [name for name in principal.managed if name not in MANAGED_POLICIES]
        if unknown:
            report.unknown_managed[caller] = unknown
        for pattern in granted(principal):
            if any(matches(pattern, action) for action in performed):
                continue
            serving = [i for i in _applying(principal) if matches(pattern, i.action)]
            if not serving:
                report.unexercised.setdefault(caller, []).append(pattern)
                continue
            used = [i for i in serving if not i.through or any(matches(t, a) for t in i.through for a in performed)]
            if used:
                report.implicit.setdefault(caller, []).extend((pattern, i) for i in used)
            else:
                report.implicit_unexercised.setdefault(caller, []).extend((pattern, i) for i in serving)
    return report


def _applying(principal: Principal) -> list[Implied]:
    return [i for i in IMPLIED if i.holder in (None, principal.kind)]


def render(report: Report, roles: Mapping[str, Principal], recording: Mapping, source: str) -> str:
    calls = recording.get("calls", {})
    total = sum(sum(a.values()) for a in calls.values())
    harness = sum(recording.get("harness", {}).values())
    lines = [
        f"IAM check: {total} calls by {len(calls)} callers ({source}) against {len(roles)} roles",
        "  action-level: Conditions (tags) and resource ARNs are not evaluated; see docs/local-stack.md",
        f"  not checked: {harness} signed calls without an app name (the local tooling and tests), "
        f"{recording.get('unsigned', 0)} unsigned requests",
    ]
    if report.nothing_recorded:
        lines += ["", "FAILED: no call of any function was recorded (did the black-box tests run under test-run?)"]
    if report.violations:
        lines += ["", f"FAILED: {len(report.violations)} action(s) not allowed"]
        lines += [f"  {v.message} ({v.count}×)" for v in report.violations]
    if report.silent:
        lines += ["", "no calls recorded for: " + ", ".join(report.silent)]
    for caller, names in sorted(report.unknown_managed.items()):
        lines.append(f"{caller}: managed policies not evaluated (actions unknown to the check): {', '.join(names)}")
    lines += ["", "granted but not exercised by any test (a code path no test reaches, or a grant to remove):"]
    unused = False
    for caller in sorted(roles):
        for pattern in report.unexercised.get(caller, []):
            lines.append(f"  {caller}: {pattern}")
            unused = True
        for pattern, implied in report.implicit_unexercised.get(caller, []):
            lines.append(f"  {caller}: {pattern} (authorized implicitly {implied.describe()}, which no test performed)")
            unused = True
    if not unused:
        lines.append("  none")
    # One line per caller and reason.
    implicit: dict[tuple[str, str, str], list[str]] = {}
    for caller in sorted(roles):
        for pattern, implied in report.implicit.get(caller, []):
            implicit.setdefault((caller, implied.describe(), implied.reason), []).append(pattern)
    if implicit:
        lines += ["", "granted, authorized implicitly (never called by the code itself):"]
        lines += [
            f"  {caller}: {', '.join(patterns)} {how}: {reason}" for (caller, how, reason), patterns in implicit.items()
        ]
    lines.append("")
    lines.append("IAM check failed" if report.failed else "IAM check passed: every recorded action is allowed")
    return "\n".join(lines)


def run(calls_path: Path, template_path: Path, strict: bool = False, out=sys.stdout) -> int:
    recording = json.loads(Path(calls_path).read_text())
    roles = principals(translate(template_path))
    report = check(recording.get("calls", {}), roles)
    print(render(report, roles, recording, str(calls_path)), file=out)
    if report.failed:
        return 1
    if strict and report.unused():
        print("IAM check (--strict): granted actions that no test exercised", file=out)
        return 1
    return 0


"""The local stand-in for the template's ``WorkflowEndedRule``: EventBridge's notices of runs that ended.

On AWS, Step Functions reports every execution status change to EventBridge, and the rule sends those
of the two state machines that ended FAILED, TIMED_OUT or ABORTED to the provisioner.  moto reports
nothing, so this watcher looks at both machines' executions and, for each that ended with a status the
rule's pattern names, invokes the rule's function target with the event EventBridge would send: at
least once, again while the function fails (EventBridge's retry policy), never for a run that ended
before the watcher started.  The statuses and the target are read from ``infra/template.yaml``, so the
local stack follows the rule rather than a copy of it.  The rule's SNS target is not stood in for.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import constants as c
from .bootstrap import client
from .gateway import kebab_case
from .invoke import LambdaEndpoint

log = logging.getLogger(__name__)

RULE = "WorkflowEndedRule"
DETAIL_TYPE = "Step Functions Execution Status Change"
# Beyond this many failed deliveries of one notice, give up (EventBridge's MaximumRetryAttempts).
MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class Rule:
    statuses: frozenset[str]
    function: str  # the local function name of the rule's Lambda target

    @classmethod
    def from_template(cls, path: Path) -> Rule:
        with open(path) as stream:
            template = yaml.safe_load(stream)
        properties = template["Resources"][RULE]["Properties"]
        pattern = properties["EventPattern"]
        if pattern["source"] != ["aws.states"] or pattern["detail-type"] != [DETAIL_TYPE]:
            raise ValueError(f"{RULE} does not match Step Functions' status changes: {pattern}")
        logical_ids = [
            target["Arn"]["Fn::GetAtt"][0]
            for target in properties["Targets"]
            if isinstance(target["Arn"], dict) and "Fn::GetAtt" in target["Arn"]
        ]
        functions = [kebab_case(i.removesuffix("Function")) for i in logical_ids if i.endswith("Function")]
        if len(functions) != 1:
            raise ValueError(f"{RULE} must have exactly one function target, has {logical_ids}")
        return cls(frozenset(pattern["detail"]["status"]), functions[0])


def _millis(moment) -> int | None:
    return int(moment.timestamp() * 1000) if isinstance(moment, datetime.datetime) else None


def notice(execution: dict) -> dict:
    """The event EventBridge delivers for this ended execution (``describe_execution``'s answer)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": "aws.states",
        "account": c.ACCOUNT_ID,
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": c.REGION,
        "resources": [execution["executionArn"]],
        "detail": {
            "executionArn": execution["executionArn"],
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"],
            "status": execution["status"],
            "startDate": _millis(execution.get("startDate")),
            "stopDate": _millis(execution.get("stopDate")),
            "input": execution.get("input"),
            "output": execution.get("output"),
            "error": execution.get("error"),
            "cause": execution.get("cause"),
        },
    }


class RunEvents:
    """Watches the state machines' executions and delivers the rule's notices."""

    def __init__(self, endpoint_url: str, lambda_endpoint: LambdaEndpoint, rule: Rule, interval: float = 0.5):
        self.sfn = client("stepfunctions", endpoint_url)
        self.lambda_endpoint = lambda_endpoint
        self.rule = rule
        self.interval = interval
        self.attempts: dict[str, int] = {}  # execution ARN -> failed deliveries
        self.done: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RunEvents:
        self.skip_ended_so_far()
        self._thread = threading.Thread(target=self._run, name="run-events", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def skip_ended_so_far(self) -> None:
        """What ended before the watcher started is not news."""
        self.done.update(self._ended())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.deliver_once()
            except Exception:  # noqa: BLE001 - the emulator stopping under us, a transient error
                log.exception("run events: a round failed")

    def _ended(self) -> list[str]:
        arns = []
        for machine in self.sfn.list_state_machines()["stateMachines"]:
            for status in sorted(self.rule.statuses):
                pages = self.sfn.get_paginator("list_executions").paginate(
                    stateMachineArn=machine["stateMachineArn"], statusFilter=status
                )
                arns.extend(e["executionArn"] for page in pages for e in page["executions"])
        return arns

    def deliver_once(self) -> int:
        """Deliver the notice of every newly ended run; returns how many were delivered."""
        delivered = 0
        for arn in self._ended():
            if arn in self.done:
                continue
            event = notice(self.sfn.describe_execution(executionArn=arn))
            result = self.lambda_endpoint.invoke(self.rule.function, json.dumps(event).encode())
            if result.status == 200 and result.function_error() is None:
                self.done.add(arn)
                delivered += 1
                continue
            self.attempts[arn] = self.attempts.get(arn, 0) + 1
            log.warning("run events: %s refused the notice of %s (%s)", self.rule.function, arn, result.body[:300])
            if self.attempts[arn] >= MAX_ATTEMPTS:
                log.error("run events: giving up on %s after %d attempts", arn, MAX_ATTEMPTS)
                self.done.add(arn)
        return delivered

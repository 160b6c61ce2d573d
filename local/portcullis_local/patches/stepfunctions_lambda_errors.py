"""A Task that invokes a function by ARN fails ``Lambda.<error code>`` when the Invoke call itself fails.

Real Step Functions: when Lambda refuses or fails the Invoke (throttled, a service error), the task
fails with ``Lambda.TooManyRequestsException``, ``Lambda.ServiceException``, … — the names the
state machines' Retry lists (``statemachine/*.asl.json``), for ``arn:aws:states:::lambda:invoke`` and
for a function ARN alike ("Handle transient Lambda service exceptions" in the Step Functions guide).

moto 5.2.5's executor names them so only for ``lambda:invoke``; a task whose Resource is a function
ARN, as Portcullis's are, fails with a bare ``Exception`` that no Retry matches, so a throttled
invocation that AWS would retry fails the run locally (seen with injected faults, faults.py).

The patch gives the function-ARN task the service integration's naming for a refused Invoke. A
function's own error (``X-Amz-Function-Error``) keeps its ``errorType``, as before.
"""

from __future__ import annotations

import functools

from botocore.exceptions import ClientError


def apply() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
        StateTaskServiceLambda,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = StateTaskLambda._from_error

    @functools.wraps(original)
    def _from_error(self, env, ex: Exception):
        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        error, cause = StateTaskServiceLambda._error_cause_from_client_error(ex)
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(error),
            event_type=HistoryEventType.LambdaFunctionFailed,
            event_details=EventDetails(
                lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=error, cause=cause)
            ),
        )

    StateTaskLambda._from_error = _from_error

"""Fidelity patches: places where moto 5.2.5 differs from AWS in a way Portcullis depends on.

Each module documents the real behaviour it models, patches moto in ``apply()`` and is covered by
tests in ``local/tests`` that go through boto3 over HTTP.  They belong to the local stack only: the
product code must never rely on anything here that AWS does not do.
"""

from __future__ import annotations

import threading

from . import (
    cognito_client_credentials,
    cognito_id_token_claims,
    cognito_resend,
    cognito_temporary_password,
    dynamodb_atomic_writes,
    elasticbeanstalk,
    route53_delete_values,
    stepfunctions_lambda_errors,
)

# cognito_temporary_password wraps what cognito_resend installed, so it comes after it.
PATCHES = (
    cognito_resend,
    cognito_temporary_password,
    cognito_id_token_claims,
    cognito_client_credentials,
    elasticbeanstalk,
    dynamodb_atomic_writes,
    route53_delete_values,
    stepfunctions_lambda_errors,
)

_applied = False
_lock = threading.Lock()


def apply_all() -> None:
    """Apply every patch once per process (moto's backends are process-global)."""
    global _applied
    with _lock:
        if _applied:
            return
        for patch in PATCHES:
            patch.apply()
        _applied = True

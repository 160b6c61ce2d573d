"""patches/cognito_id_token_claims.py: ID tokens carry email_verified as a boolean, as Cognito's do."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

PASSWORD = "Claims-test-1!"


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.parametrize("verified", [True, False])
def test_id_tokens_say_whether_the_email_is_verified(aws, password_pool, verified):
    cognito = aws("cognito-idp")
    pool_id, client_id = password_pool("claims")
    email = f"{uuid.uuid4().hex[:8]}@example.test"
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=email,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": str(verified).lower()}],
    )
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=PASSWORD, Permanent=True)

    tokens = cognito.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]

    claims = _claims(tokens["IdToken"])
    assert claims["email_verified"] is verified
    assert claims["email"] == email

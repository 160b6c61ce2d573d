"""patches/cognito_temporary_password.py: an invited user gets a working generated temporary password."""

from __future__ import annotations

import uuid

import requests


def test_an_invited_user_can_sign_in_once_with_the_generated_password(emulator, aws, password_pool):
    cognito = aws("cognito-idp")
    pool_id, client_id = password_pool("temp")
    email = f"{uuid.uuid4().hex[:8]}@example.test"
    user = cognito.admin_create_user(
        UserPoolId=pool_id, Username=email, UserAttributes=[{"Name": "email", "Value": email}]
    )["User"]
    assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD"

    password = requests.get(
        f"{emulator.url}/_portcullis/cognito/password",
        params={"userPoolId": pool_id, "username": user["Username"]},
        timeout=5,
    ).json()["password"]
    assert password and len(password) >= 12

    answer = cognito.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    assert answer["ChallengeName"] == "NEW_PASSWORD_REQUIRED"


def test_a_given_temporary_password_is_kept(emulator, aws):
    cognito = aws("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=f"temp-{uuid.uuid4().hex[:8]}")["UserPool"]["Id"]
    cognito.admin_create_user(UserPoolId=pool_id, Username="kept", TemporaryPassword="Given-pass-123!")
    answer = requests.get(
        f"{emulator.url}/_portcullis/cognito/password", params={"userPoolId": pool_id, "username": "kept"}, timeout=5
    )
    assert answer.json() == {"password": "Given-pass-123!"}

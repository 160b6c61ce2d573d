"""inspection.py: the emulator tells tests a Cognito user's current password, and nothing else."""

from __future__ import annotations

import uuid

import requests


def test_answers_a_users_current_password_and_404_otherwise(emulator, aws):
    cognito = aws("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=f"inspect-{uuid.uuid4().hex[:8]}", UsernameAttributes=["email"])[
        "UserPool"
    ]["Id"]
    email = f"{uuid.uuid4().hex[:8]}@example.test"
    username = cognito.admin_create_user(UserPoolId=pool_id, Username=email, TemporaryPassword="Temp-pass-123!")[
        "User"
    ]["Username"]
    url = f"{emulator.url}/_portcullis/cognito/password"

    for who in (username, email):
        answer = requests.get(url, params={"userPoolId": pool_id, "username": who}, timeout=5)
        assert answer.status_code == 200
        assert answer.json() == {"password": "Temp-pass-123!"}
    assert requests.get(url, params={"userPoolId": pool_id, "username": "nobody"}, timeout=5).status_code == 404
    assert requests.get(url, params={"userPoolId": "us-east-1_none", "username": email}, timeout=5).status_code == 404
    # Every other path still reaches moto.
    assert cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Id"] == pool_id

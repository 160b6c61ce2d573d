"""patches/cognito_resend.py: AdminCreateUser with MessageAction=RESEND re-invites the same user."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

EMAIL_SIGN_IN = {"UsernameAttributes": ["email"]}  # how Portcullis creates app pools
PLAIN = {}


@pytest.fixture
def cognito(aws):
    return aws("cognito-idp")


def _pool(cognito, config: dict) -> str:
    return cognito.create_user_pool(PoolName=f"resend-{uuid.uuid4().hex[:8]}", **config)["UserPool"]["Id"]


def _invite(cognito, pool_id: str, config: dict) -> tuple[str, str, dict]:
    """Create an invited user; returns (username to create with, email, created user)."""
    email = f"{uuid.uuid4().hex[:8]}@example.test"
    username = email if config else f"user-{uuid.uuid4().hex[:8]}"
    user = cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": "Ada"}],
        DesiredDeliveryMediums=["EMAIL"],
    )["User"]
    return username, email, user


def _attributes(user: dict) -> dict:
    return {a["Name"]: a["Value"] for a in user.get("Attributes") or user.get("UserAttributes")}


@pytest.mark.parametrize("config", [EMAIL_SIGN_IN, PLAIN], ids=["email-username", "plain-username"])
@pytest.mark.parametrize("address_by", ["as-created", "username", "sub"])
def test_resend_keeps_the_same_user(cognito, config, address_by):
    pool_id = _pool(cognito, config)
    username, email, created = _invite(cognito, pool_id, config)
    addressed = {
        "as-created": username,
        "username": created["Username"],
        "sub": _attributes(created)["sub"],
    }[address_by]

    resent = cognito.admin_create_user(
        UserPoolId=pool_id, Username=addressed, MessageAction="RESEND", DesiredDeliveryMediums=["EMAIL"]
    )["User"]

    users = cognito.list_users(UserPoolId=pool_id)["Users"]
    assert len(users) == 1
    (user,) = users
    assert user["Username"] == created["Username"] == resent["Username"]
    assert _attributes(user) == _attributes(created)
    assert _attributes(user)["email"] == email
    assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert user["UserLastModifiedDate"] >= created["UserLastModifiedDate"]


def test_email_sign_in_pools_get_a_generated_username_equal_to_sub(cognito):
    """What the Rust side must expect from app pools (UsernameAttributes=["email"])."""
    pool_id = _pool(cognito, EMAIL_SIGN_IN)
    _, email, created = _invite(cognito, pool_id, EMAIL_SIGN_IN)

    assert created["Username"] != email
    assert created["Username"] == _attributes(created)["sub"]
    assert cognito.admin_get_user(UserPoolId=pool_id, Username=email)["Username"] == created["Username"]


def test_resend_with_a_new_temporary_password_replaces_the_old_one(cognito):
    pool_id = _pool(cognito, EMAIL_SIGN_IN)
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="c", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    email = f"{uuid.uuid4().hex[:8]}@example.test"
    cognito.admin_create_user(UserPoolId=pool_id, Username=email, TemporaryPassword="First-temp-1!")

    cognito.admin_create_user(UserPoolId=pool_id, Username=email, MessageAction="RESEND", TemporaryPassword="Second-temp-2!")

    def sign_in(password):
        return cognito.admin_initiate_auth(
            UserPoolId=pool_id,
            ClientId=client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )

    assert sign_in("Second-temp-2!")["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    with pytest.raises(ClientError) as error:
        sign_in("First-temp-1!")
    assert error.value.response["Error"]["Code"] == "NotAuthorizedException"


@pytest.mark.parametrize("config", [EMAIL_SIGN_IN, PLAIN], ids=["email-username", "plain-username"])
def test_resend_to_an_unknown_user_is_user_not_found(cognito, config):
    pool_id = _pool(cognito, config)
    _invite(cognito, pool_id, config)

    with pytest.raises(ClientError) as error:
        cognito.admin_create_user(UserPoolId=pool_id, Username="nobody@example.test", MessageAction="RESEND")

    assert error.value.response["Error"]["Code"] == "UserNotFoundException"
    assert len(cognito.list_users(UserPoolId=pool_id)["Users"]) == 1


@pytest.mark.parametrize("config", [EMAIL_SIGN_IN, PLAIN], ids=["email-username", "plain-username"])
def test_resend_to_a_confirmed_user_is_unsupported_state(cognito, config):
    pool_id = _pool(cognito, config)
    username, _, created = _invite(cognito, pool_id, config)
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password="Chosen-pass-1!", Permanent=True)

    with pytest.raises(ClientError) as error:
        cognito.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="RESEND")

    assert error.value.response["Error"]["Code"] == "UnsupportedUserStateException"
    (user,) = cognito.list_users(UserPoolId=pool_id)["Users"]
    assert user["UserStatus"] == "CONFIRMED"
    assert _attributes(user) == _attributes(created)


def test_creating_a_user_without_resend_is_unchanged(cognito):
    pool_id = _pool(cognito, EMAIL_SIGN_IN)
    username, _, _ = _invite(cognito, pool_id, EMAIL_SIGN_IN)

    with pytest.raises(ClientError) as error:
        cognito.admin_create_user(UserPoolId=pool_id, Username=username)

    assert error.value.response["Error"]["Code"] == "UsernameExistsException"

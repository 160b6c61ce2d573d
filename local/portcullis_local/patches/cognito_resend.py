"""``AdminCreateUser`` with ``MessageAction="RESEND"`` re-invites the existing user.

Real Cognito: RESEND sends the invitation again to a user that already exists and resets the
expiry of its temporary password.  The user must exist (``UserNotFoundException`` otherwise) and
still be in ``FORCE_CHANGE_PASSWORD`` (``UnsupportedUserStateException`` otherwise).  It stays the
same user: same username, same ``sub``, same attributes; only the temporary password is new (the
one given, or a generated one that the message would carry) and ``UserLastModifiedDate`` moves.
``Username`` may be the username or, in pools with ``UsernameAttributes`` or ``AliasAttributes``, the
email or phone number; a user may also be addressed by its ``sub``.

moto 5.2.5 checks that the user exists and then runs the create path again: in a pool with
``UsernameAttributes=["email"]`` (where the username is a generated UUID equal to the ``sub``) that
adds a second user with the same email; in other pools it replaces the user, dropping its attributes
and minting a new ``sub``.  Nor does it check the user's state.

The patch routes RESEND to the function below and leaves every other call to moto.
"""

from __future__ import annotations

import functools
import secrets
import string

from moto.cognitoidp.exceptions import UserNotFoundError
from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUser, CognitoIdpUserPool, UserStatus
from moto.cognitoidp.utils import flatten_attrs
from moto.core.exceptions import JsonRESTError
from moto.core.utils import utcnow


class UnsupportedUserStateException(JsonRESTError):
    def __init__(self, message: str):
        super().__init__(error_type="UnsupportedUserStateException", message=message)


def find_user(pool: CognitoIdpUserPool, username: str) -> CognitoIdpUser | None:
    """Resolve ``Username`` the way Cognito's admin APIs do: username, sign-in alias or ``sub``.

    moto's own lookup covers the username and ``UsernameAttributes``; aliases configured through
    ``AliasAttributes`` and the ``sub`` are added here.
    """
    user = pool._get_user(username)
    if user:
        return user
    alias_attributes = pool.extended_config.get("AliasAttributes") or []
    for candidate in pool.users.values():
        attributes = flatten_attrs(candidate.attributes)
        if candidate.id == username or any(attributes.get(name) == username for name in alias_attributes):
            return candidate
    return None


def generate_temporary_password(pool: CognitoIdpUserPool) -> str:
    """A password satisfying the pool's policy, as Cognito generates when none is given."""
    policy = (pool.extended_config.get("Policies") or {}).get("PasswordPolicy") or {}
    length = max(int(policy.get("MinimumLength") or 8), 12)
    # One of each class so any policy combination is met; the rest random.
    required = [
        secrets.choice(string.ascii_uppercase),
        secrets.choice(string.ascii_lowercase),
        secrets.choice(string.digits),
        secrets.choice("^$*.[]{}()?-!@#%&/,><:;|_~`+="),
    ]
    rest = [secrets.choice(string.ascii_letters + string.digits) for _ in range(length - len(required))]
    characters = required + rest
    secrets.SystemRandom().shuffle(characters)
    return "".join(characters)


def resend_invitation(
    backend: CognitoIdpBackend, user_pool_id: str, username: str, temporary_password: str | None
) -> CognitoIdpUser:
    pool = backend.describe_user_pool(user_pool_id)  # ResourceNotFoundException for an unknown pool
    user = find_user(pool, username)
    if user is None:
        raise UserNotFoundError("User does not exist.")
    if user.status != UserStatus.FORCE_CHANGE_PASSWORD:
        raise UnsupportedUserStateException(
            f"Resend not possible. {user.username} status is {getattr(user.status, 'value', user.status)}, "
            "not FORCE_CHANGE_PASSWORD."
        )
    user.password = temporary_password or generate_temporary_password(pool)
    user.last_modified_date = utcnow()
    return user


def apply() -> None:
    original = CognitoIdpBackend.admin_create_user
    if getattr(original, "__portcullis_patch__", False):
        return

    @functools.wraps(original)
    def admin_create_user(self, user_pool_id, username, message_action, temporary_password, attributes):
        if message_action == "RESEND":
            # UserAttributes given with a resend are not applied: the invitation is for the user as
            # stored, and a resend must never be a back door for changing attributes.
            return resend_invitation(self, user_pool_id, username, temporary_password)
        return original(self, user_pool_id, username, message_action, temporary_password, attributes)

    admin_create_user.__portcullis_patch__ = True
    CognitoIdpBackend.admin_create_user = admin_create_user

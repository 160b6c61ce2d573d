"""``AdminCreateUser`` without ``TemporaryPassword`` gives the user a generated temporary password.

Real Cognito: when the caller sends no ``TemporaryPassword``, Cognito generates one that meets the
pool's password policy, emails it with the invitation, and the user signs in with it once (answering
the NEW_PASSWORD_REQUIRED challenge).  Portcullis relies on this: it never chooses, sees or logs a
temporary password.

moto 5.2.5 leaves the password empty instead, so an invited user could never sign in, and tests could
not check that the password stays out of answers and logs.  The patch generates one the way Cognito
does; everything else is moto's.
"""

from __future__ import annotations

import functools

from moto.cognitoidp.models import CognitoIdpBackend

from .cognito_resend import generate_temporary_password


def apply() -> None:
    original = CognitoIdpBackend.admin_create_user
    if getattr(original, "__portcullis_temporary_password__", False):
        return

    @functools.wraps(original)
    def admin_create_user(self, user_pool_id, username, message_action, temporary_password, attributes):
        # A resend makes its own (patches/cognito_resend.py).
        if message_action != "RESEND" and not temporary_password:
            temporary_password = generate_temporary_password(self.describe_user_pool(user_pool_id))
        return original(self, user_pool_id, username, message_action, temporary_password, attributes)

    admin_create_user.__portcullis_temporary_password__ = True
    CognitoIdpBackend.admin_create_user = admin_create_user

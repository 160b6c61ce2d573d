"""ID tokens carry ``email_verified``, as a boolean.

Real Cognito: an app client without ``ReadAttributes`` may read every attribute, and its ID tokens
carry the standard claims the user has, ``email_verified`` among them as a JSON boolean.  Portcullis
relies on it: the audit actor names the caller's email only when it is verified.

moto 5.2.5 puts only the attributes a client lists in ``ReadAttributes`` into ID tokens (as strings),
and the email only because the pool signs in by email, so ``email_verified`` is missing.  The patch
adds it, as Cognito does; everything else is moto's.
"""

from __future__ import annotations

import functools

from moto.cognitoidp.models import CognitoIdpUserPool


def apply() -> None:
    original = CognitoIdpUserPool.get_user_extra_data_by_client_id
    if getattr(original, "__portcullis_id_token_claims__", False):
        return

    @functools.wraps(original)
    def get_user_extra_data_by_client_id(self, client_id, username):
        extra = original(self, client_id, username)
        client = self.clients.get(client_id)
        readable = client.get_readable_fields() if client else []
        if not readable or "email_verified" in readable:
            for attribute in self._get_user(username).attributes:
                if attribute["Name"] == "email_verified":
                    extra["email_verified"] = str(attribute["Value"]).lower() == "true"
        return extra

    get_user_extra_data_by_client_id.__portcullis_id_token_claims__ = True
    CognitoIdpUserPool.get_user_extra_data_by_client_id = get_user_extra_data_by_client_id

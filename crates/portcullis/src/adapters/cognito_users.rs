//! `AppUsers` on Amazon Cognito: the users of an app's pool. Cognito generates each temporary password
//! and emails it itself; no call here sees one.

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, DeliveryMediumType, MessageActionType, UserStatusType, UserType,
};
use time::OffsetDateTime;

use super::{AwsFailure, aws_failure, build_error};
use crate::domain::{AppUser, InvitationState, Invitee, UserStatus};
use crate::error::{Error, Result};
use crate::ports::{AppUsers, Page, UserFilter};

/// Cognito's page size limit for ListUsers.
const MAX_LIST_USERS: u32 = 60;

/// The Cognito-backed app users port.
#[derive(Debug, Clone)]
pub struct CognitoAppUsers {
    client: Client,
}

impl CognitoAppUsers {
    /// Builds the client from the function's AWS configuration (once per cold start).
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        CognitoAppUsers { client: Client::new(config) }
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// Revokes the user's refresh tokens everywhere.
    async fn sign_out(&self, pool_id: &str, username: &str) -> Result<()> {
        self.client
            .admin_user_global_sign_out()
            .user_pool_id(pool_id)
            .username(username)
            .send()
            .await
            .map_err(|e| user_error(aws_failure("Cognito AdminUserGlobalSignOut", e)))?;
        Ok(())
    }
}

fn attribute(name: &str, value: &str) -> Result<AttributeType> {
    AttributeType::builder().name(name).value(value).build().map_err(|e| build_error("a Cognito user attribute", e))
}

/// A listing's failure. The page token Portcullis sealed is genuine, so Cognito refusing it means the
/// listing changed under it (the user or role it pointed at is gone): start again, not a bad request.
pub(super) fn listing_error(failure: AwsFailure, next_token: Option<&str>) -> Error {
    if failure.is("InvalidParameterException") && next_token.is_some() {
        Error::Conflict("the listing changed since this page token was given; list again from the first page".into())
    } else {
        user_error(failure)
    }
}

/// Cognito's user errors, translated once.
pub(super) fn user_error(failure: AwsFailure) -> Error {
    match failure.code.as_deref() {
        Some("UsernameExistsException" | "AliasExistsException") => {
            Error::Conflict("a user with this email already exists in the app".into())
        }
        Some("UserNotFoundException") => Error::NotFound("no such user in the app".into()),
        // The app's pool went while the request was under way: only a deletion of the app removes it.
        Some("ResourceNotFoundException") => {
            Error::Conflict("the app's user pool is gone: the app is being deleted".into())
        }
        Some("UnsupportedUserStateException") => {
            Error::Conflict("the user has already signed in and chosen a password; there is nothing to resend".into())
        }
        Some("InvalidParameterException") => Error::Invalid(failure.message),
        Some("LimitExceededException") => Error::QuotaExceeded(failure.message),
        _ => failure.into_error(),
    }
}

/// Cognito's user status in the domain's words.
fn user_status(status: &UserStatusType) -> UserStatus {
    match status {
        UserStatusType::ForceChangePassword => UserStatus::ForceChangePassword,
        UserStatusType::Confirmed => UserStatus::Confirmed,
        UserStatusType::Unconfirmed => UserStatus::Unconfirmed,
        UserStatusType::ResetRequired => UserStatus::ResetRequired,
        UserStatusType::Archived => UserStatus::Archived,
        UserStatusType::Compromised => UserStatus::Compromised,
        UserStatusType::ExternalProvider => UserStatus::ExternalProvider,
        _ => UserStatus::Unknown,
    }
}

fn app_user(user: UserType) -> AppUser {
    let attribute =
        |name: &str| user.attributes().iter().find(|a| a.name() == name).and_then(|a| a.value()).map(str::to_string);
    let time = |date: Option<&aws_sdk_cognitoidentityprovider::primitives::DateTime>| {
        date.and_then(|d| OffsetDateTime::from_unix_timestamp(d.secs()).ok()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    let created = time(user.user_create_date());
    let status = user.user_status().map(user_status).unwrap_or(UserStatus::Unknown);
    // Without Portcullis's record, the pool's own date: a temporary password is set when the user is
    // created or the invitation resent, and nothing else changes a user who has not signed in.
    let sent_at = time(user.user_last_modified_date());
    AppUser {
        username: user.username().unwrap_or_default().to_string(),
        email: attribute("email").unwrap_or_default(),
        name: attribute("name"),
        status,
        enabled: user.enabled(),
        invited_at: created,
        invited_by: None,
        invitation: InvitationState::of(status, sent_at, OffsetDateTime::now_utc()),
        access_expires_at: None,
        access_ended_at: None,
    }
}

#[async_trait]
impl AppUsers for CognitoAppUsers {
    async fn invite(&self, pool_id: &str, invitee: &Invitee) -> Result<AppUser> {
        let mut request = self
            .client
            .admin_create_user()
            .user_pool_id(pool_id)
            .username(&invitee.email)
            .user_attributes(attribute("email", &invitee.email)?)
            // The admin vouches for the address; the invitation's arrival proves it.
            .user_attributes(attribute("email_verified", "true")?)
            .desired_delivery_mediums(DeliveryMediumType::Email);
        if let Some(name) = &invitee.name {
            request = request.user_attributes(attribute("name", name)?);
        }
        let out = request.send().await.map_err(|e| user_error(aws_failure("Cognito AdminCreateUser", e)))?;
        out.user.map(app_user).ok_or_else(|| Error::upstream("Cognito AdminCreateUser returned no user"))
    }

    async fn resend(&self, pool_id: &str, username: &str) -> Result<()> {
        self.client
            .admin_create_user()
            .user_pool_id(pool_id)
            .username(username)
            .message_action(MessageActionType::Resend)
            .desired_delivery_mediums(DeliveryMediumType::Email)
            .send()
            .await
            .map_err(|e| user_error(aws_failure("Cognito AdminCreateUser (RESEND)", e)))?;
        Ok(())
    }

    async fn list(
        &self,
        pool_id: &str,
        filter: UserFilter,
        limit: u32,
        next_token: Option<&str>,
    ) -> Result<Page<AppUser>> {
        let filter = match filter {
            UserFilter::Everyone => None,
            UserFilter::NotSignedIn => Some("cognito:user_status = \"FORCE_CHANGE_PASSWORD\"".to_string()),
        };
        let out = self
            .client
            .list_users()
            .user_pool_id(pool_id)
            .set_filter(filter)
            .limit(i32::try_from(limit.min(MAX_LIST_USERS)).unwrap_or(60))
            .set_pagination_token(next_token.map(str::to_string))
            .send()
            .await
            .map_err(|e| listing_error(aws_failure("Cognito ListUsers", e), next_token))?;
        Ok(Page {
            items: out.users.unwrap_or_default().into_iter().map(app_user).collect(),
            next_token: out.pagination_token.filter(|t| !t.is_empty()),
        })
    }

    async fn end_access(&self, pool_id: &str, username: &str) -> Result<()> {
        // Disabled first, so that no new sign-in starts between the two calls.
        self.client
            .admin_disable_user()
            .user_pool_id(pool_id)
            .username(username)
            .send()
            .await
            .map_err(|e| user_error(aws_failure("Cognito AdminDisableUser", e)))?;
        self.sign_out(pool_id, username).await
    }

    async fn revoke(&self, pool_id: &str, username: &str) -> Result<()> {
        // Sign-out first: it revokes refresh tokens, so no session outlives the user.
        self.sign_out(pool_id, username).await?;
        self.client
            .admin_delete_user()
            .user_pool_id(pool_id)
            .username(username)
            .send()
            .await
            .map_err(|e| user_error(aws_failure("Cognito AdminDeleteUser", e)))?;
        Ok(())
    }
}

//! `AppRoles` on Amazon Cognito: each role of an app is a group of its pool, so that Cognito puts the
//! user's roles in the `cognito:groups` claim of the tokens it issues.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::GroupType;
use time::OffsetDateTime;

use super::cognito_users::{listing_error, user_error};
use super::{AwsFailure, aws_failure};
use crate::adapters::CognitoAppUsers;
use crate::domain::{AppRole, NewAppRole};
use crate::error::{Error, Result};
use crate::ports::{AppRoles, Page};

/// Cognito's page size limit for ListGroups and AdminListGroupsForUser.
const MAX_LIST_GROUPS: u32 = 60;

/// Cognito's group errors, translated once; the rest as for users.
fn role_error(failure: AwsFailure, role: &str) -> Error {
    match failure.code.as_deref() {
        Some("GroupExistsException") => Error::Conflict(format!("the app already has a role named '{role}'")),
        // Cognito says the same for a missing pool, but callers ask only of an ACTIVE app's pool, which
        // goes only once its app is being deleted.
        Some("ResourceNotFoundException") => Error::NotFound(format!("the app has no role '{role}'")),
        _ => user_error(failure),
    }
}

fn app_role(group: GroupType) -> AppRole {
    AppRole {
        name: group.group_name.unwrap_or_default(),
        description: group.description.filter(|d| !d.is_empty()),
        created_at: group
            .creation_date
            .and_then(|d| OffsetDateTime::from_unix_timestamp(d.secs()).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    }
}

#[async_trait]
impl AppRoles for CognitoAppUsers {
    async fn create(&self, pool_id: &str, role: &NewAppRole) -> Result<AppRole> {
        let out = self
            .client()
            .create_group()
            .user_pool_id(pool_id)
            .group_name(&role.name)
            .set_description(role.description.clone())
            .send()
            .await
            .map_err(|e| role_error(aws_failure("Cognito CreateGroup", e), &role.name))?;
        let group = out.group.ok_or_else(|| Error::upstream("Cognito CreateGroup returned no group"))?;
        Ok(app_role(group))
    }

    async fn list(&self, pool_id: &str, limit: u32, next_token: Option<&str>) -> Result<Page<AppRole>> {
        let out = self
            .client()
            .list_groups()
            .user_pool_id(pool_id)
            .limit(i32::try_from(limit.min(MAX_LIST_GROUPS)).unwrap_or(60))
            .set_next_token(next_token.map(str::to_string))
            .send()
            .await
            .map_err(|e| listing_error(aws_failure("Cognito ListGroups", e), next_token))?;
        Ok(Page {
            items: out.groups.unwrap_or_default().into_iter().map(app_role).collect(),
            next_token: out.next_token.filter(|t| !t.is_empty()),
        })
    }

    async fn exists(&self, pool_id: &str, name: &str) -> Result<bool> {
        let found = self.client().get_group().user_pool_id(pool_id).group_name(name).send().await;
        match found.map_err(|e| role_error(aws_failure("Cognito GetGroup", e), name)) {
            Ok(_) => Ok(true),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, pool_id: &str, name: &str) -> Result<()> {
        self.client()
            .delete_group()
            .user_pool_id(pool_id)
            .group_name(name)
            .send()
            .await
            .map_err(|e| role_error(aws_failure("Cognito DeleteGroup", e), name))?;
        Ok(())
    }

    async fn held_by(&self, pool_id: &str, username: &str) -> Result<BTreeSet<String>> {
        let mut held = BTreeSet::new();
        let mut next_token = None;
        loop {
            let out = self
                .client()
                .admin_list_groups_for_user()
                .user_pool_id(pool_id)
                .username(username)
                .limit(i32::try_from(MAX_LIST_GROUPS).unwrap_or(60))
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| user_error(aws_failure("Cognito AdminListGroupsForUser", e)))?;
            held.extend(out.groups.unwrap_or_default().into_iter().filter_map(|g| g.group_name));
            next_token = out.next_token.filter(|t| !t.is_empty());
            if next_token.is_none() {
                return Ok(held);
            }
        }
    }

    async fn give(&self, pool_id: &str, username: &str, role: &str) -> Result<()> {
        self.client()
            .admin_add_user_to_group()
            .user_pool_id(pool_id)
            .username(username)
            .group_name(role)
            .send()
            .await
            .map_err(|e| role_error(aws_failure("Cognito AdminAddUserToGroup", e), role))?;
        Ok(())
    }

    async fn take(&self, pool_id: &str, username: &str, role: &str) -> Result<()> {
        self.client()
            .admin_remove_user_from_group()
            .user_pool_id(pool_id)
            .username(username)
            .group_name(role)
            .send()
            .await
            .map_err(|e| role_error(aws_failure("Cognito AdminRemoveUserFromGroup", e), role))?;
        Ok(())
    }
}

//! The state machines' side of Portcullis. Sequencing, waiting, retry and catch live in
//! `statemachine/*.asl.json`; here are the contract with them (`contract`: what an execution starts
//! with, what each task receives and returns), the stable failure names their `Retry`/`Catch` match
//! (`failure`), and the task steps themselves (`steps`): each does one thing, records what it made as
//! soon as it exists, and is safe to run again. Beside them, the scheduled jobs over every ACTIVE app:
//! the drift check (`drift`), the invitation reminder (`reminders`) and the end of access
//! (`access_expiry`).

mod access_expiry;
mod contract;
mod drift;
mod failure;
mod reminders;
mod settings;
mod steps;
#[cfg(test)]
mod steps_tests;

pub use access_expiry::{AccessExpiry, AccessExpiryRun, EndExpiredAccess};
pub use contract::{
    AppRef, CaughtError, Execution, ExecutionInput, FailureReport, PollingInput, RunEnded, StateMachine, StepInput,
    StepName, StepOutput,
};
pub use drift::{CheckDrift, DriftCheck, DriftRun};
pub use failure::{FailureName, StepFailure};
pub use reminders::{InvitationReminder, ReminderRun, ResendInvitations};
pub use steps::Provisioner;

use crate::Result;
use crate::domain::{App, AppStatus};
use crate::ports::{AppRepository, TenantRegistry};

/// Pages read per listing while collecting every tenant's ACTIVE apps.
const PAGE: u32 = 100;

/// Every ACTIVE app of every registered tenant: what the scheduled jobs look at.
async fn every_active_app(tenants: &dyn TenantRegistry, apps: &dyn AppRepository) -> Result<Vec<App>> {
    let mut active = Vec::new();
    let mut tenants_token = None;
    loop {
        let page = tenants.list(PAGE, tenants_token.as_deref()).await?;
        for tenant in &page.items {
            let mut apps_token = None;
            loop {
                let listed = apps.list(&tenant.id, PAGE, apps_token.as_deref()).await?;
                active.extend(listed.items.into_iter().filter(|a| a.status == AppStatus::Active));
                apps_token = listed.next_token;
                if apps_token.is_none() {
                    break;
                }
            }
        }
        tenants_token = page.next_token;
        if tenants_token.is_none() {
            return Ok(active);
        }
    }
}

//! The domain: what an app is, what a caller may do, and the pure rules of provisioning. No AWS types.

mod app;
mod audit;
mod caller;
mod certificate;
mod environment;
mod naming;
mod poll;
mod priority;
mod users;
mod validate;

pub use app::*;
pub use audit::{AppEvent, AuditAction, WORKFLOW_ACTOR};
pub use caller::{Caller, Role};
pub use certificate::{CertificateProgress, CertificateStatus};
pub use environment::{EnvironmentHealth, EnvironmentState, EnvironmentStatus, ListenerProtocol};
pub use naming::{invitation_message, pool_domain_prefix};
pub use poll::{Poll, PollPolicy};
pub use priority::{MAX_CERTIFICATES_PER_LISTENER, MAX_RULES_PER_LISTENER, lowest_free_priority};
pub use users::{
    AppUser, BatchOutcome, EmailSending, Invitation, Invitee, InviteeBody, MAX_BATCH, SesIdentity, TenantSettings,
    UserStatus, validate_email,
};
pub use validate::{NewApp, validate_new_app};

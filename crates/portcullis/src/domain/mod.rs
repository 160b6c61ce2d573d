//! The domain: what an app is, what a caller may do, and the pure rules of provisioning. No AWS types.

mod app;
mod caller;
mod certificate;
mod naming;
mod poll;
mod priority;
mod users;
mod validate;

pub use app::*;
pub use caller::{Caller, Role};
pub use certificate::CertificateProgress;
pub use naming::{invitation_message, pool_domain_prefix};
pub use poll::{Poll, PollPolicy};
pub use priority::{MAX_CERTIFICATES_PER_LISTENER, MAX_RULES_PER_LISTENER, lowest_free_priority};
pub use users::{
    AppUser, EmailSending, Invitation, Invitee, InviteeBody, MAX_BATCH, SesIdentity, TenantSettings, validate_email,
};
pub use validate::{NewApp, validate_new_app};

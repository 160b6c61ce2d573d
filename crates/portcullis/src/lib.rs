//! Portcullis: puts internal web apps behind a Cognito login on their ALB.
//!
//! - `domain`: what an app is and the pure rules (no AWS types)
//! - `ports`: what the domain needs from outside, as traits
//! - `adapters`: those ports on aws-sdk-rust
//! - `api`: the REST operations, independent of Lambda's event types
//! - `invitations`: sending invitations again, for the API and the scheduled reminder
//! - `workflow`: the contract with the state machines and their task steps
//! - `lambda` (feature `lambda`): the glue between Lambda's events and `api`/`workflow`, for the
//!   function crates

pub mod adapters;
pub mod api;
pub mod config;
pub mod domain;
pub mod endpoint;
pub mod error;
#[cfg(test)]
mod fakes;
pub mod invitations;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod ports;
pub mod retry;
pub mod telemetry;
pub mod workflow;

pub use error::{Error, Result};

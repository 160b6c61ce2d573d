//! The state machines' side of Portcullis. Sequencing, waiting, retry and catch live in
//! `statemachine/*.asl.json`; here are the contract with them (`contract`: what an execution starts
//! with, what each task receives and returns), the stable failure names their `Retry`/`Catch` match
//! (`failure`), and the task steps themselves (`steps`): each does one thing, records what it made as
//! soon as it exists, and is safe to run again.

mod contract;
mod drift;
mod failure;
mod steps;
#[cfg(test)]
mod steps_tests;

pub use contract::{
    AppRef, CaughtError, Execution, ExecutionInput, FailureReport, PollingInput, RunEnded, StateMachine, StepInput,
    StepName, StepOutput,
};
pub use drift::{CheckDrift, DriftCheck, DriftRun};
pub use failure::{FailureName, StepFailure};
pub use steps::Provisioner;

//! What the workflow needs to know about the app's environment, in its own words.

use std::fmt;

/// An Elastic Beanstalk environment's lifecycle status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentStatus {
    Launching,
    Updating,
    Ready,
    Terminating,
    Terminated,
    /// Anything else, by the name the service gave it.
    Other(String),
}

/// An Elastic Beanstalk environment's health colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentHealth {
    Green,
    Yellow,
    Red,
    /// Not enough information (a new or stopped environment).
    Grey,
    Other(String),
}

/// An environment as the readiness check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentState {
    pub status: EnvironmentStatus,
    pub health: EnvironmentHealth,
}

impl EnvironmentState {
    /// Ready to take the login in front of it: deployed (Ready) and healthy (Green).
    pub fn is_ready(&self) -> bool {
        self.status == EnvironmentStatus::Ready && self.health == EnvironmentHealth::Green
    }
}

impl fmt::Display for EnvironmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvironmentStatus::Launching => f.write_str("Launching"),
            EnvironmentStatus::Updating => f.write_str("Updating"),
            EnvironmentStatus::Ready => f.write_str("Ready"),
            EnvironmentStatus::Terminating => f.write_str("Terminating"),
            EnvironmentStatus::Terminated => f.write_str("Terminated"),
            EnvironmentStatus::Other(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for EnvironmentHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvironmentHealth::Green => f.write_str("Green"),
            EnvironmentHealth::Yellow => f.write_str("Yellow"),
            EnvironmentHealth::Red => f.write_str("Red"),
            EnvironmentHealth::Grey => f.write_str("Grey"),
            EnvironmentHealth::Other(name) => f.write_str(name),
        }
    }
}

/// The protocol a load balancer listener speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerProtocol {
    /// TLS terminated at the listener: the only kind that can carry the login.
    Https,
    Http,
    Other(String),
}

impl fmt::Display for ListenerProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenerProtocol::Https => f.write_str("HTTPS"),
            ListenerProtocol::Http => f.write_str("HTTP"),
            ListenerProtocol::Other(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ready_and_green_is_ready() {
        let state = |status, health| EnvironmentState { status, health };
        assert!(state(EnvironmentStatus::Ready, EnvironmentHealth::Green).is_ready());
        assert!(!state(EnvironmentStatus::Ready, EnvironmentHealth::Grey).is_ready());
        assert!(!state(EnvironmentStatus::Updating, EnvironmentHealth::Green).is_ready());
        assert_eq!(
            state(EnvironmentStatus::Other("Aborting".into()), EnvironmentHealth::Red).status.to_string(),
            "Aborting"
        );
    }
}

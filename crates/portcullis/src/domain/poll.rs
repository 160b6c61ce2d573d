//! Wait-loop arithmetic for the workflow's polling states. The state machine owns the loop (Wait →
//! check → Choice); this decides how long the next Wait is and when the deadline has passed.

use serde::{Deserialize, Serialize};

/// How a wait loop polls: first interval, deadline, and the cap the growing interval stops at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollPolicy {
    pub poll_seconds: u64,
    pub deadline_seconds: u64,
    #[serde(default = "default_max_wait")]
    pub max_wait_seconds: u64,
}

fn default_max_wait() -> u64 {
    60
}

/// The loop's state, carried in the execution's JSON between iterations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Poll {
    #[serde(flatten)]
    pub policy: PollPolicy,
    /// Unix seconds of the first check; set by the first check.
    #[serde(default)]
    pub started_at: Option<i64>,
    #[serde(default)]
    pub attempt: u32,
    /// How long the next Wait state sleeps.
    #[serde(default)]
    pub wait_seconds: u64,
    /// True once the awaited condition holds: the Choice state leaves the loop.
    #[serde(default)]
    pub done: bool,
}

/// The deadline passed before the condition held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlinePassed {
    pub waited_seconds: i64,
}

impl Poll {
    /// A fresh loop under `policy`.
    pub fn new(policy: PollPolicy) -> Self {
        Poll { policy, started_at: None, attempt: 0, wait_seconds: 0, done: false }
    }

    /// The state after a check at `now` (Unix seconds) that found the condition `ready` or not.
    /// The interval doubles from `poll_seconds` up to `max_wait_seconds`, and never sleeps past the
    /// deadline.
    pub fn after_check(self, ready: bool, now: i64) -> Result<Poll, DeadlinePassed> {
        let started_at = self.started_at.unwrap_or(now);
        if ready {
            return Ok(Poll { started_at: Some(started_at), done: true, wait_seconds: 0, ..self });
        }
        let waited = now - started_at;
        let deadline = i64::try_from(self.policy.deadline_seconds).unwrap_or(i64::MAX);
        if waited >= deadline {
            return Err(DeadlinePassed { waited_seconds: waited });
        }
        let grown = self.policy.poll_seconds.max(1).saturating_mul(1u64 << self.attempt.min(20));
        let remaining = u64::try_from(deadline - waited).unwrap_or(1);
        let wait_seconds = grown.min(self.policy.max_wait_seconds.max(1)).min(remaining).max(1);
        Ok(Poll {
            started_at: Some(started_at),
            attempt: self.attempt.saturating_add(1),
            wait_seconds,
            done: false,
            ..self
        })
    }
}

impl PollPolicy {
    /// The most checks a loop under this policy can make before its deadline ends it: every check
    /// answers at once and finds the condition not yet met. Counted by running the loop itself.
    pub fn checks_at_most(self) -> u64 {
        self.run(None).checks
    }

    /// The checks a loop under this policy makes when the condition holds from `ready_after` seconds
    /// after the first check (each check answering at once); `None` when the deadline ends it first.
    pub fn checks_until_ready(self, ready_after: u64) -> Option<u64> {
        let run = self.run(Some(i64::try_from(ready_after).unwrap_or(i64::MAX)));
        run.ready.then_some(run.checks)
    }

    /// Runs the loop from time 0, the condition holding from `ready_at` (never, for `None`).
    fn run(self, ready_at: Option<i64>) -> LoopRun {
        let mut poll = Poll::new(self);
        let (mut now, mut checks) = (0_i64, 1_u64);
        loop {
            let ready = ready_at.is_some_and(|at| now >= at);
            match poll.after_check(ready, now) {
                Ok(next) if next.done => return LoopRun { checks, ready: true },
                Ok(next) => {
                    now = now.saturating_add(i64::try_from(next.wait_seconds).unwrap_or(i64::MAX));
                    poll = next;
                    checks += 1;
                }
                Err(DeadlinePassed { .. }) => return LoopRun { checks, ready: false },
            }
        }
    }
}

/// How a simulated loop ended: after how many checks, and whether the condition held.
struct LoopRun {
    checks: u64,
    ready: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PollPolicy {
        PollPolicy { poll_seconds: 2, deadline_seconds: 30, max_wait_seconds: 10 }
    }

    #[test]
    fn interval_grows_to_the_cap() {
        let mut poll = Poll::new(policy());
        let mut waits = vec![];
        for t in [100, 102, 106, 114] {
            poll = poll.after_check(false, t).unwrap();
            waits.push(poll.wait_seconds);
        }
        assert_eq!(waits, vec![2, 4, 8, 10]);
        assert_eq!(poll.started_at, Some(100));
    }

    #[test]
    fn never_sleeps_past_the_deadline_and_then_fails() {
        let poll = Poll { attempt: 5, started_at: Some(0), ..Poll::new(policy()) };
        assert_eq!(poll.after_check(false, 27).unwrap().wait_seconds, 3);
        assert_eq!(poll.after_check(false, 30), Err(DeadlinePassed { waited_seconds: 30 }));
    }

    #[test]
    fn a_condition_met_later_takes_the_checks_the_growing_interval_allows() {
        // Checks at 0, 2, 6, 14, 24: the condition holding from 7 s is seen at the fourth.
        assert_eq!(policy().checks_until_ready(0), Some(1));
        assert_eq!(policy().checks_until_ready(7), Some(4));
        assert_eq!(policy().checks_until_ready(14), Some(4));
        // The last check falls on the deadline itself; past it, the loop fails.
        assert_eq!(policy().checks_until_ready(30), Some(policy().checks_at_most()));
        assert_eq!(policy().checks_until_ready(31), None);
    }

    #[test]
    fn ready_ends_the_loop_even_late() {
        let poll = Poll { started_at: Some(0), ..Poll::new(policy()) };
        let done = poll.after_check(true, 500).unwrap();
        assert!(done.done);
        assert_eq!(done.wait_seconds, 0);
    }

    #[test]
    fn counts_the_checks_of_a_loop_that_never_succeeds() {
        // Waits 2, 4, 8, 10, 6 (up to the deadline at 30): checks at 0, 2, 6, 14, 24 and the failing one at 30.
        assert_eq!(policy().checks_at_most(), 6);
        let flat = PollPolicy { poll_seconds: 60, deadline_seconds: 3600, max_wait_seconds: 60 };
        assert_eq!(flat.checks_at_most(), 61);
    }

    #[test]
    fn reads_the_policy_from_execution_json() {
        let poll: Poll = serde_json::from_str(r#"{"pollSeconds":1,"deadlineSeconds":60}"#).unwrap();
        assert_eq!(poll.policy.max_wait_seconds, 60);
        assert_eq!(poll.attempt, 0);
        assert!(!poll.done);
    }
}

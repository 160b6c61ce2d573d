//! Listener rule priorities and the ALB quotas Portcullis respects.

use std::collections::BTreeSet;

/// ALB quota: rules per load balancer (not counting default rules). Portcullis counts the rules on the
/// listener it wires, which is the binding limit for a load balancer with one HTTPS listener.
pub const MAX_RULES_PER_LISTENER: usize = 100;
/// ALB quota: certificates per load balancer (the default certificate included).
pub const MAX_CERTIFICATES_PER_LISTENER: usize = 25;
/// The highest priority a listener rule can have.
const MAX_PRIORITY: u32 = 50_000;

/// The lowest priority in 1..=50000 that is not in `taken`.
pub fn lowest_free_priority(taken: &BTreeSet<u32>) -> Option<u32> {
    (1..=MAX_PRIORITY).find(|p| !taken.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_gaps_first() {
        assert_eq!(lowest_free_priority(&BTreeSet::new()), Some(1));
        assert_eq!(lowest_free_priority(&[1, 2, 4].into()), Some(3));
        let all: BTreeSet<u32> = (1..=MAX_PRIORITY).collect();
        assert_eq!(lowest_free_priority(&all), None);
    }
}

//! Exponential backoff for calls that AWS throttles (Cognito's AdminCreateUser is the tightest).

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Backoff {
    /// Up to 6 tries over about 3 s: well inside API Gateway's 29 s.
    fn default() -> Self {
        Backoff { attempts: 6, first_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) }
    }
}

impl Backoff {
    /// Runs `call` until it succeeds, fails with something other than `Retryable`, or the attempts run
    /// out. Delays double, with jitter so that concurrent callers spread out.
    pub async fn retry<T, F, Fut>(&self, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut delay = self.first_delay;
        let mut attempt = 1;
        loop {
            match call().await {
                Err(err @ Error::Retryable { .. }) if attempt < self.attempts => {
                    tracing::info!(attempt, error = %err, "throttled or unavailable; backing off");
                    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % (delay.as_millis() as u64 / 2 + 1);
                    tokio::time::sleep(delay + Duration::from_millis(jitter)).await;
                    delay = (delay * 2).min(self.max_delay);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::error::ErrorKind;

    fn quick(attempts: u32) -> Backoff {
        Backoff { attempts, first_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) }
    }

    #[tokio::test]
    async fn retries_throttling_until_it_passes() {
        let calls = AtomicU32::new(0);
        let result = quick(5)
            .retry(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 3 { Err(Error::retryable("slow down")) } else { Ok(7) }
            })
            .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn gives_up_after_the_last_attempt_and_never_retries_other_errors() {
        let calls = AtomicU32::new(0);
        let result: Result<()> = quick(3)
            .retry(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::retryable("slow down"))
            })
            .await;
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Retryable);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        calls.store(0, Ordering::SeqCst);
        let result: Result<()> = quick(3)
            .retry(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::Conflict("exists".into()))
            })
            .await;
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Conflict);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

//! How a failed command is retried: lost connections with capped backoff,
//! for as long as it takes, and once the run is stopping for
//! `stop_timeout` more at most.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::{IntakeError, Kind, Redacted, Trouble, classify};
use crate::sync::{Mutex, lock};

/// Runs `command` until it succeeds or fails for good: lost connections
/// and other passing trouble are retried with capped exponential backoff
/// (100 ms doubling to 5 s), logged without the connection's credentials.
/// Once `stop` has begun, for its `timeout` at most: then the trouble is an
/// [`IntakeError`] (`is_unreachable`).
pub(super) async fn retrying<T, F, Fut>(
    stream: &str,
    stop: Option<&Stop>,
    command: F,
) -> Result<T, IntakeError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    let mut pause = Duration::from_millis(100);
    loop {
        let err = match command().await {
            Ok(v) => return Ok(v),
            Err(err) => match classify(err, stream) {
                Trouble::Fatal(e) => return Err(e),
                Trouble::Retry(err) => err,
            },
        };
        let mut wait = pause;
        if let Some(left) = stop.and_then(Stop::after_trouble) {
            if left.is_zero() {
                return Err(IntakeError::new(
                    Kind::Unreachable,
                    stream,
                    Redacted(&err).to_string(),
                ));
            }
            wait = wait.min(left);
        }
        tracing::warn!(stream, error = %Redacted(&err), retry_in = ?wait, "redis command failed; retrying");
        tokio::time::sleep(wait).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Once the pool's token is cancelled, a broker that cannot be reached is
/// tried for `timeout` more, from the first failure after the
/// cancellation, and not for as long as it takes: a service's shutdown
/// must end.
pub(super) struct Stop {
    /// The pool's cancellation token: cancelled, the run is stopping.
    pub(super) token: CancellationToken,
    /// The intake's `stop_timeout`.
    pub(super) timeout: Duration,
    trouble_since: Mutex<Option<Instant>>,
}

impl Stop {
    pub(super) fn new(token: CancellationToken, timeout: Duration) -> Stop {
        Stop {
            token,
            timeout,
            trouble_since: Mutex::new(None),
        }
    }

    /// After a failed command: whether to give up on it rather than try
    /// again, and how long to wait at most before that.
    fn after_trouble(&self) -> Option<Duration> {
        if !self.token.is_cancelled() {
            return None;
        }
        let since = *lock(&self.trouble_since).get_or_insert_with(Instant::now);
        Some((since + self.timeout).saturating_duration_since(Instant::now()))
    }
}

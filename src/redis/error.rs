//! Why an intake stopped for good, and how a failed command is sorted
//! (retry or stop) and shown, never with the connection's credentials.

use std::fmt;

/// A permanent failure of a [`StreamIntake`](super::StreamIntake): one a
/// retry cannot fix. Lost connections are not errors: the intake retries
/// them, with capped exponential backoff, and logs them, except once it is
/// stopping, for [`stop_timeout`](super::StreamIntakeBuilder::stop_timeout)
/// at most ([`is_unreachable`](IntakeError::is_unreachable)).
///
/// Its `Display` and `Debug` never show the connection's password: they
/// name the stream and the kind of failure, with the server's own message.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(client: redis::Client) {
/// use taskpool::redis::StreamIntake;
///
/// match StreamIntake::builder(client, "jobs", "workers").build().await {
///     Ok(intake) => drop(intake),
///     Err(e) if e.is_wrong_type() => eprintln!("`jobs` is not a stream: {e}"),
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct IntakeError {
    kind: Kind,
    stream: String,
    detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// The server refused our credentials (or has none and we sent some).
    Auth,
    /// The stream's key holds another type.
    WrongType,
    /// The consumer group is gone and could not be created again.
    Group,
    /// The server refused a command for another lasting reason.
    Refused,
    /// Stopping, the server could not be reached within `stop_timeout`.
    Unreachable,
}

impl IntakeError {
    pub(super) fn new(kind: Kind, stream: &str, detail: impl Into<String>) -> IntakeError {
        IntakeError {
            kind,
            stream: stream.to_owned(),
            detail: detail.into(),
        }
    }

    pub(super) fn kind(&self) -> Kind {
        self.kind
    }

    /// The server's message, or what went wrong, without the kind's words.
    pub(super) fn detail(&self) -> &str {
        &self.detail
    }

    /// The server refused the connection's credentials.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) {
    /// match taskpool::redis::StreamIntake::builder(client, "jobs", "workers").build().await {
    ///     Err(e) if e.is_auth() => eprintln!("check REDIS_URL's password: {e}"),
    ///     other => drop(other),
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn is_auth(&self) -> bool {
        self.kind == Kind::Auth
    }

    /// The stream's key holds a value of another type.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(client: redis::Client) {
    /// match taskpool::redis::StreamIntake::builder(client, "jobs", "workers").build().await {
    ///     Err(e) if e.is_wrong_type() => eprintln!("another program uses the key `jobs`: {e}"),
    ///     other => drop(other),
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn is_wrong_type(&self) -> bool {
        self.kind == Kind::WrongType
    }
}

impl IntakeError {
    /// The intake was stopping (its pool's token cancelled) and the server
    /// could not be reached within
    /// [`stop_timeout`](super::StreamIntakeBuilder::stop_timeout). The
    /// message says how many handled entries were not acknowledged; those
    /// stay pending on the server and run again after `min_idle`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(intake: taskpool::redis::StreamIntake, pool: taskpool::WorkerPool) {
    /// match intake.run(&pool, |_| async { Ok::<(), String>(()) }).await {
    ///     Err(e) if e.is_unreachable() => eprintln!("stopped without the broker: {e}"),
    ///     other => drop(other),
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        self.kind == Kind::Unreachable
    }
}

impl fmt::Display for IntakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stream = &self.stream;
        match self.kind {
            Kind::Auth => write!(f, "redis refused the credentials for stream `{stream}`"),
            Kind::WrongType => write!(f, "key `{stream}` is not a stream"),
            Kind::Group => write!(
                f,
                "the consumer group of stream `{stream}` is gone and could not be created"
            ),
            Kind::Refused => write!(f, "redis refused a command on stream `{stream}`"),
            Kind::Unreachable => write!(
                f,
                "redis could not be reached for stream `{stream}` while stopping"
            ),
        }?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl fmt::Debug for IntakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntakeError")
            .field("kind", &self.kind)
            .field("stream", &self.stream)
            .field("detail", &self.detail)
            .finish()
    }
}

impl std::error::Error for IntakeError {}

/// What to do about a failed command.
pub(super) enum Trouble {
    /// Try again, after a pause: the connection, or the server's load.
    Retry(redis::RedisError),
    /// Stop: retrying cannot help.
    Fatal(IntakeError),
}

/// Sorts a failed command into [`Trouble`]. Only the server's error code
/// and message are kept: never the connection's address or credentials.
pub(super) fn classify(err: redis::RedisError, stream: &str) -> Trouble {
    let code = err.code().unwrap_or_default().to_owned();
    let message = match (code.as_str(), err.detail()) {
        ("", Some(detail)) => detail.to_owned(),
        (code, Some(detail)) => format!("{code} {detail}"),
        (code, None) => code.to_owned(),
    };
    let fatal = |kind| Trouble::Fatal(IntakeError::new(kind, stream, message.clone()));
    if err.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(code.as_str(), "NOAUTH" | "WRONGPASS" | "NOPERM")
        || (code == "ERR" && message.contains("AUTH"))
    {
        return fatal(Kind::Auth);
    }
    match code.as_str() {
        "WRONGTYPE" => fatal(Kind::WrongType),
        "NOGROUP" => fatal(Kind::Group),
        // A command the server will never take (a syntax error, a script
        // error, a refused configuration).
        "ERR" | "NOSCRIPT" | "EXECABORT" => fatal(Kind::Refused),
        // Everything else (a lost or refused connection, a timeout,
        // LOADING, BUSY, TRYAGAIN, a failover) passes.
        _ => Trouble::Retry(err),
    }
}

/// A redis error as logged: its kind, code and detail, never the
/// connection's info.
pub(super) struct Redacted<'a>(pub(super) &'a redis::RedisError);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let err = self.0;
        write!(f, "{:?}", err.kind())?;
        if let Some(code) = err.code() {
            write!(f, " {code}")?;
        }
        if let Some(detail) = err.detail() {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

//! The `Spawn` and `Pool` impls of `WorkerPool` and `BoundedSpawner`,
//! written once: each forwards to the inherent method of the same name and
//! signature, so that users need no trait import for the common case and
//! generic code gets the same behaviour.

/// Implements [`Spawn`](crate::Spawn) (with its seal) and [`Pool`](crate::Pool) for a
/// pool type by forwarding to its inherent methods, which have the same
/// signatures.
macro_rules! forward_traits {
    ($ty:ident, $resize:ident) => {
        impl $crate::spawn::sealed::Sealed for $ty {}

        impl $crate::spawn::Spawn for $ty {
            fn spawn<F>(&self, future: F) -> $crate::submit::spawning::Spawning<'_, F>
            where
                F: std::future::Future + Send + 'static,
                F::Output: Send + 'static,
            {
                $ty::spawn(self, future)
            }

            fn try_spawn<F>(
                &self,
                future: F,
            ) -> Result<$crate::job::JoinHandle<F::Output>, $crate::error::TrySpawnError<F>>
            where
                F: std::future::Future + Send + 'static,
                F::Output: Send + 'static,
            {
                $ty::try_spawn(self, future)
            }

            #[track_caller]
            fn blocking_spawn<F>(
                &self,
                future: F,
            ) -> Result<$crate::job::JoinHandle<F::Output>, $crate::error::SpawnError<F>>
            where
                F: std::future::Future + Send + 'static,
                F::Output: Send + 'static,
            {
                $ty::blocking_spawn(self, future)
            }

            fn spawn_blocking<F, R>(&self, f: F) -> $crate::submit::spawning::SpawnBlocking<'_, F>
            where
                F: FnOnce() -> R + Send + 'static,
                R: Send + 'static,
            {
                $ty::spawn_blocking(self, f)
            }

            fn try_spawn_blocking<F, R>(
                &self,
                f: F,
            ) -> Result<$crate::job::JoinHandle<R>, $crate::error::TrySpawnError<F>>
            where
                F: FnOnce() -> R + Send + 'static,
                R: Send + 'static,
            {
                $ty::try_spawn_blocking(self, f)
            }

            fn execute<F>(&self, future: F) -> $crate::submit::spawning::Executing<'_, F>
            where
                F: std::future::Future<Output = ()> + Send + 'static,
            {
                $ty::execute(self, future)
            }

            fn try_execute<F>(
                &self,
                future: F,
            ) -> Result<$crate::JobId, $crate::error::TrySpawnError<F>>
            where
                F: std::future::Future<Output = ()> + Send + 'static,
            {
                $ty::try_execute(self, future)
            }

            fn job(&self) -> $crate::submit::JobBuilder<'_> {
                $ty::job(self)
            }

            fn reserve(&self) -> $crate::submit::reserve::Reserve<'_> {
                $ty::reserve(self)
            }

            fn try_reserve(
                &self,
            ) -> Result<$crate::submit::SpawnPermit<'_>, $crate::error::TrySpawnError<()>> {
                $ty::try_reserve(self)
            }

            fn reserve_owned(self) -> $crate::submit::reserve::ReserveOwned {
                $ty::reserve_owned(self)
            }

            fn try_reserve_owned(
                self,
            ) -> Result<$crate::submit::OwnedSpawnPermit, $crate::error::TrySpawnError<()>> {
                $ty::try_reserve_owned(self)
            }
        }

        impl $crate::pool::Pool for $ty {
            fn close(&self) -> bool {
                $ty::close(self)
            }

            fn is_closed(&self) -> bool {
                $ty::is_closed(self)
            }

            #[track_caller]
            fn shutdown(&self) -> impl std::future::Future<Output = ()> + Send {
                $ty::shutdown(self)
            }

            #[track_caller]
            fn shutdown_timeout(
                &self,
                grace: std::time::Duration,
            ) -> impl std::future::Future<Output = bool> + Send {
                $ty::shutdown_timeout(self, grace)
            }

            fn abort_all(&self) {
                $ty::abort_all(self)
            }

            #[track_caller]
            fn wait(&self) -> impl std::future::Future<Output = ()> + Send {
                $ty::wait(self)
            }

            fn metrics(&self) -> $crate::metrics::Metrics {
                $ty::metrics(self)
            }

            fn latency(&self) -> $crate::metrics::LatencySnapshot {
                $ty::latency(self)
            }

            fn resize(&self, size: usize) -> Result<(), $crate::error::ResizeError> {
                $ty::$resize(self, size)
            }

            fn cancellation_token(&self) -> tokio_util::sync::CancellationToken {
                $ty::cancellation_token(self)
            }
        }
    };
}
pub(crate) use forward_traits;

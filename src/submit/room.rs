//! Room for one job, of either kind of pool, borrowed or owned: what a
//! [`SpawnPermit`](crate::permit::SpawnPermit) holds, and what a job is started in.

use std::sync::Arc;

use crate::worker_pool::queue::{OwnedPermit, Permit};

use super::start::{Kind, Payload, start};
use crate::job::{JobOptions, QueuedJob};
use crate::spawner::room::TaskRoom;
use crate::spawner::state::SpawnerState;
use crate::worker_pool::room::QueueRoom;
use crate::worker_pool::state::PoolState;

/// Room for one job, borrowed from its pool.
#[derive(Debug)]
pub(crate) enum Room<'a> {
    Queue(QueueRoom<&'a PoolState, Permit<'a, QueuedJob>>),
    Tasks(TaskRoom<&'a SpawnerState>),
}

/// Room for one job, owning a handle to its pool.
#[derive(Debug)]
pub(crate) enum OwnedRoom {
    Queue(QueueRoom<Arc<PoolState>, OwnedPermit<QueuedJob>>),
    Tasks(TaskRoom<Arc<SpawnerState>>),
}

impl Room<'_> {
    /// Starts the job in this room. Infallible: an admitted job is never
    /// lost (if its runner goes away, it is cancelled and its handle says so).
    #[inline]
    pub(crate) fn spawn<P: Payload, K: Kind<P::Output>>(
        self,
        payload: P,
        options: &JobOptions<'_>,
    ) -> K::Out {
        match self {
            Room::Queue(room) => start::<_, _, K>(room, payload, options),
            Room::Tasks(room) => start::<_, _, K>(room, payload, options),
        }
    }
}

impl OwnedRoom {
    /// See [`Room::spawn`].
    #[inline]
    pub(crate) fn spawn<P: Payload, K: Kind<P::Output>>(
        self,
        payload: P,
        options: &JobOptions<'_>,
    ) -> K::Out {
        match self {
            OwnedRoom::Queue(room) => start::<_, _, K>(room, payload, options),
            OwnedRoom::Tasks(room) => start::<_, _, K>(room, payload, options),
        }
    }
}

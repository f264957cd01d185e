//! Admission: the one place where the two kinds of pool differ in how a
//! job gets room. A worker pool gives out slots in its queue, a spawner
//! semaphore permits; everything built on room (reserving, waiting for it,
//! spawning with it, counting refusals) is written once on top of the enums
//! here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::mpsc::{OwnedPermit, Permit};

use crate::backend::{Backend, Core};
use crate::error::TrySpawnError;
use crate::job::{self, JobOptions, QueuedJob};
use crate::join::JoinHandle;
use crate::spawner::tasks;
use crate::worker_pool::queue;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that gives out room for jobs: a pool, borrowed for `'a`, or
/// owned (`'static`).
pub(crate) trait Admit<'a> {
    type Room: Send + 'a;

    fn core(&self) -> &Core;

    /// Room if some is free right now (the pool is open: the caller checked).
    fn try_room(&self) -> Result<Self::Room, TrySpawnError<()>>;

    /// Waits for room, in FIFO order with every other waiter; `None` if the
    /// pool closes first (room is never handed out after a close). Cancel
    /// safe: dropped, it holds no room and no place in line. Boxed: tokio's
    /// `reserve` and `acquire_owned` futures have no name; only a submitter
    /// that has to wait pays for the box.
    fn wait(&self) -> BoxFuture<'a, Option<Self::Room>>;
}

/// Room if some is free now: refused if the pool is closed (whatever its
/// channel or semaphore says) or full.
pub(crate) fn try_admit<'a, A: Admit<'a>>(admit: &A) -> Result<A::Room, TrySpawnError<()>> {
    let lifecycle = &admit.core().lifecycle;
    let refused = if lifecycle.is_closed() {
        TrySpawnError::Closed(())
    } else {
        match admit.try_room() {
            Ok(room) => return Ok(room),
            Err(refused) => refused,
        }
    };
    Err(match refused {
        TrySpawnError::Closed(()) if lifecycle.is_runtime_gone() => {
            TrySpawnError::RuntimeShutdown(())
        }
        refused => refused,
    })
}

/// A pool, borrowed: what `reserve` and `spawn` take room from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Admitter<'a> {
    Queue(&'a queue::Shared),
    Tasks(&'a tasks::Shared),
}

/// A pool, owned: what `reserve_owned` takes room from.
#[derive(Clone, Debug)]
pub(crate) enum OwnedAdmitter {
    Queue(Arc<queue::Shared>),
    Tasks(Arc<tasks::Shared>),
}

/// Room for one job, borrowed from its pool.
#[derive(Debug)]
pub(crate) enum Room<'a> {
    Queue(queue::Slot<&'a queue::Shared, Permit<'a, QueuedJob>>),
    Tasks(tasks::Slot<&'a tasks::Shared>),
}

/// Room for one job, owning a handle to its pool.
#[derive(Debug)]
pub(crate) enum OwnedRoom {
    Queue(queue::Slot<Arc<queue::Shared>, OwnedPermit<QueuedJob>>),
    Tasks(tasks::Slot<Arc<tasks::Shared>>),
}

impl<'a> Admit<'a> for Admitter<'a> {
    type Room = Room<'a>;

    fn core(&self) -> &Core {
        match *self {
            Admitter::Queue(shared) => shared.core(),
            Admitter::Tasks(shared) => shared.core(),
        }
    }

    fn try_room(&self) -> Result<Room<'a>, TrySpawnError<()>> {
        match *self {
            Admitter::Queue(shared) => shared.try_admit().map(Room::Queue),
            Admitter::Tasks(shared) => shared.try_admit().map(Room::Tasks),
        }
    }

    fn wait(&self) -> BoxFuture<'a, Option<Room<'a>>> {
        match *self {
            Admitter::Queue(shared) => {
                Box::pin(shared.wait_for_room().map(|slot| slot.map(Room::Queue)))
            }
            Admitter::Tasks(shared) => {
                Box::pin(shared.wait_for_room().map(|slot| slot.map(Room::Tasks)))
            }
        }
    }
}

impl Admit<'static> for OwnedAdmitter {
    type Room = OwnedRoom;

    fn core(&self) -> &Core {
        match self {
            OwnedAdmitter::Queue(shared) => shared.core(),
            OwnedAdmitter::Tasks(shared) => shared.core(),
        }
    }

    fn try_room(&self) -> Result<OwnedRoom, TrySpawnError<()>> {
        match self {
            OwnedAdmitter::Queue(shared) => shared.try_admit_owned().map(OwnedRoom::Queue),
            OwnedAdmitter::Tasks(shared) => shared.try_admit_owned().map(OwnedRoom::Tasks),
        }
    }

    fn wait(&self) -> BoxFuture<'static, Option<OwnedRoom>> {
        match self.clone() {
            OwnedAdmitter::Queue(shared) => Box::pin(
                shared
                    .wait_for_room_owned()
                    .map(|slot| slot.map(OwnedRoom::Queue)),
            ),
            OwnedAdmitter::Tasks(shared) => Box::pin(
                shared
                    .wait_for_room_owned()
                    .map(|slot| slot.map(OwnedRoom::Tasks)),
            ),
        }
    }
}

impl Room<'_> {
    /// Starts the job in this room. Infallible: an admitted job is never
    /// lost (if its runner goes away, it is cancelled and its handle says so).
    #[inline]
    pub(crate) fn spawn<F>(self, future: F, options: &JobOptions<'_>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Room::Queue(slot) => job::launch(slot, future, options),
            Room::Tasks(slot) => job::launch(slot, future, options),
        }
    }
}

impl OwnedRoom {
    /// See [`Room::spawn`].
    #[inline]
    pub(crate) fn spawn<F>(self, future: F, options: &JobOptions<'_>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            OwnedRoom::Queue(slot) => job::launch(slot, future, options),
            OwnedRoom::Tasks(slot) => job::launch(slot, future, options),
        }
    }
}

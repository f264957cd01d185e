//! Admission: the one place where the two kinds of pool differ in how a
//! job gets room. A [`Target`] is the pool a submission goes to; it gives
//! out [`Room`]: a place in a worker pool's queue, or a spawner's semaphore
//! permit. Everything built on room (reserving, waiting for it, spawning
//! with it, counting refusals) is written once on top of these enums.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;

use super::room::{OwnedRoom, Room};
use super::scheduler::Schedule;
use crate::backend::{Backend, Core};
use crate::error::TrySpawnError;
use crate::spawner::room as task_room;
use crate::spawner::state::SpawnerState;
use crate::worker_pool::room as queue_room;
use crate::worker_pool::state::PoolState;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that gives out room for jobs: a pool, borrowed for `'a`, or
/// owned (`'static`).
pub(crate) trait Admit<'a> {
    type Room: Send + 'a;

    fn core(&self) -> &Core;

    /// Room if some is free right now (the pool is open: the caller
    /// checked), for a job scheduled as `schedule`.
    fn try_room(&self, schedule: Schedule) -> Result<Self::Room, TrySpawnError<()>>;

    /// Waits for room, in FIFO order with every other waiter (a spawner:
    /// in the order its scheduler gives them by `schedule`); `None` if the
    /// pool closes first (room is never handed out after a close). Cancel
    /// safe: dropped, it holds no room and no place in line. Boxed: tokio's
    /// `reserve` future and the spawner's wait have no name; only a
    /// submitter that has to wait pays for the box.
    fn wait(&self, schedule: Schedule) -> BoxFuture<'a, Option<Self::Room>>;
}

/// Room if some is free now: refused if the pool is closed (whatever its
/// channel or semaphore says) or full.
pub(crate) fn try_admit<'a, A: Admit<'a>>(
    admit: &A,
    schedule: Schedule,
) -> Result<A::Room, TrySpawnError<()>> {
    let lifecycle = &admit.core().lifecycle;
    let refused = if lifecycle.is_closed() {
        TrySpawnError::Closed(())
    } else {
        match admit.try_room(schedule) {
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
pub(crate) enum Target<'a> {
    Queue(&'a PoolState),
    Tasks(&'a SpawnerState),
}

/// A pool, owned: what `reserve_owned` takes room from.
#[derive(Clone, Debug)]
pub(crate) enum OwnedTarget {
    Queue(Arc<PoolState>),
    Tasks(Arc<SpawnerState>),
}

impl<'a> Admit<'a> for Target<'a> {
    type Room = Room<'a>;

    fn core(&self) -> &Core {
        match *self {
            Target::Queue(state) => state.core(),
            Target::Tasks(state) => state.core(),
        }
    }

    fn try_room(&self, schedule: Schedule) -> Result<Room<'a>, TrySpawnError<()>> {
        match *self {
            Target::Queue(state) => queue_room::try_room(state).map(Room::Queue),
            Target::Tasks(state) => task_room::try_room(state, schedule).map(Room::Tasks),
        }
    }

    fn wait(&self, schedule: Schedule) -> BoxFuture<'a, Option<Room<'a>>> {
        match *self {
            Target::Queue(state) => {
                Box::pin(queue_room::wait_for_room(state).map(|room| room.map(Room::Queue)))
            }
            Target::Tasks(state) => Box::pin(
                task_room::wait_for_room(state, schedule).map(|room| room.map(Room::Tasks)),
            ),
        }
    }
}

impl Admit<'static> for OwnedTarget {
    type Room = OwnedRoom;

    fn core(&self) -> &Core {
        match self {
            OwnedTarget::Queue(state) => state.core(),
            OwnedTarget::Tasks(state) => state.core(),
        }
    }

    fn try_room(&self, schedule: Schedule) -> Result<OwnedRoom, TrySpawnError<()>> {
        match self {
            OwnedTarget::Queue(state) => queue_room::try_room_owned(state).map(OwnedRoom::Queue),
            OwnedTarget::Tasks(state) => {
                task_room::try_room_owned(state, schedule).map(OwnedRoom::Tasks)
            }
        }
    }

    fn wait(&self, schedule: Schedule) -> BoxFuture<'static, Option<OwnedRoom>> {
        match self.clone() {
            OwnedTarget::Queue(state) => Box::pin(
                queue_room::wait_for_room_owned(state).map(|room| room.map(OwnedRoom::Queue)),
            ),
            OwnedTarget::Tasks(state) => Box::pin(
                task_room::wait_for_room_owned(state, schedule)
                    .map(|room| room.map(OwnedRoom::Tasks)),
            ),
        }
    }
}

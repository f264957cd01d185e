//! Room for one job, reserved ahead of the job: what
//! [`reserve`](crate::Spawn::reserve) and its kin hand out. Reserve, then
//! read the work (from a socket, a broker), then spawn it: so nothing is
//! read that the pool has no room for.

pub use crate::submit::{OwnedSpawnPermit, SpawnPermit};

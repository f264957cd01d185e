//! The named futures of submission, for code that keeps one in a struct
//! or polls it by hand (a tower `Service`'s `poll_ready`, say). Most code
//! just `.await`s them and never names them.

pub use crate::submit::{Executing, Reserve, ReserveOwned, SpawnBlocking, Spawning};

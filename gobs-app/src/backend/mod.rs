//! The boundary between the command line / daemon and whatever keeps machines: the
//! [`Backend`] trait (one method per operation, written out from the list in
//! [`crate::ops`]) and [`boss::BossBackend`], which implements it with the actors.
//!
//! The command line and the daemon only hold a `Box<dyn Backend + Send + Sync>` and run
//! each [`Request`](crate::ops::Request) on it with
//! [`Request::execute`](crate::ops::Request::execute), so both modes answer alike.

pub mod boss;
pub mod route;
#[cfg(test)]
pub(crate) mod testing;
pub mod timeouts;

pub use crate::ops::Backend;

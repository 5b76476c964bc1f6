//! The names a program that serves or reaches gobs actors over OCapN uses:
//! `use gobs_ocapn::prelude::*;`. There is no protocol reference here (the CapTP
//! `captp::Ref`): a far reference is a [`gobs_runtime::Ref<T>`], so this imports beside
//! `gobs_runtime::Ref` without a clash.

pub use crate::locator::Sturdyref;
pub use crate::node::{Node, NodeBuilder, NodeError};
pub use crate::vat::RemoteObject;

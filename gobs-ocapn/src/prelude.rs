//! The names a program that serves or reaches gobs actors over OCapN uses:
//! `use gobs_ocapn::prelude::*;`. A far reference is a [`gobs_runtime::Ref<T>`]; the
//! protocol's own reference inside a term is [`captp::CapRef`](crate::captp::CapRef), named
//! apart so that no import of it clashes with `gobs_runtime::Ref`.

pub use crate::locator::Sturdyref;
pub use crate::node::{Node, NodeBuilder, NodeError};
pub use crate::vat::RemoteObject;

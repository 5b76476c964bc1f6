//! Persistence: persistent vats, the registry that joins them, and how references are
//! written into portraits.

pub(crate) mod context;
pub mod migrate;
pub(crate) mod names;
pub(crate) mod persistent;
pub(crate) mod reach;
pub(crate) mod registry;
pub(crate) mod roots;

pub use persistent::{PersistentVat, PersistentVatBuilder};
pub use registry::{MARKER, Registry, StoreKind};
pub use roots::Roots;

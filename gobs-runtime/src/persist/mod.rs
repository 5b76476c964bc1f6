//! Persistence: contexts for references in portraits; persistent vats (to come).
pub(crate) mod context;

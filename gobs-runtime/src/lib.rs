//! gobs-runtime: persistent actors in the style of Spritely Goblins.

pub mod portrait;
pub mod store;

//! Peer benchmarks of gobs (see `benches/`); the library is empty.

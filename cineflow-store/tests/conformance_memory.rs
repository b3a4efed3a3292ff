//! The store conformance suite against `MemoryStore`, cineflow-core's reference implementation.

use cineflow_store::conformance::MemoryFactory;

cineflow_store::conformance_tests!(Some(MemoryFactory::new()));

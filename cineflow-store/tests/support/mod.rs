//! Helpers shared by the store test files.

pub(crate) mod upgrade;

//! (being written)
pub mod migration;

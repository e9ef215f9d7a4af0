//! Filters over the sequence of mattes.

pub mod temporal;

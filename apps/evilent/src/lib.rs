//! # evilent — the composition roots
//!
//! Wiring only: [`system`] assembles the services, the broker and the
//! workers of one process; [`demo`] plays the seed's end-to-end scenario
//! against a running system. The binary (`main.rs`) turns command-line
//! arguments into calls of these.

pub mod config;
pub mod crash;
pub mod demo;
pub mod system;

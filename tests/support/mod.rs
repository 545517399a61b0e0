//! What every test binary shares: a real Keymint per test on each storage
//! backend (`spawn_app`), throwaway PostgreSQL databases, reading a child
//! process's log, use cases wired in-process, and `for_each_backend!`.
//!
//! Each binary includes this module with `mod support;` (the `api` binary with a
//! `#[path]`) and uses only part of it.

#![allow(dead_code, unused_imports)]

mod app;
pub mod browser;
pub mod database;
mod in_process;
pub mod process;
pub mod receiver;
pub mod stdout;

pub use app::*;
pub use in_process::*;

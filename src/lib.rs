//! The Keymint service: configuration and wiring of every layer into a running
//! HTTP server. The binary (`src/main.rs`) only parses the command line and calls
//! into this crate; tests call [`Application::build`] directly.

// Only the binary sets an allocator parameter unsafely (src/main.rs).
#![forbid(unsafe_code)]

pub mod configuration;
pub mod startup;
pub mod telemetry;

pub use configuration::{ConfigError, Settings};
pub use startup::Application;

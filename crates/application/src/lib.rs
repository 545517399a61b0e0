//! Keymint's use cases and the ports (traits) they need from the outside world.
//!
//! Adapters in `keymint-infrastructure` implement the ports; `keymint-web` drives the
//! use cases. Nothing here knows about HTTP, SQL or a particular async runtime.
//! With the `mocks` feature every port has a mockall mock (`MockApiKeyRepository`, …)
//! for other crates' tests.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod ports;
pub mod use_cases;

pub use ports::*;
pub use use_cases::*;

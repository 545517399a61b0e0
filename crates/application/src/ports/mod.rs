//! The ports: what the use cases need, split by capability.

mod auth;
mod clock;
mod generator;
mod hasher;
mod repository;
mod verification;

pub use auth::*;
pub use clock::*;
pub use generator::*;
pub use hasher::*;
pub use repository::*;
pub use verification::*;

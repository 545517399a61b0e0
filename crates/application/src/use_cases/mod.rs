//! The use cases. Every key operation is a method of [`ApiKeys`], each with its
//! own error enum naming exactly the outcomes a caller must handle.

mod api_keys;
mod authenticate;
mod leaks;
mod verify_api_key;
mod webhooks;

pub use api_keys::*;
pub use authenticate::*;
pub use leaks::*;
pub use verify_api_key::*;
pub use webhooks::*;

//! The use cases. Every key operation is a method of [`ApiKeys`] whose error
//! enum names exactly the outcomes a caller must handle: creating, rotating
//! and changing credits have their own ([`CreateApiKeyError`],
//! [`RotateApiKeyError`], [`ChangeCreditsError`]); the operations on an
//! existing key whose only outcomes are "forbidden", "not found" and storage
//! failures (get, update, revoke, delete, its events, a leak report, and the
//! list, which never answers "not found") share [`KeyError`] rather than
//! repeat it six times.

mod analytics;
mod api_keys;
mod authenticate;
mod leaks;
mod verify_api_key;
mod webhooks;

pub use analytics::*;
pub use api_keys::*;
pub use authenticate::*;
pub use leaks::*;
pub use verify_api_key::*;
pub use webhooks::*;

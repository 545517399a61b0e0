//! `/api/v2/webhooks`: an organisation's endpoints for key events, their
//! signing secrets (shown once) and their deliveries.
//!
//! Request bodies (`requests`), response bodies (`responses`) and handlers
//! (`handlers`), each in a module of its own, as the key routes are.

pub(crate) mod handlers;
mod requests;
mod responses;

pub(crate) use handlers::*;

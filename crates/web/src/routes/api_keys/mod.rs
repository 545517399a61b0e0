//! The key lifecycle routes, served identically under `/api/v1` and `/api/v2`:
//! request bodies, response bodies and handlers, each in a module of its own.

pub(crate) mod handlers;
mod import;
mod requests;
mod responses;

pub(crate) use handlers::*;
pub(crate) use import::*;
pub(crate) use requests::KeyPath;
pub(crate) use requests::{meta_answer_schema, name_pattern as visible_text_pattern};

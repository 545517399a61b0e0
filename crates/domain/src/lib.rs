//! Keymint's domain: the rules of an API key, with no I/O.
//!
//! This crate is deliberately free of async runtimes, web frameworks and database
//! libraries so that other programs can reuse it, for example to check a presented
//! key's format and checksum offline before asking Keymint anything:
//!
//! ```
//! use keymint_domain::{Environment, KeyMaterial, PrivateKey};
//!
//! let material = KeyMaterial::generate(Environment::Test, &mut rand_core::OsRng);
//! let presented = material.private_key().expose_secret().to_owned();
//!
//! let parsed = PrivateKey::parse(&presented).expect("a freshly generated key parses");
//! assert_eq!(parsed.environment(), Environment::Test);
//! assert_eq!(parsed.lookup_id(), material.lookup_id());
//!
//! // One changed character is caught by the checksum, before any storage is involved.
//! let mut typo = presented.clone();
//! typo.replace_range(20..21, if &presented[20..21] == "a" { "b" } else { "a" });
//! assert!(PrivateKey::parse(&typo).is_err());
//! ```
//!
//! Every validated type has private fields and a constructor returning a specific
//! error, so a value of the type is proof that its rules hold.

#![forbid(unsafe_code)]
// Others build on this crate: every public item is documented, and every public
// item is reachable from the crate root (nothing `pub` hides in a private module).
#![warn(missing_docs, unreachable_pub)]

mod address;
mod analytics;
mod api_key;
mod audit;
mod base62;
mod credits;
mod delivery;
mod description;
mod environment;
mod ids;
mod imported;
mod key_material;
mod leak;
mod meta;
mod metering;
mod name;
mod owner;
mod permission;
mod ratelimit;
mod secret_hash;
mod subject;
pub mod text;
mod webhook;

pub use address::is_public_address;
pub use analytics::{
    Granularity, Tag, TagError, TagSet, TagSetError, UnknownGranularity, UnknownOutcome, VerificationOutcome, MAX_TAGS,
    MAX_TAG_CHARS, MAX_TAG_SETS_PER_KEY_MINUTE, OVERFLOW_TAG, RESERVED_TAG_PREFIX,
};
pub use api_key::{
    check_expiry, ApiKey, ApiKeyParts, Credential, ExpiryError, KeyStatus, NewApiKey, PreviousCredential, RotateError,
    MAX_GRACE_PERIOD_SECONDS,
};
pub use audit::{AuditAction, AuditEvent, KeyField, UnknownAuditAction, UnknownKeyField};
pub use credits::{Credits, CreditsError, Refill, RefillInterval, MAX_CREDITS};
pub use delivery::{pick_fairly, BreakerPolicy, Candidate, EndpointHealth, EndpointState, FairShare, InFlight};
pub use description::{KeyDescription, KeyDescriptionError, MAX_DESCRIPTION_CHARS};
pub use environment::{Environment, UnknownEnvironment};
pub use ids::{KeyId, OrgId};
pub use imported::{
    ForeignKey, ForeignKeyError, KeyDigest, KeyDigestError, PresentedKey, MAX_FOREIGN_KEY_CHARS, MIN_FOREIGN_KEY_CHARS,
};
pub use key_material::{
    KeyDisplay, KeyFormat, KeyFormatError, KeyMaterial, KeyPrefix, KeyPrefixError, LookupId, PrivateKey, PublicKey,
    CHECKSUM_CHARS, LOOKUP_ID_CHARS, MAX_PREFIX_CHARS, PUBLIC_KEY_RANDOM_CHARS, SECRET_CHARS,
};
pub use leak::{
    LeakReport, LeakSource, LeakSourceError, LeakUrl, LeakUrlError, MAX_LEAK_SOURCE_CHARS, MAX_LEAK_URL_CHARS,
    SELF_REPORT,
};
pub use meta::{KeyMeta, KeyMetaError, MAX_META_BYTES};
pub use metering::{Demand, Ledger, LimitState, Outcome, Settlement, WindowCount};
pub use name::{KeyName, KeyNameError, NameSearch, MAX_NAME_CHARS};
pub use owner::{OwnerId, OwnerIdError, MAX_OWNER_ID_CHARS};
pub use permission::{
    PermissionName, PermissionNameError, PermissionQuery, PermissionQueryError, Permissions, PermissionsError,
    MAX_PERMISSIONS, MAX_PERMISSION_CHARS, MAX_QUERY_CHARS, MAX_QUERY_DEPTH,
};
pub use ratelimit::{
    RateLimit, RateLimitError, RateLimits, Window, MAX_LIMIT, MAX_RATE_LIMITS, MAX_RATE_LIMIT_NAME_CHARS,
    MAX_WINDOW_MS, MIN_WINDOW_MS,
};
pub use secret_hash::{SecretHash, SecretHashError};
pub use subject::{Subject, SubjectError, MAX_SUBJECT_CHARS};
pub use text::{
    check_characters, check_visible_text, classify, is_bidi_control, is_blank, is_invisible, CharClass, Lines,
    TextError,
};
pub use webhook::{
    retry_delay, EventType, EventTypes, NoEventTypes, Sweep, UnknownEventType, Webhook, WebhookSecret,
    WebhookSecretError, WebhookUrl, WebhookUrlError, MAX_WEBHOOK_URL_CHARS,
};

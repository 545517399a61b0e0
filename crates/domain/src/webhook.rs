//! Webhooks: which key events an organisation's endpoint receives, where, and
//! how each delivery is signed (the Standard Webhooks scheme: HMAC-SHA256 over
//! `{id}.{timestamp}.{body}`, sent as `webhook-signature: v1,<base64>`).
//!
//! A receiver written in Rust can check Keymint's signatures with
//! [`WebhookSecret::sign`] and a constant-time comparison.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{ApiKey, AuditAction, EndpointHealth, OrgId};

/// Something that happened to a key, as a webhook names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A key was created.
    KeyCreated,
    /// Its name, description, permissions, owner, metadata, limits or credits changed.
    KeyUpdated,
    /// It received a new private key.
    KeyRotated,
    /// It was revoked.
    KeyRevoked,
    /// It was deleted.
    KeyDeleted,
    /// One of its private keys was reported leaked.
    KeyLeaked,
    /// It expires within the configured notice.
    KeyExpiring,
    /// Its credits fell to the configured threshold or below.
    KeyCreditsLow,
}

impl EventType {
    /// Every event type, in a stable order.
    pub const ALL: [EventType; 8] = [
        EventType::KeyCreated,
        EventType::KeyUpdated,
        EventType::KeyRotated,
        EventType::KeyRevoked,
        EventType::KeyDeleted,
        EventType::KeyLeaked,
        EventType::KeyExpiring,
        EventType::KeyCreditsLow,
    ];

    /// The name on the wire and in storage (`key.created`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::KeyCreated => "key.created",
            EventType::KeyUpdated => "key.updated",
            EventType::KeyRotated => "key.rotated",
            EventType::KeyRevoked => "key.revoked",
            EventType::KeyDeleted => "key.deleted",
            EventType::KeyLeaked => "key.leaked",
            EventType::KeyExpiring => "key.expiring",
            EventType::KeyCreditsLow => "key.credits_low",
        }
    }

    /// The event an audited change announces. An imported key is, for those
    /// who watch, a key that now exists: `key.created`.
    pub fn of_action(action: AuditAction) -> Self {
        match action {
            AuditAction::Created | AuditAction::Imported => EventType::KeyCreated,
            AuditAction::Updated => EventType::KeyUpdated,
            AuditAction::Revoked => EventType::KeyRevoked,
            AuditAction::Rotated => EventType::KeyRotated,
            AuditAction::Deleted => EventType::KeyDeleted,
            AuditAction::Leaked => EventType::KeyLeaked,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text names no event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type")]
pub struct UnknownEventType;

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|event| event.as_str() == s)
            .ok_or(UnknownEventType)
    }
}

/// The event types a webhook receives: at least one, each once, in
/// [`EventType::ALL`] order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTypes(Vec<EventType>);

/// A webhook must receive something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a webhook needs at least one event type")]
pub struct NoEventTypes;

impl EventTypes {
    /// The set of `types`, refusing an empty one.
    pub fn new(types: impl IntoIterator<Item = EventType>) -> Result<Self, NoEventTypes> {
        let mut types: Vec<EventType> = types.into_iter().collect();
        types.sort();
        types.dedup();
        if types.is_empty() {
            return Err(NoEventTypes);
        }
        Ok(Self(types))
    }

    /// Every event type.
    pub fn all() -> Self {
        Self(EventType::ALL.to_vec())
    }

    /// Whether `event` is among them.
    pub fn contains(&self, event: EventType) -> bool {
        self.0.contains(&event)
    }

    /// The types, in order.
    pub fn iter(&self) -> impl Iterator<Item = EventType> + '_ {
        self.0.iter().copied()
    }
}

/// Characters a [`WebhookUrl`] may have at most.
pub const MAX_WEBHOOK_URL_CHARS: usize = 2048;

/// Where a webhook's deliveries go: an absolute `https` URL (or `http`, when the
/// deployment allows it) with a host, no credentials and no fragment.
///
/// Whether the host may be reached (private, loopback and link-local addresses
/// are refused unless allowed) is judged twice: at registration for a literal
/// address or a `localhost` name ([`WebhookUrl::public_only`]), and when
/// delivering, after DNS resolution, since a name can change what it points at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WebhookUrl(String);

/// Why a webhook URL was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    /// Not an absolute URL, or over [`MAX_WEBHOOK_URL_CHARS`].
    #[error("must be an absolute URL of at most {MAX_WEBHOOK_URL_CHARS} characters")]
    Malformed,
    /// Not `https` (nor `http` where allowed).
    #[error("must use https")]
    Scheme,
    /// Holds a user name or password, which would be stored and shown.
    #[error("must not hold credentials; authenticate deliveries by their signature")]
    Credentials,
    /// Has a `#fragment`, which is never sent.
    #[error("must not have a fragment")]
    Fragment,
    /// Its host is an address that is not on the public internet, or a name
    /// that always means this machine (`localhost`).
    #[error("must not point at a private, loopback, link-local or reserved address")]
    PrivateAddress,
}

impl WebhookUrl {
    /// Checks a URL; `allow_http` also accepts `http`.
    pub fn parse(raw: &str, allow_http: bool) -> Result<Self, WebhookUrlError> {
        if raw.chars().count() > MAX_WEBHOOK_URL_CHARS || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(WebhookUrlError::Malformed);
        }
        let url = url::Url::parse(raw).map_err(|_| WebhookUrlError::Malformed)?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            _ => return Err(WebhookUrlError::Scheme),
        }
        if url.host().is_none() {
            return Err(WebhookUrlError::Malformed);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookUrlError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(WebhookUrlError::Fragment);
        }
        // Kept as given (not re-serialised), so that what the customer sent is
        // what they read back and what is called.
        Ok(Self(raw.to_owned()))
    }

    /// Refuses a URL whose host can be judged without DNS and is not public:
    /// an IP literal in any spelling the URL standard reads (`0x7f.1`,
    /// `[::ffff:7f00:1]`, `[2002:7f00:1::]`; see [`crate::is_public_address`])
    /// or `localhost` and its subdomains (RFC 6761). Deliveries would only ever
    /// fail, so the customer hears it now rather than after eight attempts.
    pub fn public_only(self) -> Result<Self, WebhookUrlError> {
        let url = url::Url::parse(&self.0).map_err(|_| WebhookUrlError::Malformed)?;
        let public = match url.host() {
            Some(url::Host::Ipv4(ip)) => crate::is_public_address(ip.into()),
            Some(url::Host::Ipv6(ip)) => crate::is_public_address(ip.into()),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name != "localhost" && !name.ends_with(".localhost")
            }
            None => false,
        };
        if public {
            Ok(self)
        } else {
            Err(WebhookUrlError::PrivateAddress)
        }
    }

    /// Restores a stored URL, which was checked when it was set.
    pub fn restore(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The prefix of a Standard Webhooks signing secret.
const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a signing secret.
const SECRET_BYTES: usize = 32;

/// A webhook's signing secret, `whsec_<base64 of 32 random bytes>`, as the
/// Standard Webhooks specification formats it. Shown once, when created or
/// rotated. `Debug` does not print it and its memory is wiped on drop.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<String>);

/// The text is not a signing secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a signing secret is whsec_ followed by base64")]
pub struct WebhookSecretError;

impl WebhookSecret {
    /// Draws a new secret from `rng`.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
        rng.fill_bytes(bytes.as_mut());
        Self(Zeroizing::new(format!(
            "{SECRET_PREFIX}{}",
            STANDARD.encode(bytes.as_ref())
        )))
    }

    /// Restores a stored secret, checking its form.
    pub fn parse(raw: &str) -> Result<Self, WebhookSecretError> {
        let key = raw.strip_prefix(SECRET_PREFIX).ok_or(WebhookSecretError)?;
        match STANDARD.decode(key) {
            Ok(bytes) if !bytes.is_empty() => Ok(Self(Zeroizing::new(raw.to_owned()))),
            _ => Err(WebhookSecretError),
        }
    }

    /// The secret as text. Call it only to store it or show it once.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The Standard Webhooks signature of a delivery: `v1,<base64 HMAC-SHA256
    /// of "{id}.{timestamp}.{body}">`, keyed with the secret's decoded bytes.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = Zeroizing::new(STANDARD.decode(&self.0[SECRET_PREFIX.len()..]).unwrap_or_default());
        // HMAC takes a key of any length, so this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
            return String::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// An organisation's webhook endpoint. Its signing secret is kept apart: it is
/// read only to sign, and shown only when created or rotated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// The webhook's id.
    pub id: Uuid,
    /// The owning organisation.
    pub org_id: OrgId,
    /// Where deliveries go.
    pub url: WebhookUrl,
    /// What it receives.
    pub event_types: EventTypes,
    /// Whether events are queued for it and its queued deliveries sent.
    pub enabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// How it has been answering: its circuit breaker.
    pub health: EndpointHealth,
}

impl Webhook {
    /// Whether an event of `event_type` in the webhook's organisation is queued
    /// for it: it is enabled and subscribed to the type. The SQL adapter asks
    /// the same in its queries (`sql/outbox.rs`), where a row cannot call this.
    pub fn receives(&self, event_type: EventType) -> bool {
        self.enabled && self.event_types.contains(event_type)
    }
}

/// What a sweep for announcements looks for: the rules deciding which keys
/// are due a `key.expiring` or a `key.credits_low`, asked by every adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sweep {
    /// Announce keys expiring up to this time.
    pub expiring_before: DateTime<Utc>,
    /// Announce keys with at most this many credits left.
    pub credits_at_most: u64,
}

impl Sweep {
    /// Whether `key` is due a `key.expiring` at `now`: unrevoked, not yet
    /// expired, expiring by [`Sweep::expiring_before`].
    pub fn finds_expiring(&self, key: &ApiKey, now: DateTime<Utc>) -> bool {
        !key.is_revoked()
            && key
                .expires_at()
                .is_some_and(|at| at > now && at <= self.expiring_before)
    }

    /// Whether `key` is due a `key.credits_low` at `now`: its credits, refills
    /// counted (a stored balance may predate one), are at most
    /// [`Sweep::credits_at_most`].
    pub fn finds_low_credits(&self, key: &ApiKey, now: DateTime<Utc>) -> bool {
        key.credits()
            .is_some_and(|credits| credits.as_of(now).remaining() <= self.credits_at_most)
    }
}

/// How long to wait before retrying a delivery that failed `failures` times
/// (1 for the first failure): `base · 2^(failures-1)`, capped at `cap`, of which
/// a random part is taken away ("equal jitter": between half and all of it),
/// so that an endpoint that comes back is not hit by every retry at once.
/// `unit` is a uniform draw from `[0, 1)`.
pub fn retry_delay(failures: u32, base: chrono::Duration, cap: chrono::Duration, unit: f64) -> chrono::Duration {
    let exponent = failures.saturating_sub(1).min(30);
    let full = base
        .checked_mul(1 << exponent)
        .unwrap_or(cap)
        .min(cap)
        .max(chrono::Duration::zero());
    let millis = full.num_milliseconds();
    let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.0 };
    // Half is fixed, half is drawn: never less than half the full delay.
    let drawn = ((millis / 2) as f64 * unit) as i64;
    chrono::Duration::milliseconds(millis - millis / 2 + drawn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_receives_the_types_it_chose_while_enabled() {
        let mut webhook = Webhook {
            id: Uuid::nil(),
            org_id: OrgId::from_uuid(Uuid::nil()),
            url: WebhookUrl::parse("https://hooks.example.com/k", false).unwrap(),
            event_types: EventTypes::new(vec![EventType::KeyRevoked]).unwrap(),
            enabled: true,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            health: EndpointHealth::default(),
        };
        assert!(webhook.receives(EventType::KeyRevoked));
        assert!(!webhook.receives(EventType::KeyCreated));
        webhook.enabled = false;
        assert!(!webhook.receives(EventType::KeyRevoked));
    }
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn event_types_round_trip_and_cover_every_audited_action() {
        for event in EventType::ALL {
            assert_eq!(event.as_str().parse::<EventType>(), Ok(event));
        }
        assert_eq!("key.viewed".parse::<EventType>(), Err(UnknownEventType));
        assert_eq!(EventType::of_action(AuditAction::Leaked), EventType::KeyLeaked);
        assert_eq!(EventType::of_action(AuditAction::Imported), EventType::KeyCreated);
        let set = EventTypes::new([EventType::KeyRevoked, EventType::KeyCreated, EventType::KeyRevoked]).unwrap();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [EventType::KeyCreated, EventType::KeyRevoked]
        );
        assert_eq!(EventTypes::new([]), Err(NoEventTypes));
    }

    #[test]
    fn urls_are_https_with_a_host_and_nothing_secret() {
        assert!(WebhookUrl::parse("https://hooks.example.com/keymint?x=1", false).is_ok());
        assert_eq!(
            WebhookUrl::parse("http://hooks.example.com/", false),
            Err(WebhookUrlError::Scheme)
        );
        assert!(WebhookUrl::parse("http://hooks.example.com/", true).is_ok());
        for (bad, error) in [
            ("hooks.example.com", WebhookUrlError::Malformed),
            ("https://", WebhookUrlError::Malformed),
            ("https://a b.example/", WebhookUrlError::Malformed),
            ("ftp://example.com/", WebhookUrlError::Scheme),
            ("file:///etc/passwd", WebhookUrlError::Scheme),
            ("https://user:pw@example.com/", WebhookUrlError::Credentials),
            ("https://example.com/#top", WebhookUrlError::Fragment),
        ] {
            assert_eq!(WebhookUrl::parse(bad, true), Err(error), "{bad}");
        }
        let longest = format!("https://e.test/{}", "a".repeat(MAX_WEBHOOK_URL_CHARS - 15));
        assert!(WebhookUrl::parse(&longest, false).is_ok());
        assert_eq!(
            WebhookUrl::parse(&format!("{longest}a"), false),
            Err(WebhookUrlError::Malformed)
        );
    }

    #[test]
    fn secrets_are_standard_webhooks_secrets_and_never_debug_printed() {
        let secret = WebhookSecret::generate(&mut StdRng::seed_from_u64(1));
        let text = secret.expose_secret();
        assert!(text.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&text[6..]).unwrap().len(), 32);
        assert!(WebhookSecret::parse(text).is_ok());
        assert!(!format!("{secret:?}").contains(&text[6..]));
        for bad in ["", "whsec_", "whsec_!!", "sk_abc"] {
            assert_eq!(WebhookSecret::parse(bad).err(), Some(WebhookSecretError), "{bad}");
        }
    }

    #[test]
    fn the_signature_matches_the_standard_webhooks_test_vector() {
        // The example in the Standard Webhooks specification's reference
        // implementations.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn retries_back_off_exponentially_to_the_cap_with_at_most_half_drawn() {
        let (base, cap) = (chrono::Duration::seconds(10), chrono::Duration::hours(1));
        assert_eq!(retry_delay(1, base, cap, 1.0), chrono::Duration::seconds(10));
        assert_eq!(retry_delay(1, base, cap, 0.0), chrono::Duration::seconds(5));
        assert_eq!(retry_delay(3, base, cap, 1.0), chrono::Duration::seconds(40));
        assert_eq!(retry_delay(20, base, cap, 1.0), cap);
        assert_eq!(retry_delay(u32::MAX, base, cap, 0.0), chrono::Duration::minutes(30));
        assert_eq!(retry_delay(2, base, cap, f64::NAN), chrono::Duration::seconds(10));
        for failures in 1..40 {
            let delay = retry_delay(failures, base, cap, 0.5);
            assert!(delay > chrono::Duration::zero() && delay <= cap);
        }
    }
}

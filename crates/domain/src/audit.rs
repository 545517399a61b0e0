use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{KeyId, LeakReport, OrgId, Subject};

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// The key was created.
    Created,
    /// The key was brought in from another key system, with the private key it
    /// already had.
    Imported,
    /// Its name or description changed.
    Updated,
    /// It was revoked.
    Revoked,
    /// It received a new private key.
    Rotated,
    /// It was deleted.
    Deleted,
    /// One of its private keys was reported leaked (and, unless the deployment
    /// only flags leaks, taken out of use).
    Leaked,
}

impl AuditAction {
    /// The stable lowercase name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Created => "created",
            AuditAction::Imported => "imported",
            AuditAction::Updated => "updated",
            AuditAction::Revoked => "revoked",
            AuditAction::Rotated => "rotated",
            AuditAction::Deleted => "deleted",
            AuditAction::Leaked => "leaked",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text names no audit action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit action")]
pub struct UnknownAuditAction;

impl FromStr for AuditAction {
    type Err = UnknownAuditAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "created" => Ok(AuditAction::Created),
            "imported" => Ok(AuditAction::Imported),
            "updated" => Ok(AuditAction::Updated),
            "revoked" => Ok(AuditAction::Revoked),
            "rotated" => Ok(AuditAction::Rotated),
            "deleted" => Ok(AuditAction::Deleted),
            "leaked" => Ok(AuditAction::Leaked),
            _ => Err(UnknownAuditAction),
        }
    }
}

/// A field of a key that an update can change, as the audit trail names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyField {
    /// `name`
    Name,
    /// `description`
    Description,
    /// `permissions`
    Permissions,
    /// `owner_id`
    OwnerId,
    /// `meta`
    Meta,
    /// `ratelimits`
    Ratelimits,
    /// `credits`: set anew by a person, unlike the spending of verifications.
    Credits,
}

impl KeyField {
    /// Every field, in the API's order.
    pub const ALL: [KeyField; 7] = [
        KeyField::Name,
        KeyField::Description,
        KeyField::Permissions,
        KeyField::OwnerId,
        KeyField::Meta,
        KeyField::Ratelimits,
        KeyField::Credits,
    ];

    /// The field's name in the API, the trail and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyField::Name => "name",
            KeyField::Description => "description",
            KeyField::Permissions => "permissions",
            KeyField::OwnerId => "owner_id",
            KeyField::Meta => "meta",
            KeyField::Ratelimits => "ratelimits",
            KeyField::Credits => "credits",
        }
    }
}

/// The text names no field of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown key field")]
pub struct UnknownKeyField;

impl FromStr for KeyField {
    type Err = UnknownKeyField;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyField::ALL
            .into_iter()
            .find(|field| field.as_str() == s)
            .ok_or(UnknownKeyField)
    }
}

/// One entry of a key's audit trail: who did what, when, in which request. It
/// holds no secret by construction: there is no field a secret could go in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// The event's id.
    pub id: Uuid,
    /// The key acted on.
    pub key_id: KeyId,
    /// The key's organisation.
    pub org_id: OrgId,
    /// What was done.
    pub action: AuditAction,
    /// The acting token's `sub`, if it had one.
    pub actor: Option<Subject>,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// The HTTP request that did it, for correlation with logs.
    pub request_id: Option<String>,
    /// For an update, the fields it changed (names only, never values);
    /// empty for other actions.
    pub fields: Vec<KeyField>,
    /// For `leaked`, where the leak was seen; `None` for other actions.
    pub leak: Option<LeakReport>,
}

impl AuditEvent {
    /// Whether the change sets the key's credits anew. Storage then writes the
    /// balance (a change of anything else leaves what verifications spent in
    /// the meantime) and forgets that low credits were announced, since
    /// running low again is news again.
    pub fn sets_credits(&self) -> bool {
        self.fields.contains(&KeyField::Credits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_field_reads_back_from_its_name_and_only_credits_set_credits() {
        for field in KeyField::ALL {
            assert_eq!(field.as_str().parse::<KeyField>(), Ok(field));
        }
        assert_eq!("credit".parse::<KeyField>(), Err(UnknownKeyField));
        let event = |fields: Vec<KeyField>| AuditEvent {
            id: Uuid::nil(),
            key_id: KeyId::from_uuid(Uuid::nil()),
            org_id: OrgId::from_uuid(Uuid::nil()),
            action: AuditAction::Updated,
            actor: None,
            occurred_at: DateTime::<Utc>::UNIX_EPOCH,
            request_id: None,
            fields,
            leak: None,
        };
        assert!(event(vec![KeyField::Name, KeyField::Credits]).sets_credits());
        assert!(!event(vec![KeyField::Name, KeyField::Ratelimits]).sets_credits());
    }

    #[test]
    fn actions_round_trip_through_their_names() {
        for action in [
            AuditAction::Created,
            AuditAction::Imported,
            AuditAction::Updated,
            AuditAction::Revoked,
            AuditAction::Rotated,
            AuditAction::Deleted,
            AuditAction::Leaked,
        ] {
            assert_eq!(action.as_str().parse::<AuditAction>(), Ok(action));
        }
        assert_eq!("viewed".parse::<AuditAction>(), Err(UnknownAuditAction));
    }
}

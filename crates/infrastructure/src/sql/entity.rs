//! The tables as sea-orm sees them. Only this adapter uses these types: rows
//! become domain values in the repository.

pub mod api_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub org_id: Uuid,
        pub name: String,
        /// The name as searches compare it (`KeyName::folded`).
        pub name_folded: String,
        pub description: Option<String>,
        pub environment: String,
        #[sea_orm(unique)]
        pub public_key: String,
        #[sea_orm(unique)]
        pub lookup_id: String,
        pub secret_hash: String,
        pub private_key_display: String,
        pub created_at: DateTimeUtc,
        pub is_revoked: bool,
        pub revoked_at: Option<DateTimeUtc>,
        pub last_used_at: Option<DateTimeUtc>,
        pub expires_at: Option<DateTimeUtc>,
        pub revision: i32,
        pub previous_lookup_id: Option<String>,
        pub previous_secret_hash: Option<String>,
        pub previous_valid_until: Option<DateTimeUtc>,
        /// Hex SHA-256 of a private key found by digest (brought in from
        /// another system); `NULL` for keys found by lookup id.
        #[sea_orm(unique)]
        pub lookup_digest: Option<String>,
        pub previous_lookup_digest: Option<String>,
        /// Space-separated permission names.
        pub permissions: String,
        pub owner_id: Option<String>,
        /// Compact JSON text of an object.
        pub meta: Option<String>,
        /// `name,limit,duration_ms,auto` entries separated by spaces.
        pub ratelimits: String,
        /// `NULL`: unlimited use.
        pub credits_remaining: Option<i64>,
        pub credits_period: Option<DateTimeUtc>,
        /// `daily:<amount>` or `monthly:<amount>:<day>`.
        pub credits_refill: Option<String>,
        pub leaked_at: Option<DateTimeUtc>,
    }

    /// Written by hand so that hashes never reach a log through `{:?}`.
    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("api_keys::Model")
                .field("id", &self.id)
                .field("org_id", &self.org_id)
                .field("public_key", &self.public_key)
                .field("revision", &self.revision)
                .finish_non_exhaustive()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod api_key_events {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_key_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub key_id: Uuid,
        pub org_id: Uuid,
        pub action: String,
        pub actor: Option<String>,
        pub request_id: Option<String>,
        pub occurred_at: DateTimeUtc,
        /// Space-separated names of the fields an update changed.
        pub fields: String,
        pub leak_source: Option<String>,
        pub leak_url: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod organizations {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "organizations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        #[sea_orm(unique)]
        pub external_id: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod key_rate_windows {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "key_rate_windows")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub window_start_ms: i64,
        pub used: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod idempotency_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub org_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub idempotency_key: String,
        /// A fingerprint of the request first made with the key.
        pub request: String,
        /// The credits it left: `<remaining> <period micros> <refill or ->`.
        pub response: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod webhooks {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhooks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub org_id: Uuid,
        pub url: String,
        /// ` key.created key.revoked `: space-separated, a space at each end.
        pub event_types: String,
        pub enabled: bool,
        pub secret: String,
        pub previous_secret: Option<String>,
        pub previous_secret_until: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub consecutive_failures: i32,
        pub paused_until: Option<DateTimeUtc>,
    }

    /// Written by hand so that signing secrets never reach a log through `{:?}`.
    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("webhooks::Model")
                .field("id", &self.id)
                .field("org_id", &self.org_id)
                .finish_non_exhaustive()
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod webhook_deliveries {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_deliveries")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub id: Uuid,
        pub webhook_id: Uuid,
        pub org_id: Uuid,
        pub key_id: Uuid,
        pub event_type: String,
        pub payload: String,
        pub status: String,
        pub attempts: i32,
        pub next_attempt_at: Option<DateTimeUtc>,
        pub locked_until: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod webhook_attempts {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_attempts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub delivery_id: Uuid,
        pub attempted_at: DateTimeUtc,
        pub latency_ms: i64,
        pub status_code: Option<i32>,
        pub error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

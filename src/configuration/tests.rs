use super::*;
use std::time::Duration;

// Named by the tests, not imported by the parent module.
use jsonwebtoken::Algorithm;
use keymint_domain::{Environment, KeyFormat, KeyPrefix};
use keymint_infrastructure::sql::DatabaseUrl;
use keymint_infrastructure::JwksConfig;

fn with(key: &str, value: impl serde::Serialize) -> Result<Settings, ConfigError> {
    Settings::from_figment(Settings::defaults().merge((key, value)))
}

#[test]
fn the_shipped_defaults_load_and_use_sqlite_under_data() {
    let settings = Settings::from_figment(Settings::defaults()).unwrap();
    assert_eq!(settings.profile, Profile::Development);
    assert_eq!(settings.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        settings.database.url.sql().map(DatabaseUrl::expose_secret),
        Some("sqlite://data/keymint.db")
    );
    assert_eq!(settings.argon2_params(), Argon2Params::default());
    assert_eq!(settings.keys.default_environment, Environment::Live);
    assert!(settings.uses_development_secret());
    assert!(settings.metrics.enabled, "metrics are on, on the API's listener");
    assert_eq!(settings.metrics.listen, None);
}

#[test]
fn production_refuses_the_development_secret_and_short_secrets() {
    let err = with("profile", "production").unwrap_err().to_string();
    assert!(err.contains("auth.hs256_secret"), "{err}");
    let short = Settings::from_figment(
        Settings::defaults()
            .merge(("profile", "production"))
            .merge(("auth.hs256_secret", "short")),
    );
    assert!(short.unwrap_err().to_string().contains("at least 32 bytes"));
    let good = Settings::from_figment(
        Settings::defaults()
            .merge(("profile", "production"))
            .merge(("auth.hs256_secret", "a-production-secret-of-sufficient-length")),
    );
    assert!(good.is_ok());
}

#[test]
fn the_auth_mode_follows_jwks_url_then_secret_then_issuer() {
    let jwks = with("auth.jwks_url", "https://tenant.example/.well-known/jwks.json").unwrap();
    assert!(matches!(
        jwks.auth.mode,
        AuthMode::Jwks(JwksConfig {
            source: JwksSource::Url(_),
            ..
        })
    ));
    assert!(
        !jwks.uses_development_secret(),
        "the secret is unused when a JWKS is configured"
    );

    let hs = Settings::from_figment(Settings::defaults()).unwrap();
    assert!(matches!(hs.auth.mode, AuthMode::Hs256(_)));

    let discovery = Settings::from_figment(
        Settings::defaults()
            .merge(("auth.hs256_secret", ""))
            .merge(("auth.issuer", "https://tenant.example/")),
    )
    .unwrap();
    assert!(matches!(
        discovery.auth.mode,
        AuthMode::Jwks(JwksConfig {
            source: JwksSource::Discovery { .. },
            ..
        })
    ));

    let none = Settings::from_figment(Settings::defaults().merge(("auth.hs256_secret", "")));
    assert!(none
        .unwrap_err()
        .to_string()
        .contains("no token verification configured"));
    let bad = Settings::from_figment(
        Settings::defaults()
            .merge(("auth.jwks_url", "https://t.example/jwks"))
            .merge(("auth.algorithms", "RS256,HS256")),
    );
    assert!(bad.unwrap_err().to_string().contains("auth.algorithms"));
}

#[test]
fn production_accepts_a_jwks_without_any_secret() {
    let settings = Settings::from_figment(
        Settings::defaults()
            .merge(("profile", "production"))
            .merge(("auth.hs256_secret", ""))
            .merge(("auth.issuer", "https://tenant.example/"))
            .merge(("auth.audience", "https://keymint.example")),
    );
    assert!(settings.is_ok());
}

#[test]
fn bad_values_are_refused_with_the_key_named() {
    let cases: [(&str, Result<Settings, ConfigError>); 8] = [
        ("hashing.memory_kib", with("hashing.memory_kib", "lots")),
        ("server.listen", with("server.listen", "localhost")),
        ("metrics.listen", with("metrics.listen", "localhost:9090")),
        ("keys.default_environment", with("keys.default_environment", "prod")),
        ("hashing", with("hashing.iterations", 0)),
        ("typo", with("server.typo", 1)),
        (
            "server.trusted_proxies",
            with("server.trusted_proxies", "10.0.0.0/8, proxy.internal"),
        ),
        ("server.forwarded_header", with("server.forwarded_header", "x-real-ip")),
    ];
    for (key, result) in cases {
        let message = result.unwrap_err().to_string();
        assert!(message.contains(key), "{key}: {message}");
    }
}

#[test]
fn analytics_buckets_are_kept_no_shorter_than_finer_ones() {
    let days_short = with("analytics.day_retention_days", 30).unwrap_err().to_string();
    assert!(
        days_short.contains("analytics.day_retention_days") && days_short.contains("hour_retention_days"),
        "{days_short}"
    );
    let hours_short = with("analytics.hour_retention_days", 3).unwrap_err().to_string();
    assert!(hours_short.contains("analytics.hour_retention_days"), "{hours_short}");
    let settings = with("analytics.day_retention_days", 90).unwrap();
    assert_eq!(settings.analytics.day_retention, Duration::from_secs(90 * 86_400));
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let settings = with("auth.hs256_secret", "super-secret-value-0123456789abcdef").unwrap();
    let debug = format!("{settings:?}");
    assert!(!debug.contains("super-secret-value"), "{debug}");
    assert!(
        !debug.contains("sqlite://data"),
        "database URLs can hold passwords: {debug}"
    );
}

#[test]
fn values_are_parsed_once_into_their_types() {
    let settings = Settings::from_figment(
        Settings::defaults()
            .merge(("server.shutdown_timeout_seconds", 7))
            .merge(("verify.cache_ttl_seconds", 9))
            .merge(("auth.jwks_url", "https://tenant.example/.well-known/jwks.json"))
            .merge(("auth.algorithms", "RS256, ES256"))
            .merge(("database.url", "postgres://keymint:pw@db.example/keymint")),
    )
    .unwrap();
    assert_eq!(settings.server.shutdown_timeout, Duration::from_secs(7));
    assert_eq!(settings.verify.cache_ttl, Duration::from_secs(9));
    match &settings.auth.mode {
        AuthMode::Jwks(config) => assert_eq!(config.algorithms, [Algorithm::RS256, Algorithm::ES256]),
        AuthMode::Hs256(_) => panic!("a JWKS URL wins"),
    }
    assert!(matches!(
        settings.database.url,
        StorageUrl::Sql(DatabaseUrl::Postgres(_))
    ));

    let listed = with("auth.algorithms", ["PS256"]).unwrap();
    assert!(
        matches!(listed.auth.mode, AuthMode::Hs256(_)),
        "the shipped secret still wins"
    );
    let memory = with("database.url", MEMORY_URL).unwrap();
    assert!(matches!(memory.database.url, StorageUrl::Memory));
}

#[test]
fn an_unknown_storage_scheme_is_refused_at_load_without_echoing_the_url() {
    let message = with("database.url", "mysql://root:hunter2@db.example/keymint")
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("database.url: unsupported database URL scheme"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn zero_where_a_period_must_pass_is_refused_with_the_key_named() {
    for key in ["verify.usage_flush_seconds", "verify.failure_window_seconds"] {
        let message = with(key, 0).unwrap_err().to_string();
        assert!(message.contains(key), "{key}: {message}");
        assert!(message.contains("greater than 0"), "{key}: {message}");
    }
    let jwks = Settings::from_figment(
        Settings::defaults()
            .merge(("auth.jwks_url", "https://t.example/jwks"))
            .merge(("auth.jwks_refresh_seconds", 0)),
    );
    assert!(jwks.unwrap_err().to_string().contains("auth.jwks_refresh_seconds"));
    let empty = with("auth.algorithms", " , ").unwrap_err().to_string();
    assert!(
        empty.contains("auth.algorithms: must name at least one algorithm"),
        "{empty}"
    );
    let claim = with("auth.org_claim", " ").unwrap_err().to_string();
    assert!(claim.contains("auth.org_claim: must not be empty"), "{claim}");
}

#[test]
fn an_issuer_wins_over_the_shipped_secret_but_not_over_an_operators_own() {
    let issuer = "https://tenant.example/";
    let shipped = with("auth.issuer", issuer).unwrap();
    assert!(
        matches!(
            &shipped.auth.mode,
            AuthMode::Jwks(JwksConfig {
                source: JwksSource::Discovery { .. },
                ..
            })
        ),
        "{:?}",
        shipped.auth.mode
    );
    assert!(!shipped.uses_development_secret());
    assert!(shipped
        .describe_auth()
        .starts_with("mode=jwks discovery=https://tenant.example/.well-known"));

    let own = Settings::from_figment(
        Settings::defaults()
            .merge(("auth.issuer", issuer))
            .merge(("auth.hs256_secret", "an-operator-chosen-secret-0123456789")),
    )
    .unwrap();
    assert!(matches!(own.auth.mode, AuthMode::Hs256(_)));
    assert_eq!(
        own.describe_auth(),
        "mode=hs256 algorithms=HS256 issuer=https://tenant.example/ audience=(unchecked) org_claim=org_id"
    );
    assert!(
        !own.describe_auth().contains("operator-chosen"),
        "the secret is never described"
    );
}

#[test]
fn key_prefixes_are_checked_at_start_up_and_read_from_lists_or_text() {
    let defaults = Settings::from_figment(Settings::defaults()).unwrap();
    assert_eq!(defaults.keys.format(), KeyFormat::default());

    let branded = Settings::from_figment(
        Settings::defaults()
            .merge(("keys.prefix", "acme"))
            .merge(("keys.accepted_prefixes", "sk, old1")),
    )
    .unwrap();
    let format = branded.keys.format();
    let accepted: Vec<&str> = format.accepted().iter().map(KeyPrefix::as_str).collect();
    assert_eq!(accepted, ["acme", "sk", "old1"]);
    let listed = with("keys.accepted_prefixes", ["sk", "sk"]).unwrap();
    assert_eq!(
        listed.keys.format().accepted().len(),
        1,
        "the issuing prefix is not repeated"
    );

    for (key, value, says) in [
        ("keys.prefix", "Acme", "lowercase ASCII letters and digits"),
        ("keys.prefix", "", "1 to 16 characters"),
        ("keys.prefix", "pk", "'pk' cannot be a key prefix"),
        (
            "keys.accepted_prefixes",
            "sk,acme_old",
            "lowercase ASCII letters and digits",
        ),
    ] {
        let err = with(key, value).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains(says), "{key}={value:?}: {err}");
    }
}

#[test]
fn every_section_of_the_defaults_can_be_set_from_the_environment() {
    let defaults: std::collections::BTreeMap<String, figment::value::Value> = Settings::defaults().extract().unwrap();
    let sections: Vec<&String> = defaults
        .iter()
        .filter(|(_, value)| matches!(value, figment::value::Value::Dict(..)))
        .map(|(name, _)| name)
        .collect();
    assert!(sections.len() >= 9, "{sections:?}");
    for section in sections {
        assert!(
            SECTIONS.contains(&section.as_str()),
            "KEYMINT_{}__* would be ignored",
            section.to_uppercase()
        );
    }
}

#[test]
fn trusted_proxies_are_a_list_or_one_comma_separated_text() {
    let joined = with("server.trusted_proxies", "10.0.0.0/8, 127.0.0.1,::1").unwrap();
    let listed = with("server.trusted_proxies", ["10.0.0.0/8", "127.0.0.1", "::1"]).unwrap();
    let names = |settings: &Settings| -> Vec<String> {
        settings
            .server
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(names(&joined), ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
    assert_eq!(names(&joined), names(&listed));
    let none = Settings::from_figment(Settings::defaults()).unwrap();
    assert!(none.server.trusted_proxies.is_empty(), "no proxy is trusted by default");
}

#[test]
fn production_refuses_an_http_issuer_or_jwks_off_loopback_unless_allowed() {
    let production = || Settings::defaults().merge(("profile", "production"));
    for (setting, url) in [
        ("auth.issuer", "http://idp.example/"),
        ("auth.jwks_url", "http://idp.example/.well-known/jwks.json"),
        ("auth.jwks_url", "http://user@10.0.0.8:8080/jwks"),
    ] {
        let err = Settings::from_figment(production().merge((setting, url)))
            .unwrap_err()
            .to_string();
        assert!(err.contains(setting) && err.contains("https"), "{setting}={url}: {err}");
        let allowed =
            Settings::from_figment(production().merge((setting, url)).merge(("auth.allow_http", true))).unwrap();
        assert!(
            allowed.auth.insecure_source().is_some(),
            "still reported, for the start-up warning"
        );
    }
    for url in [
        "http://127.0.0.1:9000/",
        "http://localhost/",
        "http://[::1]:8080/",
        "https://idp.example/",
    ] {
        let settings = Settings::from_figment(production().merge(("auth.issuer", url))).unwrap();
        assert_eq!(settings.auth.insecure_source(), None, "{url}");
    }
    // Development takes http anywhere (a local provider on a LAN address).
    let development =
        Settings::from_figment(Settings::defaults().merge(("auth.issuer", "http://idp.example/"))).unwrap();
    assert!(development.auth.insecure_source().is_some());
}

#[test]
fn the_discovery_url_in_the_start_up_line_has_one_slash_whatever_the_issuer() {
    for issuer in ["https://tenant.example", "https://tenant.example/"] {
        let settings = with("auth.issuer", issuer).unwrap();
        assert!(
            settings
                .describe_auth()
                .contains("discovery=https://tenant.example/.well-known/openid-configuration"),
            "{issuer}: {}",
            settings.describe_auth()
        );
    }
}

//! HS256 bearer tokens: the development (and shared-secret) configuration of the
//! token verifier port.

use std::collections::HashSet;

use async_trait::async_trait;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keymint_application::{AuthError, InvalidToken, Principal, TokenVerifier};
use keymint_domain::OrgId;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use uuid::Uuid;

/// What an HS256 verifier checks.
#[derive(Clone, Debug)]
pub struct Hs256Config {
    /// The shared secret tokens are signed with.
    pub secret: SecretString,
    /// The required `iss`, if any.
    pub issuer: Option<String>,
    /// An audience `aud` must contain, if any.
    pub audience: Option<String>,
    /// The claim that holds the organisation's UUID.
    pub org_claim: String,
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    pub leeway_seconds: u64,
}

/// Verifies HS256-signed JWTs against a shared secret.
pub struct Hs256Verifier {
    key: DecodingKey,
    validation: Validation,
    org_claim: String,
}

impl std::fmt::Debug for Hs256Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hs256Verifier")
            .field("org_claim", &self.org_claim)
            .finish_non_exhaustive()
    }
}

impl Hs256Verifier {
    /// A verifier for `config`. Only HS256 is accepted, whatever a token's header says.
    pub fn new(config: &Hs256Config) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required: HashSet<String> = HashSet::from(["exp".to_owned()]);
        match &config.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.insert("iss".to_owned());
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.insert("aud".to_owned());
            }
            None => validation.validate_aud = false,
        }
        validation.required_spec_claims = required;
        Self {
            key: DecodingKey::from_secret(config.secret.expose_secret().as_bytes()),
            validation,
            org_claim: config.org_claim.clone(),
        }
    }
}

fn invalid(kind: &ErrorKind) -> InvalidToken {
    match kind {
        ErrorKind::ExpiredSignature => InvalidToken::Expired,
        ErrorKind::ImmatureSignature => InvalidToken::NotYetValid,
        ErrorKind::InvalidSignature => InvalidToken::BadSignature,
        ErrorKind::InvalidIssuer => InvalidToken::WrongIssuer,
        ErrorKind::InvalidAudience => InvalidToken::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => InvalidToken::UnsupportedAlgorithm,
        ErrorKind::MissingRequiredClaim(_) => InvalidToken::MissingClaim,
        _ => InvalidToken::Malformed,
    }
}

#[async_trait]
impl TokenVerifier for Hs256Verifier {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::Invalid(invalid(e.kind())))?;
        let org_id = data
            .claims
            .get(&self.org_claim)
            .and_then(Value::as_str)
            .and_then(|raw| Uuid::parse_str(raw).ok())
            .ok_or(AuthError::NoOrganization)?;
        let subject = data.claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        Ok(Principal::new(OrgId::from_uuid(org_id), subject))
    }
}

/// What `keymint dev-token` signs.
#[derive(Clone, Debug)]
pub struct DevTokenRequest {
    /// The organisation to act for.
    pub org_id: Uuid,
    /// The `sub` claim.
    pub subject: String,
    /// Lifetime in seconds.
    pub ttl_seconds: u64,
}

impl DevTokenRequest {
    /// Signs a token that [`Hs256Verifier`] configured with `config` accepts.
    pub fn sign(&self, config: &Hs256Config, now_unix: u64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from(self.subject.clone()));
        claims.insert(config.org_claim.clone(), Value::from(self.org_id.to_string()));
        claims.insert("iat".into(), Value::from(now_unix));
        claims.insert("exp".into(), Value::from(now_unix.saturating_add(self.ttl_seconds)));
        if let Some(issuer) = &config.issuer {
            claims.insert("iss".into(), Value::from(issuer.clone()));
        }
        if let Some(audience) = &config.audience {
            claims.insert("aud".into(), Value::from(audience.clone()));
        }
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(config.secret.expose_secret().as_bytes()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "test-secret-of-reasonable-length-0123456789";

    fn config() -> Hs256Config {
        Hs256Config {
            secret: SecretString::from(SECRET),
            issuer: Some("https://issuer.example/".into()),
            audience: Some("https://keymint.example".into()),
            org_claim: "org_id".into(),
            leeway_seconds: 0,
        }
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn sign(claims: Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn claims() -> Value {
        json!({
            "sub": "user-1",
            "org_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "iss": "https://issuer.example/",
            "aud": ["https://keymint.example", "https://other"],
            "exp": now() + 60,
        })
    }

    async fn verify(token: &str) -> Result<Principal, AuthError> {
        Hs256Verifier::new(&config()).verify(token).await
    }

    fn with(field: &str, value: Value) -> Value {
        let mut c = claims();
        c[field] = value;
        c
    }

    #[tokio::test]
    async fn a_valid_token_yields_its_organisation_and_subject() {
        let principal = verify(&sign(claims(), SECRET)).await.unwrap();
        assert_eq!(principal.org_id().to_string(), "3c90c3cc-0d44-4b50-8888-8dd25736052a");
        assert_eq!(principal.subject(), Some("user-1"));
    }

    #[tokio::test]
    async fn tokens_failing_a_check_name_the_check() {
        let cases = [
            (sign(with("exp", json!(now() - 10)), SECRET), InvalidToken::Expired),
            (sign(with("nbf", json!(now() + 600)), SECRET), InvalidToken::NotYetValid),
            (
                sign(with("iss", json!("https://evil.example/")), SECRET),
                InvalidToken::WrongIssuer,
            ),
            (
                sign(with("aud", json!("https://other")), SECRET),
                InvalidToken::WrongAudience,
            ),
            (sign(claims(), "another-secret"), InvalidToken::BadSignature),
            ("not.a.jwt".to_owned(), InvalidToken::Malformed),
            (String::new(), InvalidToken::Malformed),
        ];
        for (token, expected) in cases {
            match verify(&token).await {
                Err(AuthError::Invalid(reason)) => assert_eq!(reason, expected),
                other => panic!("expected {expected:?}, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_token_without_exp_is_refused() {
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        assert!(matches!(
            verify(&sign(c, SECRET)).await,
            Err(AuthError::Invalid(InvalidToken::MissingClaim))
        ));
    }

    #[tokio::test]
    async fn a_wrongly_typed_exp_is_refused_not_ignored() {
        let token = sign(with("exp", json!("tomorrow")), SECRET);
        assert!(matches!(verify(&token).await, Err(AuthError::Invalid(_))));
    }

    #[tokio::test]
    async fn other_algorithms_are_refused_even_when_the_header_asks_for_them() {
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(matches!(
            verify(&token).await,
            Err(AuthError::Invalid(InvalidToken::UnsupportedAlgorithm))
        ));
        // An unsigned token: header {"alg":"none"}.
        let unsigned = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            sign(claims(), SECRET).split('.').nth(1).unwrap()
        );
        assert!(matches!(verify(&unsigned).await, Err(AuthError::Invalid(_))));
    }

    #[tokio::test]
    async fn a_missing_or_non_uuid_organisation_is_no_organization() {
        for org in [json!(null), json!("org_9ybsU1dN2dKfDkBi"), json!(42)] {
            let token = sign(with("org_id", org), SECRET);
            assert!(matches!(verify(&token).await, Err(AuthError::NoOrganization)));
        }
    }

    #[tokio::test]
    async fn a_namespaced_organisation_claim_can_be_configured() {
        let mut cfg = config();
        cfg.org_claim = "https://keymint.example/org_id".into();
        let mut c = claims();
        c.as_object_mut().unwrap().remove("org_id");
        c["https://keymint.example/org_id"] = json!("3c90c3cc-0d44-4b50-8888-8dd25736052a");
        assert!(Hs256Verifier::new(&cfg).verify(&sign(c, SECRET)).await.is_ok());
    }

    #[tokio::test]
    async fn dev_tokens_are_accepted_by_the_matching_verifier() {
        let org = Uuid::new_v4();
        let token = DevTokenRequest {
            org_id: org,
            subject: "dev".into(),
            ttl_seconds: 300,
        }
        .sign(&config(), now())
        .unwrap();
        let principal = verify(&token).await.unwrap();
        assert_eq!(principal.org_id().as_uuid(), org);
        let expired = DevTokenRequest {
            org_id: org,
            subject: "dev".into(),
            ttl_seconds: 1,
        }
        .sign(&config(), now() - 1_000)
        .unwrap();
        assert!(verify(&expired).await.is_err());
    }
}

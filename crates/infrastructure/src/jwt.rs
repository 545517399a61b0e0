//! Bearer-token verification shared by both configurations of the token port: an
//! HS256 shared secret (development, simple deployments) and JWKS (see `jwks`).

use std::collections::HashSet;

use async_trait::async_trait;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keymint_application::{AuthError, InvalidToken, Permission, TokenVerifier, VerifiedToken};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::unix_now;

/// What every verifier checks beyond the signature.
#[derive(Clone, Debug)]
pub struct ClaimRules {
    /// The required `iss`, if any.
    pub issuer: Option<String>,
    /// An audience `aud` must contain, if any.
    pub audience: Option<String>,
    /// The claim that holds the organisation.
    pub org_claim: String,
    /// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway_seconds: u64,
}

impl ClaimRules {
    /// jsonwebtoken's validation for `algorithm` under these rules: `exp` always
    /// required, `iss` and `aud` required when configured, `nbf` checked.
    pub(crate) fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required: HashSet<String> = HashSet::from(["exp".to_owned()]);
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.insert("iss".to_owned());
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.insert("aud".to_owned());
            }
            None => validation.validate_aud = false,
        }
        validation.required_spec_claims = required;
        validation
    }

    /// The claims Keymint uses, once jsonwebtoken has checked the standard ones.
    pub(crate) fn verified_token(
        &self,
        claims: &Map<String, Value>,
        now_unix: u64,
    ) -> Result<VerifiedToken, InvalidToken> {
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_f64().ok_or(InvalidToken::MissingClaim)?;
            if iat > (now_unix + self.leeway_seconds) as f64 {
                return Err(InvalidToken::IssuedInFuture);
            }
        }
        let strings = |value: &Value| -> Vec<String> {
            value
                .as_array()
                .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        // Auth0's `permissions` array, else the granted scopes: RFC 9068's
        // space-separated `scope`, or Okta's `scp` array.
        let permissions = match (claims.get("permissions"), claims.get("scope"), claims.get("scp")) {
            (Some(list), _, _) => strings(list),
            (None, Some(Value::String(scope)), _) => scope.split_whitespace().map(str::to_owned).collect(),
            (None, _, Some(list)) => strings(list),
            _ => Vec::new(),
        };
        // A `sub` that is not a string (a number, say) is not silently dropped:
        // the audit trail would record a change by nobody.
        let subject = match claims.get("sub") {
            None => None,
            Some(Value::String(sub)) => Some(sub.clone()),
            Some(_) => return Err(InvalidToken::UnusableSubject),
        };
        Ok(VerifiedToken {
            subject,
            organization: claims.get(&self.org_claim).and_then(Value::as_str).map(str::to_owned),
            permissions,
        })
    }
}

/// Names the check a jsonwebtoken error stands for.
pub(crate) fn invalid(kind: &ErrorKind) -> InvalidToken {
    match kind {
        ErrorKind::ExpiredSignature => InvalidToken::Expired,
        ErrorKind::ImmatureSignature => InvalidToken::NotYetValid,
        ErrorKind::InvalidSignature => InvalidToken::BadSignature,
        ErrorKind::InvalidIssuer => InvalidToken::WrongIssuer,
        ErrorKind::InvalidAudience => InvalidToken::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => InvalidToken::UnsupportedAlgorithm,
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => InvalidToken::MissingClaim,
        _ => InvalidToken::Malformed,
    }
}

/// What an HS256 verifier checks.
#[derive(Clone, Debug)]
pub struct Hs256Config {
    /// The shared secret tokens are signed with.
    pub secret: SecretString,
    /// The claim rules.
    pub rules: ClaimRules,
}

/// Verifies HS256-signed JWTs against a shared secret. Only HS256 is accepted,
/// whatever a token's header says.
pub struct Hs256Verifier {
    key: DecodingKey,
    validation: Validation,
    rules: ClaimRules,
}

impl std::fmt::Debug for Hs256Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hs256Verifier")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl Hs256Verifier {
    /// A verifier for `config`.
    pub fn new(config: &Hs256Config) -> Self {
        Self {
            key: DecodingKey::from_secret(config.secret.expose_secret().as_bytes()),
            validation: config.rules.validation(Algorithm::HS256),
            rules: config.rules.clone(),
        }
    }
}

#[async_trait]
impl TokenVerifier for Hs256Verifier {
    async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::Invalid(invalid(e.kind())))?;
        Ok(self.rules.verified_token(&data.claims, unix_now())?)
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
    /// Signs a token that [`Hs256Verifier`] configured with `config` accepts,
    /// with both permissions so it works when they are enforced.
    pub fn sign(&self, config: &Hs256Config, now_unix: u64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from(self.subject.clone()));
        claims.insert(config.rules.org_claim.clone(), Value::from(self.org_id.to_string()));
        claims.insert("iat".into(), Value::from(now_unix));
        claims.insert("exp".into(), Value::from(now_unix.saturating_add(self.ttl_seconds)));
        claims.insert(
            "permissions".into(),
            Value::from(Permission::ALL.map(Permission::as_str).to_vec()),
        );
        if let Some(issuer) = &config.rules.issuer {
            claims.insert("iss".into(), Value::from(issuer.clone()));
        }
        if let Some(audience) = &config.rules.audience {
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
            rules: ClaimRules {
                issuer: Some("https://issuer.example/".into()),
                audience: Some("https://keymint.example".into()),
                org_claim: "org_id".into(),
                leeway_seconds: 0,
            },
        }
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
            "exp": unix_now() + 60,
            "iat": unix_now(),
        })
    }

    async fn verify(token: &str) -> Result<VerifiedToken, AuthError> {
        Hs256Verifier::new(&config()).verify(token).await
    }

    fn with(field: &str, value: Value) -> Value {
        let mut c = claims();
        c[field] = value;
        c
    }

    #[tokio::test]
    async fn a_valid_token_yields_its_organisation_subject_and_permissions() {
        let token = verify(&sign(with("scope", json!("read:api_keys openid")), SECRET))
            .await
            .unwrap();
        assert_eq!(
            token.organization.as_deref(),
            Some("3c90c3cc-0d44-4b50-8888-8dd25736052a")
        );
        assert_eq!(token.subject.as_deref(), Some("user-1"));
        assert_eq!(token.permissions, ["read:api_keys", "openid"]);
        let okta = verify(&sign(with("scp", json!(["openid", "read:api_keys"])), SECRET))
            .await
            .unwrap();
        assert_eq!(okta.permissions, vec!["openid", "read:api_keys"], "Okta's scp array");
        let token = verify(&sign(with("permissions", json!(["write:api_keys"])), SECRET))
            .await
            .unwrap();
        assert_eq!(
            token.permissions,
            ["write:api_keys"],
            "the permissions array wins over scope"
        );
    }

    #[tokio::test]
    async fn tokens_failing_a_check_name_the_check() {
        let cases = [
            (sign(with("exp", json!(unix_now() - 10)), SECRET), InvalidToken::Expired),
            (
                sign(with("nbf", json!(unix_now() + 600)), SECRET),
                InvalidToken::NotYetValid,
            ),
            (
                sign(with("iat", json!(unix_now() + 600)), SECRET),
                InvalidToken::IssuedInFuture,
            ),
            (
                sign(with("iss", json!("https://evil.example/")), SECRET),
                InvalidToken::WrongIssuer,
            ),
            (
                sign(with("aud", json!("https://other")), SECRET),
                InvalidToken::WrongAudience,
            ),
            (sign(claims(), "another-secret"), InvalidToken::BadSignature),
            (sign(with("exp", json!("tomorrow")), SECRET), InvalidToken::MissingClaim),
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
    async fn tokens_without_exp_iss_or_aud_are_refused() {
        for claim in ["exp", "iss", "aud"] {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(claim);
            assert!(
                matches!(
                    verify(&sign(c, SECRET)).await,
                    Err(AuthError::Invalid(InvalidToken::MissingClaim))
                ),
                "{claim}"
            );
        }
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
        let unsigned = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            sign(claims(), SECRET).split('.').nth(1).unwrap()
        );
        assert!(matches!(verify(&unsigned).await, Err(AuthError::Invalid(_))));
    }

    #[tokio::test]
    async fn a_namespaced_organisation_claim_can_be_configured() {
        let mut cfg = config();
        cfg.rules.org_claim = "https://keymint.example/org_id".into();
        let mut c = claims();
        c.as_object_mut().unwrap().remove("org_id");
        c["https://keymint.example/org_id"] = json!("org_9ybsU1dN2dKfDkBi");
        let token = Hs256Verifier::new(&cfg).verify(&sign(c, SECRET)).await.unwrap();
        assert_eq!(token.organization.as_deref(), Some("org_9ybsU1dN2dKfDkBi"));
    }

    #[tokio::test]
    async fn dev_tokens_are_accepted_by_the_matching_verifier_until_they_expire() {
        let org = Uuid::new_v4();
        let token = DevTokenRequest {
            org_id: org,
            subject: "dev".into(),
            ttl_seconds: 300,
        }
        .sign(&config(), unix_now())
        .unwrap();
        let verified = verify(&token).await.unwrap();
        assert_eq!(verified.organization, Some(org.to_string()));
        assert_eq!(verified.permissions, ["read:api_keys", "write:api_keys"]);
        let expired = DevTokenRequest {
            org_id: org,
            subject: "dev".into(),
            ttl_seconds: 1,
        }
        .sign(&config(), unix_now() - 1_000)
        .unwrap();
        assert!(verify(&expired).await.is_err());
    }
}

use std::sync::Arc;

use keymint_domain::{OrgId, Subject};
use uuid::Uuid;

use crate::{AuthError, InvalidToken, OrganizationDirectory, Principal, RepositoryError, TokenVerifier};

/// The longest external organisation id accepted.
const MAX_EXTERNAL_ORG_ID: usize = 255;

/// Turns a bearer token into a [`Principal`]: verifies it, resolves its
/// organisation (a UUID as is, anything else through the directory), and carries
/// its permissions when they are enforced.
#[derive(Clone)]
pub struct Authenticate {
    verifier: Arc<dyn TokenVerifier>,
    directory: Arc<dyn OrganizationDirectory>,
    require_permissions: bool,
}

impl std::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticate")
            .field("require_permissions", &self.require_permissions)
            .finish_non_exhaustive()
    }
}

impl Authenticate {
    /// Wires the use case to its ports.
    pub fn new(
        verifier: Arc<dyn TokenVerifier>,
        directory: Arc<dyn OrganizationDirectory>,
        require_permissions: bool,
    ) -> Self {
        Self {
            verifier,
            directory,
            require_permissions,
        }
    }

    /// Who presents `token`.
    pub async fn execute(&self, token: &str) -> Result<Principal, AuthError> {
        let verified = self.verifier.verify(token).await?;
        // The subject is stored with every change this caller makes: judged once
        // here, so every database is handed only what all of them can store.
        // Every change is audited with who made it, so a token that does not
        // say who (no `sub`) is refused rather than recorded as nobody.
        let subject = verified
            .subject
            .map(Subject::new)
            .transpose()
            .map_err(|_| InvalidToken::UnusableSubject)?
            .ok_or(InvalidToken::UnusableSubject)?;
        let raw = verified
            .organization
            .filter(|org| !org.trim().is_empty())
            .ok_or(AuthError::NoOrganization)?;
        let org_id = match Uuid::try_parse(&raw) {
            Ok(uuid) => OrgId::from_uuid(uuid),
            Err(_) if raw.chars().count() > MAX_EXTERNAL_ORG_ID || raw.chars().any(char::is_control) => {
                return Err(AuthError::NoOrganization)
            }
            Err(_) => self.directory.resolve(&raw).await.map_err(|err| match err {
                RepositoryError::Unavailable(cause) => AuthError::Unavailable(cause),
                other => AuthError::Unavailable(other.into()),
            })?,
        };
        let principal = Principal::new(org_id, Some(subject));
        Ok(if self.require_permissions {
            principal.with_permissions(verified.permissions)
        } else {
            principal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MockOrganizationDirectory, MockTokenVerifier, Permission, VerifiedToken};

    fn verifier(organization: Option<&str>, permissions: &[&str]) -> MockTokenVerifier {
        let token = VerifiedToken {
            subject: Some("auth0|alice".into()),
            organization: organization.map(str::to_owned),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        };
        let mut verifier = MockTokenVerifier::new();
        verifier.expect_verify().returning(move |_| Ok(token.clone()));
        verifier
    }

    fn use_case(verifier: MockTokenVerifier, directory: MockOrganizationDirectory, enforce: bool) -> Authenticate {
        Authenticate::new(Arc::new(verifier), Arc::new(directory), enforce)
    }

    #[tokio::test]
    async fn a_uuid_organisation_is_used_as_is_without_the_directory() {
        let mut directory = MockOrganizationDirectory::new();
        directory.expect_resolve().never();
        let org = "3c90c3cc-0d44-4b50-8888-8dd25736052a";
        let principal = use_case(verifier(Some(org), &[]), directory, false)
            .execute("t")
            .await
            .unwrap();
        assert_eq!(principal.org_id().to_string(), org);
        assert_eq!(principal.subject().map(Subject::as_str), Some("auth0|alice"));
    }

    #[tokio::test]
    async fn another_organisation_id_is_resolved_through_the_directory() {
        let mut directory = MockOrganizationDirectory::new();
        directory
            .expect_resolve()
            .withf(|id| id == "org_9ybsU1dN2dKfDkBi")
            .returning(|_| Ok(OrgId::from_uuid(Uuid::from_u128(9))));
        let principal = use_case(verifier(Some("org_9ybsU1dN2dKfDkBi"), &[]), directory, false)
            .execute("t")
            .await
            .unwrap();
        assert_eq!(principal.org_id(), OrgId::from_uuid(Uuid::from_u128(9)));
    }

    #[tokio::test]
    async fn no_blank_or_absurd_organisation_is_no_organization() {
        for org in [None, Some(""), Some("  "), Some("bad\nid")] {
            let mut directory = MockOrganizationDirectory::new();
            directory.expect_resolve().never();
            let result = use_case(verifier(org, &[]), directory, false).execute("t").await;
            assert!(matches!(result, Err(AuthError::NoOrganization)), "{org:?}");
        }
        let long = "o".repeat(256);
        let result = use_case(verifier(Some(&long), &[]), MockOrganizationDirectory::new(), false)
            .execute("t")
            .await;
        assert!(matches!(result, Err(AuthError::NoOrganization)));
    }

    #[tokio::test]
    async fn a_directory_outage_is_unavailability_not_a_bad_token() {
        let mut directory = MockOrganizationDirectory::new();
        directory
            .expect_resolve()
            .returning(|_| Err(RepositoryError::Unavailable(anyhow::anyhow!("down"))));
        let result = use_case(verifier(Some("org_x"), &[]), directory, false)
            .execute("t")
            .await;
        assert!(matches!(result, Err(AuthError::Unavailable(_))));
    }

    #[tokio::test]
    async fn permissions_limit_the_principal_only_when_enforced() {
        let org = Some("3c90c3cc-0d44-4b50-8888-8dd25736052a");
        let open = use_case(verifier(org, &[]), MockOrganizationDirectory::new(), false)
            .execute("t")
            .await
            .unwrap();
        assert!(open.authorize(Permission::Write).is_ok());

        let reader = use_case(
            verifier(org, &["read:api_keys"]),
            MockOrganizationDirectory::new(),
            true,
        )
        .execute("t")
        .await
        .unwrap();
        assert!(reader.authorize(Permission::Read).is_ok());
        let denied = reader.authorize(Permission::Write).unwrap_err();
        assert_eq!(denied.to_string(), "the token lacks the permission write:api_keys");
    }
}

use std::sync::Arc;

use keymint_application::{
    Analytics, ApiKeys, Authenticate, ReportLeaks, ReportSignatures, StorageHealth, VerifyApiKey, Webhooks,
};
use keymint_domain::Environment;

use crate::HttpMetrics;

/// What the handlers need: the use cases, the token verifier and a few settings.
#[derive(Clone)]
pub struct AppState {
    /// Every key operation.
    pub api_keys: ApiKeys,
    /// Turns bearer tokens into principals.
    pub authenticate: Authenticate,
    /// Verifies presented API keys.
    pub verify: VerifyApiKey,
    /// Reads verification counts.
    pub analytics: Analytics,
    /// Every webhook operation.
    pub webhooks: Webhooks,
    /// Acts on reports of leaked keys.
    pub leaks: ReportLeaks,
    /// Checks the signatures of GitHub's secret-scanning alerts.
    pub report_signatures: Arc<dyn ReportSignatures>,
    /// Answers readiness probes.
    pub storage: Arc<dyn StorageHealth>,
    /// The environment of keys created without one.
    pub default_environment: Environment,
    /// Request and verification counts.
    pub metrics: HttpMetrics,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("default_environment", &self.default_environment)
            .finish_non_exhaustive()
    }
}

//! Which lookup digests are worth a storage read.

use keymint_domain::KeyDigest;

/// Remembers which lookup digests stored keys have (keys brought in from other
/// systems), so that a presented key in no format Keymint issues is answered
/// without a storage read when no stored key can have its digest: a storm of
/// typos or of other services' keys costs a digest and a set lookup each.
///
/// Implementations MAY answer `true` for a digest no key has (that costs one
/// read) and MUST NOT answer `false` for a digest a key has had since
/// [`DigestFilter::add`] was called for it in this process; for keys stored by
/// other processes they MAY lag by a bounded, documented time.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait DigestFilter: Send + Sync {
    /// Whether a stored key may have lookup digest `digest`.
    fn may_hold(&self, digest: &KeyDigest) -> bool;
    /// Records a lookup digest this process just stored.
    fn add(&self, digest: &KeyDigest);
}

/// No filter: every digest is worth a read.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDigestFilter;

impl DigestFilter for NoDigestFilter {
    fn may_hold(&self, _: &KeyDigest) -> bool {
        true
    }

    fn add(&self, _: &KeyDigest) {}
}

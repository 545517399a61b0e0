//! Prometheus metrics of the adapters, read from their own counters at scrape
//! time: the hot paths pay a relaxed atomic add, never a metrics lock.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::sql::{Database, ListenerStats};
use keymint_application::{DeliveryStats, VerifyStats};

use crate::{
    CoalescingUsageTracker, HashingLoad, LookupDigestFilter, MeterStats, ShardedVerificationCache, WindowFailureLimiter,
};

/// The adapters whose state is exported; any may be absent (no database in
/// memory mode, no listener on SQLite).
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The verification cache.
    pub cache: Option<Arc<ShardedVerificationCache>>,
    /// The argon2 threads.
    pub hashing: Option<Arc<HashingLoad>>,
    /// The failure budgets.
    pub budgets: Option<Arc<WindowFailureLimiter>>,
    /// The `last_used_at` writer.
    pub usage: Option<Arc<CoalescingUsageTracker>>,
    /// The connection pools.
    pub database: Option<Database>,
    /// The cross-process change listener.
    pub listener: Option<Arc<ListenerStats>>,
    /// The settlement of rate limits and credits.
    pub meter: Option<Arc<MeterStats>>,
    /// The webhook dispatcher.
    pub webhooks: Option<Arc<DeliveryStats>>,
    /// Verification beyond the cache: hash checks, rehashes, digest reads.
    pub verify: Option<Arc<VerifyStats>>,
    /// The lookup digest filter.
    pub digests: Option<Arc<LookupDigestFilter>>,
}

/// Registers the adapters' metrics in `registry` (which names them; Keymint's
/// own registry prefixes them with `keymint_`).
pub fn register(registry: &mut Registry, observed: Observed) {
    if let Some(hashing) = &observed.hashing {
        registry.register_with_unit(
            "hashing_queue_wait",
            "Time argon2 jobs waited for a hashing thread",
            Unit::Seconds,
            hashing.waits().clone(),
        );
    }
    if let Some(writes) = observed.usage.as_ref().and_then(|usage| usage.analytics_writes()) {
        registry.register_with_unit(
            "analytics_write",
            "Time each flush with counts to write took to write them, failed writes included",
            Unit::Seconds,
            writes.clone(),
        );
    }
    if let Some(listener) = &observed.listener {
        registry.register_with_unit(
            "key_change_notification_lag",
            "Time from a key change in another process to its notification here (includes clock skew)",
            Unit::Seconds,
            listener.lag().clone(),
        );
    }
    registry.register_collector(Box::new(observed));
}

/// Registers the process's own metrics (resident memory, open files), under
/// the names Prometheus's client libraries share. Linux only: elsewhere they
/// are absent.
pub fn register_process(registry: &mut Registry) {
    registry.register_collector(Box::new(ProcessCollector));
}

/// One sample: a value under a label set (empty for none).
type Sample<'a, V> = (&'a [(&'a str, &'a str)], V);

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, samples: &[Sample<'_, u64>]) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for &(labels, value) in samples {
        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: &[Sample<'_, i64>],
) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for &(labels, value) in samples {
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn signed(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl Collector for Observed {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let e = &mut encoder;
        if let Some(cache) = &self.cache {
            let stats = cache.stats();
            counter(
                e,
                "verification_cache_hits",
                "Verifications answered from the cache",
                &[(&[], stats.hits)],
            )?;
            counter(
                e,
                "verification_cache_misses",
                "Verifications the cache could not answer",
                &[(&[], stats.misses)],
            )?;
            counter(
                e,
                "verification_cache_evictions",
                "Cached verifications dropped, by reason",
                &[
                    (&[("reason", "expired")], stats.expired),
                    (&[("reason", "capacity")], stats.crowded_out),
                    (&[("reason", "key_changed")], stats.invalidated),
                ],
            )?;
            gauge(
                e,
                "verification_cache_entries",
                "Verifications cached now",
                None,
                &[(&[], signed(stats.entries))],
            )?;
            gauge(
                e,
                "verification_cache_capacity",
                "The most verifications cached",
                None,
                &[(&[], signed(stats.capacity))],
            )?;
        }
        if let Some(verify) = &self.verify {
            let (sha256, argon2) = verify.hash_checks();
            counter(
                e,
                "key_hash_checks",
                "Presented keys compared with a stored hash, by the stored hash's algorithm",
                &[
                    (&[("algorithm", "sha256")], sha256),
                    (&[("algorithm", "argon2id")], argon2),
                ],
            )?;
            counter(
                e,
                "key_rehashes",
                "Stored hashes replaced by the current form after their key verified, by outcome",
                &[
                    (&[("outcome", "ok")], verify.rehashed()),
                    (&[("outcome", "error")], verify.rehash_failures()),
                ],
            )?;
            counter(
                e,
                "verification_cache_refreshes",
                "Cached verifications read again in the background late in their TTL, by outcome",
                &verify
                    .refreshes()
                    .map(|(outcome, n)| ([("outcome", outcome)], n))
                    .iter()
                    .map(|(labels, n)| (&labels[..], *n))
                    .collect::<Vec<_>>(),
            )?;
            counter(
                e,
                "key_digest_lookups",
                "Presented keys looked up by digest, by whether storage was read",
                &[
                    (&[("result", "read")], verify.digest_reads()),
                    (&[("result", "filtered")], verify.digest_filtered()),
                ],
            )?;
        }
        if let Some(digests) = &self.digests {
            gauge(
                e,
                "lookup_digests",
                "Lookup digests in this process's filter (keys brought in from other systems); -1 before its first load",
                None,
                &[(&[], digests.digests().map_or(-1, signed))],
            )?;
            counter(
                e,
                "lookup_digest_reloads",
                "Times the lookup digest filter reloaded after an import anywhere",
                &[(&[], digests.reloads())],
            )?;
        }
        if let Some(hashing) = &self.hashing {
            gauge(
                e,
                "hashing_permits",
                "argon2 threads (hashes that can run at once)",
                None,
                &[(&[], signed(hashing.threads()))],
            )?;
            gauge(
                e,
                "hashing_permits_in_use",
                "argon2 threads hashing now",
                None,
                &[(&[], signed(hashing.running()))],
            )?;
            gauge(
                e,
                "hashing_queued",
                "argon2 jobs waiting for a thread",
                None,
                &[(&[], signed(hashing.queued()))],
            )?;
        }
        if let Some(budgets) = &self.budgets {
            let stats = budgets.stats();
            counter(
                e,
                "failure_budget_refusals",
                "Verifications refused without hashing because a failure budget was spent, by budget",
                &[
                    (&[("budget", "client")], stats.refused_by_client),
                    (&[("budget", "client_key")], stats.refused_by_key),
                ],
            )?;
            gauge(
                e,
                "failure_budget_windows",
                "Clients and (client, key) pairs with a live failure window",
                None,
                &[(&[], signed(stats.tracked))],
            )?;
        }
        if let Some(usage) = &self.usage {
            let stats = usage.stats();
            counter(
                e,
                "usage_flushes",
                "Batched last_used_at writes, by outcome",
                &[
                    (&[("outcome", "ok")], stats.flushes),
                    (&[("outcome", "error")], stats.failed_flushes),
                ],
            )?;
            counter(
                e,
                "usage_keys_written",
                "last_used_at values written",
                &[(&[], stats.keys_written)],
            )?;
            gauge(
                e,
                "usage_pending_keys",
                "Keys with a use not yet written",
                None,
                &[(&[], signed(stats.pending))],
            )?;
            gauge(
                e,
                "analytics_pending_buckets",
                "Verification count buckets not yet written",
                None,
                &[(&[], signed(stats.pending_buckets))],
            )?;
            counter(
                e,
                "analytics_dropped_verifications",
                "Verifications not counted in analytics because the buffer was full",
                &[(&[], stats.dropped_verifications)],
            )?;
            counter(
                e,
                "analytics_buckets_written",
                "Verification count buckets written to storage",
                &[(&[], stats.buckets_written)],
            )?;
        }
        if let Some(meter) = &self.meter {
            counter(
                e,
                "usage_settlements",
                "Transactions settling metered verifications (rate limits, credits), by outcome",
                &[
                    (
                        &[("outcome", "ok")],
                        meter.batches().saturating_sub(meter.failed_batches()),
                    ),
                    (&[("outcome", "error")], meter.failed_batches()),
                ],
            )?;
            counter(
                e,
                "usage_settled_verifications",
                "Metered verifications settled (divided by settlements: the mean batch)",
                &[(&[], meter.settled())],
            )?;
        }
        if let Some(webhooks) = &self.webhooks {
            counter(
                e,
                "webhook_attempts",
                "Webhook delivery attempts by this process, by outcome (retry: failed, tried again later; failed: the last try)",
                &[
                    (&[("outcome", "delivered")], webhooks.delivered()),
                    (&[("outcome", "retry")], webhooks.retried()),
                    (&[("outcome", "failed")], webhooks.failed()),
                ],
            )?;
            counter(
                e,
                "webhook_breaker_transitions",
                "Webhook endpoints' circuit breakers moved by this process's attempts \
                 (paused: failures in a row paused it; resumed: a success ended a pause)",
                &[
                    (&[("to", "paused")], webhooks.breakers_opened()),
                    (&[("to", "resumed")], webhooks.breakers_closed()),
                ],
            )?;
            gauge(
                e,
                "webhook_endpoints_paused",
                "Webhook endpoints paused by their circuit breaker, deployment-wide, as of the last sweep",
                None,
                &[(&[], signed(webhooks.paused_endpoints()))],
            )?;
        }
        if let Some(database) = &self.database {
            let pools = database.pools();
            let (mut open, mut idle, mut max) = (Vec::new(), Vec::new(), Vec::new());
            let labels: Vec<[(&str, &str); 1]> = pools.iter().map(|p| [("pool", p.pool)]).collect();
            for (stats, labels) in pools.iter().zip(&labels) {
                let in_use = stats.open.saturating_sub(stats.idle);
                open.push((&labels[..], signed(in_use)));
                idle.push((&labels[..], signed(stats.idle)));
                max.push((&labels[..], signed(stats.max)));
            }
            gauge(
                e,
                "db_pool_connections_in_use",
                "Pooled connections lent out now",
                None,
                &open,
            )?;
            gauge(
                e,
                "db_pool_connections_idle",
                "Pooled connections open and idle",
                None,
                &idle,
            )?;
            gauge(
                e,
                "db_pool_connections_max",
                "The most connections a pool opens",
                None,
                &max,
            )?;
            counter(
                e,
                "db_errors",
                "Failed database statements, by kind (unavailable: unreachable, busy or timed out)",
                &[
                    (&[("kind", "unavailable")], database.errors.unavailable()),
                    (&[("kind", "unexpected")], database.errors.unexpected()),
                ],
            )?;
        }
        if let Some(listener) = &self.listener {
            counter(
                e,
                "key_change_notifications",
                "Key changes announced by other processes",
                &[(&[], listener.received())],
            )?;
            counter(
                e,
                "key_change_listener_connections",
                "Times the change listener (re)connected",
                &[(&[], listener.connections())],
            )?;
            gauge(
                e,
                "key_change_listener_up",
                "1 while listening for other processes' key changes",
                None,
                &[(&[], i64::from(listener.connected()))],
            )?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct ProcessCollector;

/// Resident memory in bytes, from `/proc/self/status`.
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: i64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

fn open_fds() -> Option<i64> {
    Some(signed(std::fs::read_dir("/proc/self/fd").ok()?.count()))
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        if let Some(rss) = resident_bytes() {
            gauge(
                &mut encoder,
                "process_resident_memory",
                "Resident memory size",
                Some(&Unit::Bytes),
                &[(&[], rss)],
            )?;
        }
        if let Some(fds) = open_fds() {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Open file descriptors",
                None,
                &[(&[], fds)],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keymint_application::{FailureLimiter, VerificationCache};
    use keymint_domain::{Environment, KeyMaterial};
    use rand_core::OsRng;

    use super::*;

    fn exposition(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    #[test]
    fn the_cache_and_the_budgets_are_exported_as_they_count() {
        let cache = Arc::new(ShardedVerificationCache::new(10, Duration::from_secs(60)));
        let budgets = Arc::new(WindowFailureLimiter::new(1, 100, Duration::from_secs(60)));
        let mut registry = Registry::with_prefix("keymint");
        register(
            &mut registry,
            Observed {
                cache: Some(cache.clone()),
                budgets: Some(budgets.clone()),
                ..Observed::default()
            },
        );
        let key = KeyMaterial::generate(Environment::Live, &mut OsRng);
        let lookup_id = key.lookup_id();
        let (_, private_key) = key.into_parts();
        assert!(cache.get(&keymint_domain::PresentedKey::Issued(private_key)).is_none());
        let client = Some("192.0.2.1".parse().unwrap());
        let now = chrono::Utc::now();
        assert!(budgets.try_reserve(&lookup_id, client, now));
        assert!(!budgets.try_reserve(&lookup_id, client, now));

        let text = exposition(&registry);
        for line in [
            "keymint_verification_cache_misses_total 1",
            "keymint_verification_cache_hits_total 0",
            "keymint_verification_cache_capacity 10",
            "keymint_verification_cache_evictions_total{reason=\"key_changed\"} 0",
            "keymint_failure_budget_refusals_total{budget=\"client_key\"} 1",
            "keymint_failure_budget_refusals_total{budget=\"client\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(
            !text.contains("keymint_hashing") && !text.contains("keymint_db_"),
            "absent adapters export nothing:\n{text}"
        );
    }

    #[test]
    fn the_process_reports_its_resident_memory() {
        let mut registry = Registry::default();
        register_process(&mut registry);
        let text = exposition(&registry);
        let rss: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .unwrap_or_else(|| panic!("no RSS in\n{text}"))
            .parse()
            .unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
    }
}

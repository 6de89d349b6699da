//! What the server counts about itself, and the Prometheus endpoint that
//! shows it (`[metrics] address`, off by default). Counters are process
//! wide (one server per process): any module records with `counter(..)` /
//! `observe_flush(..)` without being handed a registry. The text exposition
//! format (version 0.0.4) is written by hand: counters with labels, a few
//! gauges computed at scrape time (sessions, queue size and age), and one
//! histogram (store flush latency).

use crate::store::Store;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// Every counter: name and help text. `counter` refuses other names.
const COUNTERS: &[(&str, &str)] = &[
    (
        "tern_connections_total",
        "Connections accepted, by listener protocol.",
    ),
    (
        "tern_connections_refused_total",
        "Connections refused at accept, by reason (max_connections, per_client, proxy_protocol).",
    ),
    (
        "tern_messages_accepted_total",
        "Messages accepted (250 after data), by listener protocol.",
    ),
    (
        "tern_messages_refused_total",
        "Messages and recipients refused, by reason.",
    ),
    (
        "tern_deliveries_total",
        "Delivery attempts per recipient, by status (delivered, deferred, failed).",
    ),
    ("tern_plugin_calls_total", "Plugin hook calls, by plugin."),
    (
        "tern_plugin_remembered_total",
        "Policy hook verdicts given from what a plugin said holds for the client, without calling it, by plugin.",
    ),
    (
        "tern_plugin_timeouts_total",
        "Plugin hook calls that ran out of time, by plugin.",
    ),
    (
        "tern_plugin_traps_total",
        "Plugin hook calls that trapped or failed otherwise, by plugin.",
    ),
    ("tern_auth_failures_total", "Failed logins, every protocol."),
    (
        "tern_limits_hit_total",
        "Sessions or logins stopped by an abuse limit, by limit.",
    ),
];

/// Upper bounds (seconds) of the flush latency histogram's buckets.
const FLUSH_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

type Labels = Vec<(&'static str, String)>;

struct Registry {
    /// Each counter's value is shared with the `Counter` handles given out
    /// for it, which count without taking this lock.
    counters: Mutex<BTreeMap<(&'static str, Labels), Arc<AtomicU64>>>,
    sessions: AtomicI64,
    flush_buckets: [AtomicU64; FLUSH_BUCKETS.len()],
    flush_count: AtomicU64,
    flush_sum_micros: AtomicU64,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    counters: Mutex::new(BTreeMap::new()),
    sessions: AtomicI64::new(0),
    flush_buckets: Default::default(),
    flush_count: AtomicU64::new(0),
    flush_sum_micros: AtomicU64::new(0),
});

/// Adds one to counter `name` with `labels`.
pub fn counter(name: &'static str, labels: &[(&'static str, &str)]) {
    value(name, labels).fetch_add(1, Ordering::Relaxed);
}

/// Counter `name` with `labels`, for a path that counts often (a plugin's
/// calls): adding to it takes no lock and allocates nothing.
#[derive(Debug, Clone)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn new(name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        Counter(value(name, labels))
    }

    pub fn add_one(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The value of counter `name` with `labels`, made (at 0) on first use.
fn value(name: &'static str, labels: &[(&'static str, &str)]) -> Arc<AtomicU64> {
    debug_assert!(COUNTERS.iter().any(|(n, _)| *n == name), "unknown {name}");
    let mut counters = REGISTRY.counters.lock().unwrap_or_else(|p| p.into_inner());
    // Found without building a key: no allocation once the counter exists.
    // `(name, [])` is the first key of that name.
    let same = |kept: &Labels| {
        kept.len() == labels.len()
            && kept
                .iter()
                .zip(labels)
                .all(|((k, v), (k2, v2))| k == k2 && v == v2)
    };
    let found = counters
        .range((name, Vec::new())..)
        .take_while(|((n, _), _)| *n == name)
        .find(|((_, kept), _)| same(kept));
    if let Some((_, v)) = found {
        return v.clone();
    }
    let key = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
    counters.entry((name, key)).or_default().clone()
}

/// The sum of counter `name` over all its labels (`tern plugin test`
/// counts a plugin's failures with it).
pub fn counter_total(name: &'static str) -> u64 {
    let counters = REGISTRY.counters.lock().unwrap_or_else(|p| p.into_inner());
    counters
        .iter()
        .filter(|((n, _), _)| *n == name)
        .map(|(_, v)| v.load(Ordering::Relaxed))
        .sum()
}

/// A refused message or recipient, by reason.
pub fn refused(reason: &str) {
    counter("tern_messages_refused_total", &[("reason", reason)]);
}

/// Records one store flush (group commit) and how long it took.
pub fn observe_flush(took: Duration) {
    let secs = took.as_secs_f64();
    for (bound, bucket) in FLUSH_BUCKETS.iter().zip(&REGISTRY.flush_buckets) {
        if secs <= *bound {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
    }
    REGISTRY.flush_count.fetch_add(1, Ordering::Relaxed);
    REGISTRY
        .flush_sum_micros
        .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
}

/// A session open (any protocol) while this lives.
pub struct SessionGauge(());

impl SessionGauge {
    pub fn open() -> SessionGauge {
        REGISTRY.sessions.fetch_add(1, Ordering::Relaxed);
        SessionGauge(())
    }
}

impl Drop for SessionGauge {
    fn drop(&mut self) {
        REGISTRY.sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_labels(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Queue figures for the gauges: entries, pending recipients, oldest age.
async fn queue_figures(store: &Store) -> (usize, usize, i64) {
    let entries = store.queue_entries().await.unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    let pending = entries.iter().map(|e| e.pending().count()).sum();
    let oldest = entries
        .iter()
        .map(|e| now - e.arrived)
        .max()
        .unwrap_or(0)
        .max(0);
    (entries.len(), pending, oldest)
}

/// The exposition text.
pub async fn render(store: &Store, node: &str) -> String {
    let mut out = String::with_capacity(4096);
    let name = "tern_node_info";
    let _ = writeln!(
        out,
        "# HELP {name} This node's name (node_id); queue figures are the whole store's.\n# TYPE {name} gauge\n{name}{} 1",
        render_labels(&[("node", node.to_string())])
    );
    let counters = REGISTRY
        .counters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for (name, help) in COUNTERS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for ((n, labels), value) in counters.iter().filter(|((n, _), _)| n == name) {
            let value = value.load(Ordering::Relaxed);
            let _ = writeln!(out, "{n}{} {value}", render_labels(labels));
        }
    }
    let (messages, recipients, oldest) = queue_figures(store).await;
    let gauges = [
        (
            "tern_sessions_active",
            "Sessions open now, every protocol.",
            REGISTRY.sessions.load(Ordering::Relaxed),
        ),
        (
            "tern_queue_messages",
            "Messages in the queue.",
            messages as i64,
        ),
        (
            "tern_queue_recipients_pending",
            "Recipients waiting for delivery.",
            recipients as i64,
        ),
        (
            "tern_queue_oldest_age_seconds",
            "Age of the oldest message in the queue.",
            oldest,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    let name = "tern_store_flush_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time to make writes durable (sled: group commits; PostgreSQL: commits).\n# TYPE {name} histogram"
    );
    for (bound, bucket) in FLUSH_BUCKETS.iter().zip(&REGISTRY.flush_buckets) {
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{bound}\"}} {}",
            bucket.load(Ordering::Relaxed)
        );
    }
    let count = REGISTRY.flush_count.load(Ordering::Relaxed);
    let sum = REGISTRY.flush_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    out
}

/// Serves `GET /metrics` on `listener` until shutdown.
pub async fn serve(
    store: Store,
    node: String,
    listener: tokio::net::TcpListener,
    mut shutdown: crate::shutdown::Shutdown,
) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(
                |axum::extract::State((store, node)): axum::extract::State<(Store, String)>| async move {
                    let text = render(&store, &node).await;
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        text,
                    )
                },
            ),
        )
        .with_state((store, node));
    let stop = async move {
        shutdown.recv().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::warn!("metrics endpoint stopped: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(
            render_labels(&[("plugin", "a\"b\\c\nd".into())]),
            "{plugin=\"a\\\"b\\\\c\\nd\"}"
        );
        assert_eq!(render_labels(&[]), "");
    }

    fn count_of(name: &'static str, labels: &[(&'static str, &str)]) -> Option<u64> {
        let key = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let counters = REGISTRY.counters.lock().unwrap();
        counters
            .get(&(name, key))
            .map(|v| v.load(Ordering::Relaxed))
    }

    #[test]
    fn each_label_set_counts_on_its_own() {
        // Label values no other test uses: the registry is process wide.
        let name = "tern_limits_hit_total";
        let (a, b) = ([("limit", "metrics-test-a")], [("limit", "metrics-test-b")]);
        let two = [("limit", "metrics-test-a"), ("plugin", "x")];
        counter(name, &a);
        counter(name, &b);
        counter(name, &a);
        counter(name, &two);
        let handle = Counter::new(name, &b);
        handle.add_one();
        assert_eq!(count_of(name, &a), Some(2));
        assert_eq!(
            count_of(name, &b),
            Some(2),
            "counted through its handle too"
        );
        assert_eq!(count_of(name, &two), Some(1));
        assert_eq!(count_of(name, &[("limit", "metrics-test-c")]), None);
    }
}

//! Unit tests of `store/trace.rs` and `store/trace_clients.rs`: a
//! message's trace lives with it, refused attempts are found by client,
//! bounded and forgotten, and a message stores its first and newest
//! attempts only.

use super::*;
use crate::trace::{Recorder, Stage};

fn attempt(client: &str, at: i64) -> Trace {
    let r = Recorder::new(client.parse().unwrap());
    r.begin("a@b.test");
    let mut e = Event::new(Stage::Rcpt, "recipient check", "reject");
    e.at = at;
    r.record(e);
    let mut t = r.refused().unwrap();
    t.started = at;
    t
}

#[tokio::test]
async fn a_message_trace_lives_with_the_message_then_keep_longer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    store.add_user("bob@example.test", "pw").await.unwrap();
    let id = store.next_id().await.unwrap();
    let mut w = store.blob_writer(id);
    w.write(b"Message-ID: <m@x>\r\n\r\nhi\r\n").await.unwrap();
    let r = Recorder::new("192.0.2.1".parse().unwrap());
    r.begin("a@x");
    r.record(Event::new(Stage::Store, "folder", "inbox").users(vec!["bob@example.test".into()]));
    let trace = r.message(id, Some("m@x".into()));
    let bob = vec!["bob@example.test".to_string()];
    let uids = store
        .accept_message_into(w, Vec::new(), &bob, "INBOX", None, Some(&trace))
        .await
        .unwrap();
    store
        .append_trace(id, 0, &[Event::new(Stage::Delivery, "queue", "sent")])
        .await
        .unwrap();
    let found = store.traces_by_message_id("<M@x>").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].events.len(), 2);
    // Stored: never forgotten, however old.
    let far = chrono::Utc::now().timestamp_millis() + 1_000_000;
    assert_eq!(store.expire_traces(far).await.unwrap(), 0);
    store
        .expunge("bob@example.test", "INBOX", &uids)
        .await
        .unwrap();
    assert!(
        store.trace(id).await.unwrap().is_some(),
        "kept after the message went"
    );
    let by_client = store.traces_of_client("192.0.2.1", 0, far).await.unwrap();
    assert_eq!(by_client.len(), 1);
    assert_eq!(by_client[0].id, Some(id));
    assert_eq!(store.expire_traces(far).await.unwrap(), 1);
    assert!(store.trace(id).await.unwrap().is_none());
    assert!(
        index_keys(&store).await.is_empty(),
        "its index key went too"
    );
    assert!(store.traces_by_message_id("m@x").await.unwrap().is_empty());
}

#[tokio::test]
async fn attempts_are_found_by_client_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    assert!(
        store
            .record_attempt(&attempt("192.0.2.1", 1_000))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_attempt(&attempt("192.0.2.1", 5_000))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_attempt(&attempt("192.0.2.9", 5_000))
            .await
            .unwrap()
    );
    let found = store
        .traces_of_client("192.0.2.1", 0, 10_000)
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    let later = store
        .traces_of_client("192.0.2.1", 2_000, 10_000)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(store.expire_traces(3_000).await.unwrap(), 1);
    assert_eq!(
        store
            .traces_of_client("192.0.2.1", 0, 10_000)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(counted(&store).await, 2);
}

/// The keys of the client index.
async fn index_keys(store: &Store) -> Vec<Vec<u8>> {
    let all = KeyRange::prefix(b"C/");
    let found = store.inner.backend.scan(Space::Meta, &all, ScanOrder::ALL);
    found.await.unwrap().into_iter().map(|(k, _)| k).collect()
}

#[tokio::test]
async fn traces_stored_before_the_client_index_are_indexed_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    // As an earlier release wrote them: no index keys, no marker.
    let refused = attempt("192.0.2.1", 2_000);
    let mut kept = attempt("192.0.2.1", 3_000);
    kept.id = Some(9);
    let mut batch = Batch::new();
    batch.put(
        Space::Meta,
        timed_key(b"R/", 2_000, 5),
        encode_trace(&refused),
    );
    batch.put(Space::Meta, trace_key(9), encode_trace(&kept));
    batch.put(
        Space::Meta,
        timed_key(b"R/", 2_500, 6),
        encode_trace(&attempt("192.0.2.9", 2_500)),
    );
    store.inner.backend.commit(batch).await.unwrap();
    let found = store
        .traces_of_client("192.0.2.1", 0, 10_000)
        .await
        .unwrap();
    assert_eq!(found, vec![refused, kept]);
    assert_eq!(index_keys(&store).await.len(), 3);
    // The window is the sessions' start.
    let later = store
        .traces_of_client("192.0.2.1", 2_001, 10_000)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert!(
        store
            .traces_of_client("192.0.2.1", 0, 1_999)
            .await
            .unwrap()
            .is_empty()
    );
    // Forgetting the refused attempts drops their index keys.
    assert_eq!(store.expire_traces(2_600).await.unwrap(), 2);
    assert_eq!(index_keys(&store).await.len(), 1);
}

/// The refused attempts the shard counters count, in all.
async fn counted(store: &Store) -> u64 {
    let mut all = 0;
    for shard in 0..SHARDS {
        let key = count_key(shard);
        let raw = store.inner.backend.get(Space::Meta, &key).await.unwrap();
        all += count(raw.as_deref());
    }
    all
}

/// The refused attempts stored (`R/` keys).
async fn stored(store: &Store) -> usize {
    let all = KeyRange::prefix(b"R/");
    let found = store.inner.backend.scan(Space::Meta, &all, ScanOrder::ALL);
    found.await.unwrap().len()
}

#[tokio::test]
async fn refused_attempts_stop_being_kept_at_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    // 32 at most: two per shard. Attempts take the shards in turn, so
    // 100 fill every shard (4 or more each), whatever came before.
    let most = 2 * u64::from(SHARDS);
    let mut kept = 0;
    for i in 0..100 {
        let t = attempt("192.0.2.1", 1_000 + i);
        kept += u64::from(store.record_attempt_within(&t, most).await.unwrap());
    }
    assert_eq!(kept, most);
    assert_eq!(stored(&store).await as u64, most);
    assert_eq!(counted(&store).await, most);
    // Forgotten ones make room again.
    assert_eq!(store.expire_traces(i64::MAX).await.unwrap() as u64, most);
    assert_eq!(counted(&store).await, 0);
    let t = attempt("192.0.2.1", 5_000);
    assert!(store.record_attempt_within(&t, most).await.unwrap());
    assert_eq!(stored(&store).await, 1);
}

/// `n` delivery attempts, numbered from `from`.
fn pass(from: u32, n: u32) -> Vec<Event> {
    (from..from + n)
        .map(|i| Event::new(Stage::Delivery, "queue", "deferred").detail(format!("attempt {i}")))
        .collect()
}

/// The attempt numbers a trace shows.
fn shown(t: &Trace) -> Vec<u32> {
    t.events
        .iter()
        .filter_map(|e| e.detail.as_deref()?.strip_prefix("attempt ")?.parse().ok())
        .collect()
}

#[tokio::test]
async fn a_message_stores_its_first_and_newest_attempts_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let id = 7;
    // One pass of 10, one of 1000 (a message to many recipients),
    // then 40 passes of one.
    store.append_trace(id, 0, &pass(0, 10)).await.unwrap();
    store.append_trace(id, 10, &pass(10, 1000)).await.unwrap();
    for n in 1010..1050 {
        store.append_trace(id, n, &pass(n, 1)).await.unwrap();
    }
    let parts = store
        .inner
        .backend
        .scan(
            Space::Meta,
            &KeyRange::prefix(&trace_key(id)),
            ScanOrder::ALL,
        )
        .await
        .unwrap();
    let events: usize = parts
        .iter()
        .map(|(_, v)| decode_events(v).unwrap().len())
        .sum();
    assert_eq!(events, MAX_EVENTS, "what is stored is what a trace shows");
    let t = store.trace(id).await.unwrap().unwrap();
    let want: Vec<u32> = (0..HEAD).chain(1050 - TAIL..1050).collect();
    assert_eq!(shown(&t), want);
    assert_eq!(t.omitted, 1050 - HEAD - TAIL);
    // A short story is kept whole.
    store.append_trace(8, 0, &pass(0, 3)).await.unwrap();
    store.append_trace(8, 3, &pass(3, 2)).await.unwrap();
    let t = store.trace(8).await.unwrap().unwrap();
    assert_eq!((shown(&t), t.omitted), ((0..5).collect(), 0));
}

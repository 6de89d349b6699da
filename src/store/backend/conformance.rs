//! The conformance suite of the storage seam: what every engine must do,
//! written once and run on each (sled in a temporary folder, PostgreSQL in
//! a private server started by the test). A new engine passes all of it
//! before anything above the seam may run on it.

use super::*;
use std::sync::Arc;

/// Every case, in order, on one engine; a failure names its case.
pub(super) async fn run_all(engine: &Backend) {
    reads_what_was_written(engine).await;
    scans_in_bytewise_order(engine).await;
    a_failed_condition_writes_nothing(engine).await;
    conditions_on_absent_and_present_keys(engine).await;
    racing_counters_lose_no_update(engine).await;
    racing_writers_never_share_a_uid(engine).await;
    concurrent_sets_stand_or_fall_alone(engine).await;
    concurrent_claims_of_one_key_commit_once(engine).await;
    ids_are_unique_and_increasing(engine).await;
    changes_follow_commits_only(engine).await;
    large_values_and_binary_keys(engine).await;
    engine.sync().await.expect("sync");
}

async fn reads_what_was_written(b: &Backend) {
    assert_eq!(
        b.get(Space::Meta, b"t1/missing").await.unwrap(),
        None,
        "missing key"
    );
    let mut batch = Batch::new();
    batch.put(Space::Meta, b"t1/a".to_vec(), b"one".to_vec());
    batch.put(Space::Blobs, b"t1/a".to_vec(), b"other space".to_vec());
    b.commit(batch).await.unwrap();
    assert_eq!(
        b.get(Space::Meta, b"t1/a").await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    assert_eq!(
        b.get(Space::Blobs, b"t1/a").await.unwrap().as_deref(),
        Some(&b"other space"[..]),
        "spaces are separate"
    );
    let mut batch = Batch::new();
    batch.put(Space::Meta, b"t1/a".to_vec(), b"two".to_vec());
    b.commit(batch).await.unwrap();
    assert_eq!(
        b.get(Space::Meta, b"t1/a").await.unwrap().as_deref(),
        Some(&b"two"[..])
    );
    let mut batch = Batch::new();
    batch.delete(Space::Meta, b"t1/a".to_vec());
    b.commit(batch).await.unwrap();
    assert_eq!(b.get(Space::Meta, b"t1/a").await.unwrap(), None, "deleted");
    assert!(
        b.get(Space::Blobs, b"t1/a").await.unwrap().is_some(),
        "delete is per space"
    );
}

async fn scans_in_bytewise_order(b: &Backend) {
    let keys: [&[u8]; 6] = [
        b"t2/b",
        b"t2/a\xff",
        b"t2/a",
        b"t2/\x00",
        b"t2/a\x00z",
        b"t3/x",
    ];
    let mut batch = Batch::new();
    for (i, k) in keys.iter().enumerate() {
        batch.put(Space::Meta, k.to_vec(), vec![i as u8]);
    }
    b.commit(batch).await.unwrap();
    let all = b
        .scan(Space::Meta, &KeyRange::prefix(b"t2/"), ScanOrder::ALL)
        .await
        .unwrap();
    let got: Vec<&[u8]> = all.iter().map(|(k, _)| k.as_slice()).collect();
    let want: Vec<&[u8]> = vec![b"t2/\x00", b"t2/a", b"t2/a\x00z", b"t2/a\xff", b"t2/b"];
    assert_eq!(got, want, "prefix scan in bytewise order");
    assert_eq!(all[1].1, vec![2u8], "values come with their keys");
    let last = b
        .scan(Space::Meta, &KeyRange::prefix(b"t2/"), ScanOrder::LAST)
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(
        last[0].0,
        b"t2/b".to_vec(),
        "reverse scan starts at the highest key"
    );
    let window = b
        .scan(
            Space::Meta,
            &KeyRange::between(b"t2/a", b"t2/b"),
            ScanOrder {
                reverse: false,
                limit: Some(2),
            },
        )
        .await
        .unwrap();
    let got: Vec<&[u8]> = window.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(
        got,
        vec![&b"t2/a"[..], b"t2/a\x00z"],
        "start inclusive, limit"
    );
    let none = b
        .scan(
            Space::Meta,
            &KeyRange::between(b"t2/b", b"t2/b"),
            ScanOrder::ALL,
        )
        .await
        .unwrap();
    assert!(none.is_empty(), "end is exclusive");
    let other = b
        .scan(Space::Blobs, &KeyRange::prefix(b"t2/"), ScanOrder::ALL)
        .await
        .unwrap();
    assert!(other.is_empty(), "scans stay in their space");
}

async fn a_failed_condition_writes_nothing(b: &Backend) {
    let mut batch = Batch::new();
    batch.put(Space::Meta, b"t4/guard".to_vec(), b"v1".to_vec());
    b.commit(batch).await.unwrap();
    let mut batch = Batch::new();
    batch.require(Space::Meta, b"t4/guard".to_vec(), Some(b"not v1"));
    batch.put(Space::Meta, b"t4/x".to_vec(), b"x".to_vec());
    batch.delete(Space::Meta, b"t4/guard".to_vec());
    batch.put(Space::Blobs, b"t4/y".to_vec(), b"y".to_vec());
    assert!(
        matches!(b.commit(batch).await, Err(BackendError::Conflict)),
        "conflict"
    );
    assert_eq!(
        b.get(Space::Meta, b"t4/x").await.unwrap(),
        None,
        "no put applied"
    );
    assert_eq!(
        b.get(Space::Blobs, b"t4/y").await.unwrap(),
        None,
        "no put in another space"
    );
    assert!(
        b.get(Space::Meta, b"t4/guard").await.unwrap().is_some(),
        "no delete applied"
    );
}

async fn conditions_on_absent_and_present_keys(b: &Backend) {
    let mut batch = Batch::new();
    batch.require(Space::Meta, b"t5/k".to_vec(), None);
    batch.put(Space::Meta, b"t5/k".to_vec(), b"first".to_vec());
    b.commit(batch).await.expect("absent key required absent");
    let mut batch = Batch::new();
    batch.require(Space::Meta, b"t5/k".to_vec(), None);
    batch.put(Space::Meta, b"t5/k".to_vec(), b"second".to_vec());
    assert!(
        matches!(b.commit(batch).await, Err(BackendError::Conflict)),
        "present, not absent"
    );
    let mut batch = Batch::new();
    batch.require(Space::Meta, b"t5/k".to_vec(), Some(b"first"));
    batch.put(Space::Meta, b"t5/k".to_vec(), b"third".to_vec());
    b.commit(batch).await.expect("value as required");
    assert_eq!(
        b.get(Space::Meta, b"t5/k").await.unwrap().as_deref(),
        Some(&b"third"[..])
    );
    // A condition on a key the batch does not write still guards it.
    let mut batch = Batch::new();
    batch.require(Space::Meta, b"t5/other".to_vec(), Some(b"anything"));
    batch.put(Space::Meta, b"t5/k".to_vec(), b"fourth".to_vec());
    assert!(matches!(b.commit(batch).await, Err(BackendError::Conflict)));
}

/// Read, add one, write under the condition that nothing changed; retried.
async fn increment(b: &Backend, key: &[u8]) -> u64 {
    retry(|| async {
        let old = b.get(Space::Meta, key).await?;
        let n = old
            .as_deref()
            .map(|v| u64::from_be_bytes(v.try_into().unwrap_or([0; 8])))
            .unwrap_or(0);
        let mut batch = Batch::new();
        batch.require(Space::Meta, key.to_vec(), old.as_deref());
        batch.put(Space::Meta, key.to_vec(), (n + 1).to_be_bytes().to_vec());
        b.commit(batch).await?;
        Ok(n + 1)
    })
    .await
    .expect("increment")
}

async fn racing_counters_lose_no_update(b: &Backend) {
    let b = Arc::new(b.clone());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                increment(&b, b"t6/counter").await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = b.get(Space::Meta, b"t6/counter").await.unwrap().unwrap();
    assert_eq!(
        u64::from_be_bytes(v.try_into().unwrap()),
        200,
        "8 × 25 increments"
    );
}

async fn racing_writers_never_share_a_uid(b: &Backend) {
    // The shape of a delivery: take the folder's next UID and write the
    // message under it, in one write set guarded by the folder record.
    let b = Arc::new(b.clone());
    let mut tasks = Vec::new();
    for writer in 0..6u8 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..10 {
                let uid = retry(|| async {
                    let folder = b.get(Space::Meta, b"t7/folder").await?;
                    let next = folder
                        .as_deref()
                        .map(|v| u32::from_be_bytes(v.try_into().unwrap_or([0; 4])))
                        .unwrap_or(1);
                    let mut batch = Batch::new();
                    batch.require(Space::Meta, b"t7/folder".to_vec(), folder.as_deref());
                    batch.put(
                        Space::Meta,
                        b"t7/folder".to_vec(),
                        (next + 1).to_be_bytes().to_vec(),
                    );
                    let mut key = b"t7/m/".to_vec();
                    key.extend_from_slice(&next.to_be_bytes());
                    batch.require(Space::Meta, key.clone(), None);
                    batch.put(Space::Meta, key, vec![writer]);
                    b.commit(batch).await?;
                    Ok(next)
                })
                .await
                .expect("deliver");
                mine.push(uid);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=60).collect::<Vec<u32>>(),
        "60 distinct UIDs, none skipped"
    );
    let stored = b
        .scan(Space::Meta, &KeyRange::prefix(b"t7/m/"), ScanOrder::ALL)
        .await
        .unwrap();
    assert_eq!(stored.len(), 60, "every message stored under its own UID");
}

/// Many write sets at once (sled's writer applies those that arrive
/// together as one transaction): half require a key that one of them
/// creates, so some of them conflict; each set is all or nothing, and the
/// others' outcomes do not depend on it.
async fn concurrent_sets_stand_or_fall_alone(b: &Backend) {
    let b = Arc::new(b.clone());
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut batch = Batch::new();
            if i == 32 {
                batch.put(Space::Meta, b"t10/guard".to_vec(), b"set".to_vec());
            } else if i % 2 == 1 {
                batch.require(Space::Meta, b"t10/guard".to_vec(), None);
            }
            batch.put(
                Space::Meta,
                format!("t10/a{i:02}").into_bytes(),
                b"a".to_vec(),
            );
            batch.put(
                Space::Blobs,
                format!("t10/b{i:02}").into_bytes(),
                b"b".to_vec(),
            );
            (i, b.commit(batch).await)
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        let (i, outcome) = task.await.expect("task");
        let a = b
            .get(Space::Meta, format!("t10/a{i:02}").as_bytes())
            .await
            .unwrap();
        let blob = b
            .get(Space::Blobs, format!("t10/b{i:02}").as_bytes())
            .await
            .unwrap();
        match outcome {
            Ok(()) => assert!(a.is_some() && blob.is_some(), "set {i} committed in full"),
            Err(BackendError::Conflict) => {
                assert!(i % 2 == 1, "set {i} had no condition to fail");
                assert!(
                    a.is_none() && blob.is_none(),
                    "set {i} conflicted: nothing of it"
                );
                conflicts += 1;
            }
            Err(e) => panic!("set {i}: {e}"),
        }
    }
    assert!(conflicts <= 32);
    assert!(b.get(Space::Meta, b"t10/guard").await.unwrap().is_some());
}

/// Many write sets at once, each claiming one key only if it is still
/// absent: however they are grouped (sled's writer applies those that
/// arrive together as one transaction, each set's condition read after the
/// sets before it), at most one claim commits, and a claim that does not
/// leaves nothing of itself.
async fn concurrent_claims_of_one_key_commit_once(b: &Backend) {
    let b = Arc::new(b.clone());
    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut batch = Batch::new();
            batch.require(Space::Meta, b"t11/key".to_vec(), None);
            batch.put(Space::Meta, b"t11/key".to_vec(), i.to_string().into_bytes());
            batch.put(
                Space::Meta,
                format!("t11/c{i:02}").into_bytes(),
                b"c".to_vec(),
            );
            (i, b.commit(batch).await)
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        let (i, outcome) = task.await.expect("task");
        let companion = b
            .get(Space::Meta, format!("t11/c{i:02}").as_bytes())
            .await
            .unwrap();
        match outcome {
            Ok(()) => {
                assert!(companion.is_some(), "claim {i} committed in full");
                claimed.push(i);
            }
            Err(BackendError::Conflict) => {
                assert!(companion.is_none(), "claim {i} conflicted: nothing of it");
            }
            Err(e) => panic!("claim {i}: {e}"),
        }
    }
    assert!(
        claimed.len() <= 1,
        "more than one claim committed: {claimed:?}"
    );
    assert_eq!(
        b.get(Space::Meta, b"t11/key").await.unwrap(),
        claimed.first().map(|i| i.to_string().into_bytes()),
        "the key holds the claim that committed"
    );
}

async fn ids_are_unique_and_increasing(b: &Backend) {
    let first = b.next_id().await.unwrap();
    let second = b.next_id().await.unwrap();
    assert!(
        first > 0 && second > first,
        "increasing ids ({first}, {second})"
    );
    let b = Arc::new(b.clone());
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..50 {
                    ids.push(b.next_id().await.unwrap());
                }
                ids
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "no id given twice");
    assert!(all[0] > second, "later ids are larger");
}

async fn changes_follow_commits_only(b: &Backend) {
    let mut changes = b.changes();
    let mut batch = Batch::new();
    batch.put(Space::Meta, b"t8/k".to_vec(), b"v".to_vec());
    batch.notify("bob@example.test\nINBOX");
    b.commit(batch).await.unwrap();
    let mut failed = Batch::new();
    failed.require(Space::Meta, b"t8/k".to_vec(), None);
    failed.put(Space::Meta, b"t8/k".to_vec(), b"w".to_vec());
    failed.notify("never");
    assert!(b.commit(failed).await.is_err());
    let mut later = Batch::new();
    later.put(Space::Meta, b"t8/j".to_vec(), b"v".to_vec());
    later.notify("second");
    b.commit(later).await.unwrap();
    assert_eq!(changes.recv().await.unwrap(), "bob@example.test\nINBOX");
    assert_eq!(
        changes.recv().await.unwrap(),
        "second",
        "no change from the failed batch"
    );
}

async fn large_values_and_binary_keys(b: &Backend) {
    let chunk: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut key = 42u64.to_be_bytes().to_vec();
    key.extend_from_slice(&0u32.to_be_bytes());
    let mut batch = Batch::new();
    batch.put(Space::Blobs, key.clone(), chunk.clone());
    b.commit(batch).await.unwrap();
    assert_eq!(
        b.get(Space::Blobs, &key).await.unwrap(),
        Some(chunk),
        "64 KiB chunk"
    );
    let mut batch = Batch::new();
    batch.put(Space::Meta, b"t9/empty".to_vec(), Vec::new());
    b.commit(batch).await.unwrap();
    assert_eq!(
        b.get(Space::Meta, b"t9/empty").await.unwrap(),
        Some(Vec::new()),
        "empty value"
    );
}

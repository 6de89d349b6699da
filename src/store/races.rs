//! The mail core's own conformance: deliveries, IMAP folder operations and
//! the races that matter (UIDs, flags, reference counts) run through
//! `Store` on every engine — sled in a temporary folder and PostgreSQL in
//! a private server — so the mail logic written once above the seam is
//! shown to hold on each.

use super::{BlobReader, FlagOp, QueueEntry, QueueRecipient, Store, StoreError};
use std::collections::BTreeSet;

const BOB: &str = "bob@example.test";
const CAROL: &str = "carol@example.test";

async fn run_all(store: &Store) {
    store.add_user(BOB, "pw").await.unwrap();
    store.add_user(CAROL, "pw").await.unwrap();
    delivery_and_folder_operations(store).await;
    racing_deliveries_get_distinct_uids(store).await;
    racing_flag_changes_all_land(store).await;
    the_last_reference_is_dropped_exactly_once(store).await;
    unfinished_bodies_go_and_finished_ones_stay(store).await;
    store.flush().await.unwrap();
}

fn entry(store_id: u64, blob: u64) -> QueueEntry {
    QueueEntry {
        id: store_id,
        blob,
        size: 0,
        sender: "ann@example.net".into(),
        envid: None,
        ret: None,
        smtputf8: false,
        eight_bit: false,
        arrived: super::now(),
        client: "test [127.0.0.1]".into(),
        recipients: vec![QueueRecipient::new(
            "far@example.org".into(),
            None,
            None,
            Vec::new(),
        )],
        warned: false,
        require_tls: false,
        node: None,
    }
}

/// Receives a message of `size` bytes for `users` (and the queue, when
/// `queued`), as SMTP does: streamed into a writer, one write set.
async fn receive(store: &Store, users: &[&str], size: usize, queued: bool) -> (u64, Vec<u32>) {
    let id = store.next_id().await.unwrap();
    let mut writer = store.blob_writer(id);
    writer.write(b"Subject: t\r\n\r\n").await.unwrap();
    writer.write(&vec![b'x'; size]).await.unwrap();
    let users: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    let q = queued.then(|| entry(id, id));
    let uids = store
        .accept_message(writer, b"Received: t\r\n".to_vec(), &users, q.as_ref())
        .await
        .unwrap();
    (id, uids)
}

async fn delivery_and_folder_operations(store: &Store) {
    // A delivery: body (several chunks), two mailboxes and a queue entry.
    let (blob, uids) = receive(store, &[BOB, CAROL], 200_000, true).await;
    assert_eq!(uids, vec![1, 1]);
    assert_eq!(store.blob(blob).await.unwrap().refs, 3);
    let mut bytes = Vec::new();
    let parts = store.blob_parts(blob).await.unwrap();
    tokio::io::AsyncReadExt::read_to_end(&mut BlobReader::new(parts), &mut bytes)
        .await
        .unwrap();
    assert_eq!(bytes.len(), 13 + 14 + 200_000);
    assert!(bytes.starts_with(b"Received: t\r\nSubject: t\r\n\r\nxx"));
    assert_eq!(store.read_chunks(blob, 14, 3).await.unwrap(), b"xxx");
    let queued = store.queue_entry(blob).await.unwrap().unwrap();
    let mut changed = queued.clone();
    changed.recipients[0].attempts = 1;
    store.update_queue_entry(&changed).await.unwrap();
    assert_eq!(store.queue_entries().await.unwrap(), vec![changed.clone()]);
    store.release_queue_entry(&changed).await.unwrap();
    store.release_queue_entry(&changed).await.unwrap(); // twice: no-op
    store.update_queue_entry(&changed).await.unwrap(); // stays deleted
    assert!(store.queue_entry(blob).await.unwrap().is_none());
    assert_eq!(store.blob(blob).await.unwrap().refs, 2);

    // IMAP: create, APPEND, COPY, MOVE, STORE, EXPUNGE, RENAME, DELETE.
    store.create_folder(BOB, "Work").await.unwrap();
    assert!(matches!(
        store.create_folder(BOB, "Work").await,
        Err(StoreError::FolderExists(_))
    ));
    store.create_folder(BOB, "Work/Old").await.unwrap();
    let (validity, a) = store
        .append(
            BOB,
            "Work",
            b"Subject: a\r\n\r\nbody\r\n",
            vec!["\\Seen".into()],
            None,
        )
        .await
        .unwrap();
    assert_eq!(a, 1);
    let work = store.folder(BOB, "Work").await.unwrap().unwrap();
    assert_eq!(work.uidvalidity, validity);
    let copied = store
        .copy_messages(BOB, "INBOX", &[1], "Work", false)
        .await
        .unwrap();
    assert_eq!(copied.pairs, vec![(1, 2)]);
    assert_eq!(store.blob(blob).await.unwrap().refs, 3);
    let before = store
        .folder(BOB, "Work")
        .await
        .unwrap()
        .unwrap()
        .highest_modseq;
    let (done, failed) = store
        .store_flags(
            BOB,
            "Work",
            &[1, 2],
            &FlagOp::Add(vec!["\\Flagged".into()]),
            Some(before),
        )
        .await
        .unwrap();
    assert_eq!((done.len(), failed.len()), (2, 0));
    let (done, failed) = store
        .store_flags(
            BOB,
            "Work",
            &[1],
            &FlagOp::Remove(vec!["\\Seen".into()]),
            Some(before),
        )
        .await
        .unwrap();
    assert_eq!((done.len(), failed), (0, vec![1]), "UNCHANGEDSINCE");
    let moved = store
        .copy_messages(BOB, "Work", &[2], "Work/Old", true)
        .await
        .unwrap();
    assert_eq!(moved.pairs, vec![(2, 1)]);
    let mid = store
        .folder(BOB, "Work")
        .await
        .unwrap()
        .unwrap()
        .highest_modseq;
    assert_eq!(
        store.vanished_since(BOB, "Work", before).await.unwrap(),
        Some(vec![2])
    );
    store.expunge(BOB, "Work", &[1]).await.unwrap();
    assert_eq!(
        store.vanished_since(BOB, "Work", mid).await.unwrap(),
        Some(vec![1])
    );
    assert_eq!(store.claim_recent(BOB, "Work/Old", 2).await.unwrap(), 1);
    store.rename_folder(BOB, "Work", "Play").await.unwrap();
    assert!(store.folder(BOB, "Work").await.unwrap().is_none());
    let old = store.messages(BOB, "Play/Old").await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].flags, vec!["\\Flagged".to_string()]);
    assert_eq!(old[0].blob, blob);
    assert_eq!(
        store.vanished_since(BOB, "Play", mid).await.unwrap(),
        Some(vec![1]),
        "the history moves with the folder"
    );
    store.delete_folder(BOB, "Play/Old").await.unwrap();
    assert!(store.subscription_kept(BOB, "Play/Old").await.unwrap());
    assert_eq!(store.blob(blob).await.unwrap().refs, 2);
    store.set_subscribed(BOB, "Play/Old", false).await.unwrap();
    assert!(!store.subscription_kept(BOB, "Play/Old").await.unwrap());
    // A bounce: bytes stored here and queued.
    let id = store.next_id().await.unwrap();
    let bounce = store
        .enqueue_bytes(entry(id, 0), b"Subject: bounce\r\n\r\nx\r\n")
        .await
        .unwrap();
    assert_eq!(
        store.read_blob(bounce.blob).await.unwrap(),
        b"Subject: bounce\r\n\r\nx\r\n"
    );
    let delivered = store
        .deliver_blob(bounce.blob, &[CAROL.into()])
        .await
        .unwrap();
    assert_eq!(delivered, vec![2]);
    store.release_queue_entry(&bounce).await.unwrap();
    assert_eq!(store.blob(bounce.blob).await.unwrap().refs, 1);
    store.expunge(CAROL, "INBOX", &[1, 2]).await.unwrap();
    store.expunge(BOB, "INBOX", &[1]).await.unwrap();
    assert!(matches!(
        store.blob(blob).await,
        Err(StoreError::MissingBlob(_))
    ));
    assert!(store.read_blob(bounce.blob).await.is_err());
}

async fn racing_deliveries_get_distinct_uids(store: &Store) {
    store.create_folder(CAROL, "Race").await.unwrap();
    let before = store.folder(CAROL, "INBOX").await.unwrap().unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut uids = Vec::new();
                for _ in 0..10 {
                    uids.extend(receive(&store, &[CAROL], 100, false).await.1);
                }
                uids
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for t in tasks {
        for uid in t.await.unwrap() {
            assert!(all.insert(uid), "UID {uid} given twice");
        }
    }
    assert_eq!(all.len(), 60);
    let after = store.folder(CAROL, "INBOX").await.unwrap().unwrap();
    assert_eq!(after.next_uid, before.next_uid + 60);
    assert_eq!(after.highest_modseq, before.highest_modseq + 60);
    assert_eq!(store.messages(CAROL, "INBOX").await.unwrap().len(), 60);
}

async fn racing_flag_changes_all_land(store: &Store) {
    let (_, uid) = store
        .append(CAROL, "Race", b"Subject: f\r\n\r\n", Vec::new(), None)
        .await
        .unwrap();
    let before = store.folder(CAROL, "Race").await.unwrap().unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let op = FlagOp::Add(vec![format!("k{i}")]);
                store
                    .store_flags(CAROL, "Race", &[uid], &op, None)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut modseqs = BTreeSet::new();
    for t in tasks {
        let (done, _) = t.await.unwrap();
        assert_eq!(done.len(), 1);
        assert!(modseqs.insert(done[0].1), "a mod-sequence given twice");
    }
    let flags = store
        .message(CAROL, "Race", uid)
        .await
        .unwrap()
        .unwrap()
        .flags;
    let want: BTreeSet<String> = (0..8).map(|i| format!("k{i}")).collect();
    assert_eq!(
        flags.into_iter().collect::<BTreeSet<_>>(),
        want,
        "a lost update"
    );
    let after = store.folder(CAROL, "Race").await.unwrap().unwrap();
    assert_eq!(after.highest_modseq, before.highest_modseq + 8);
}

async fn the_last_reference_is_dropped_exactly_once(store: &Store) {
    let users = ["u0", "u1", "u2", "u3", "u4", "u5"].map(|u| format!("{u}@example.test"));
    for u in &users {
        store.add_user(u, "pw").await.unwrap();
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let (blob, uids) = receive(store, &refs, 150_000, true).await;
    assert_eq!(store.blob(blob).await.unwrap().refs, 7);
    // Each user expunges while a COPY keeps one more reference alive and
    // the queue lets go: the blob must outlive every race but the last.
    let mut tasks = Vec::new();
    for (u, uid) in users.iter().zip(uids) {
        let (store, u) = (store.clone(), u.clone());
        tasks.push(tokio::spawn(async move {
            if u.starts_with("u0") {
                store
                    .copy_messages(&u, "INBOX", &[uid], "Archive", false)
                    .await
                    .unwrap();
            }
            store.expunge(&u, "INBOX", &[uid]).await.unwrap();
        }));
    }
    let (s, q) = (
        store.clone(),
        store.queue_entry(blob).await.unwrap().unwrap(),
    );
    tasks.push(tokio::spawn(async move {
        s.release_queue_entry(&q).await.unwrap()
    }));
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.blob(blob).await.unwrap().refs, 1, "the archived copy");
    assert_eq!(
        store.read_blob(blob).await.unwrap().len(),
        13 + 14 + 150_000
    );
    let archived = store.messages(&users[0], "Archive").await.unwrap();
    store
        .expunge(&users[0], "Archive", &[archived[0].uid])
        .await
        .unwrap();
    assert!(matches!(
        store.blob(blob).await,
        Err(StoreError::MissingBlob(_))
    ));
    let chunks = store.read_chunks(blob, 0, 1).await.unwrap();
    assert!(chunks.is_empty(), "the chunks went with the record");
}

/// A body given up half-written (its chunks committed, its `p/` mark set)
/// is removed, mark and all, while other messages are being received; one
/// that was committed keeps its chunks and loses only the mark. On
/// PostgreSQL the removals race the receptions' write sets, so a
/// serialization failure must be tried again, not taken for "committed".
async fn unfinished_bodies_go_and_finished_ones_stay(store: &Store) {
    let mut unfinished = Vec::new();
    for _ in 0..4 {
        let id = store.next_id().await.unwrap();
        let mut writer = store.blob_writer(id);
        writer.write(&vec![b'y'; 150_000]).await.unwrap();
        // Given up without its drop, which would remove it in the background.
        std::mem::forget(writer);
        assert_eq!(store.read_chunks(id, 0, 3).await.unwrap(), b"yyy");
        unfinished.push(id);
    }
    let (finished, _) = receive(store, &[BOB], 150_000, false).await;
    let mut tasks = Vec::new();
    for &id in unfinished.iter().chain([&finished]) {
        let s = store.clone();
        tasks.push(tokio::spawn(
            async move { s.remove_unfinished(id, None).await },
        ));
    }
    for _ in 0..4 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            receive(&s, &[CAROL], 70_000, false).await;
            Ok(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for id in unfinished.into_iter().chain([finished]) {
        let mark = store
            .inner
            .backend
            .get(super::backend::Space::Meta, &super::blobs::pending_key(id))
            .await
            .unwrap();
        assert!(mark.is_none(), "blob {id}'s mark is gone");
        if id == finished {
            assert_eq!(store.read_blob(id).await.unwrap().len(), 13 + 14 + 150_000);
        } else {
            assert!(
                store.read_chunks(id, 0, 1).await.unwrap().is_empty(),
                "blob {id}'s chunks are gone"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mail_core_holds_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mail_core_holds_on_postgres() {
    let server = crate::testing::postgres::PrivatePostgres::start();
    let backend = server.engine(|s| s.pool_size = 8).await;
    let store = Store::on(backend).await.unwrap();
    assert_eq!(store.engine_name(), "postgres");
    run_all(&store).await;
}

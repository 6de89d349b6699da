//! The script store's rules, run on both engines (sled in a temporary
//! folder, PostgreSQL in a private server): put/get/list, one active
//! script, rename, the active one undeletable, the limits, compile errors
//! at line:column, and racing saves that never pass the count limit.

use super::*;
use crate::config::ByteSize;

const USER: &str = "ann@example.test";
const GOOD: &str =
    "require \"fileinto\";\nif header :contains \"subject\" \"x\" {\n  fileinto \"X\";\n}\n";

fn limits(size: u64, count: usize) -> SieveConfig {
    SieveConfig {
        max_script_size: ByteSize(size),
        max_scripts: count,
        ..SieveConfig::default()
    }
}

async fn add_account(b: &Backend, user: &str) {
    let mut batch = Batch::new();
    batch.put(
        Space::Meta,
        format!("u/{user}").into_bytes(),
        b"{}".to_vec(),
    );
    b.commit(batch).await.unwrap();
}

async fn run_all(b: &Backend) {
    add_account(b, USER).await;
    puts_gets_lists_and_activates(b).await;
    renames_and_deletes(b).await;
    limits_and_compile_errors(b).await;
    racing_saves_keep_the_count(b).await;
}

async fn puts_gets_lists_and_activates(b: &Backend) {
    let s = SieveScripts::on(b);
    let l = SieveConfig::default();
    assert!(s.list(USER).await.unwrap().is_empty());
    s.put(USER, "main", GOOD.as_bytes(), &l).await.unwrap();
    s.put(USER, "other", b"keep;", &l).await.unwrap();
    assert_eq!(
        s.get("ANN@example.test", "main").await.unwrap(),
        GOOD.as_bytes()
    );
    assert_eq!(
        s.list(USER).await.unwrap(),
        vec![("main".to_string(), false), ("other".to_string(), false)]
    );
    assert!(s.active(USER).await.unwrap().is_none());
    s.activate(USER, Some("main")).await.unwrap();
    assert_eq!(
        s.active(USER).await.unwrap(),
        Some(("main".to_string(), GOOD.as_bytes().to_vec()))
    );
    s.activate(USER, Some("other")).await.unwrap();
    assert_eq!(
        s.list(USER).await.unwrap(),
        vec![("main".to_string(), false), ("other".to_string(), true)],
        "at most one is active"
    );
    // Replacing the active script keeps it active.
    s.put(USER, "other", b"discard;", &l).await.unwrap();
    assert_eq!(
        s.active(USER).await.unwrap().map(|(_, t)| t),
        Some(b"discard;".to_vec())
    );
    assert!(matches!(
        s.activate(USER, Some("nope")).await,
        Err(SieveError::NoSuchScript(_))
    ));
    s.activate(USER, None).await.unwrap();
    assert!(s.active(USER).await.unwrap().is_none());
    assert!(matches!(
        s.get(USER, "nope").await,
        Err(SieveError::NoSuchScript(_))
    ));
    // Another user sees none of it; an unknown user cannot save.
    assert!(s.list("bob@example.test").await.unwrap().is_empty());
    assert!(matches!(
        s.put("bob@example.test", "x", b"keep;", &l).await,
        Err(SieveError::Store(StoreError::NoSuchUser(_)))
    ));
}

async fn renames_and_deletes(b: &Backend) {
    let s = SieveScripts::on(b);
    s.activate(USER, Some("main")).await.unwrap();
    assert!(matches!(
        s.delete(USER, "main").await,
        Err(SieveError::Active(_))
    ));
    assert!(matches!(
        s.rename(USER, "main", "other").await,
        Err(SieveError::Exists(_))
    ));
    assert!(matches!(
        s.rename(USER, "gone", "x").await,
        Err(SieveError::NoSuchScript(_))
    ));
    s.rename(USER, "main", "renamed").await.unwrap();
    assert_eq!(
        s.list(USER).await.unwrap(),
        vec![("other".to_string(), false), ("renamed".to_string(), true)],
        "the active script stays active under its new name"
    );
    assert_eq!(s.get(USER, "renamed").await.unwrap(), GOOD.as_bytes());
    assert!(s.get(USER, "main").await.is_err());
    s.delete(USER, "other").await.unwrap();
    assert!(matches!(
        s.delete(USER, "other").await,
        Err(SieveError::NoSuchScript(_))
    ));
    s.activate(USER, None).await.unwrap();
    s.delete(USER, "renamed").await.unwrap();
    assert!(s.list(USER).await.unwrap().is_empty());
    assert_eq!(
        b.get(Space::Meta, &index_key(USER)).await.unwrap(),
        None,
        "an empty index is removed"
    );
}

async fn limits_and_compile_errors(b: &Backend) {
    let s = SieveScripts::on(b);
    let l = limits(20, 2);
    match s.put(USER, "big", &[b' '; 21], &l).await {
        Err(SieveError::TooBig { size: 21, max: 20 }) => {}
        other => panic!("expected TooBig, got {other:?}"),
    }
    match s.put(USER, "bad", b"keep;\nfileinto \"x\";", &l).await {
        Err(SieveError::Compile(e)) => assert_eq!(e.pos.to_string(), "2:1", "{e}"),
        other => panic!("expected a compile error, got {other:?}"),
    }
    assert!(matches!(
        s.put(USER, "bin", b"keep; # \xff", &l).await,
        Err(SieveError::NotUtf8)
    ));
    for bad in ["", "a\nb", "a\u{7f}", "x\u{2028}"] {
        assert!(
            matches!(
                s.put(USER, bad, b"keep;", &l).await,
                Err(SieveError::BadName(_))
            ),
            "{bad:?}"
        );
    }
    s.put(USER, "a", b"keep;", &l).await.unwrap();
    s.put(USER, "b", b"keep;", &l).await.unwrap();
    assert!(matches!(
        s.put(USER, "c", b"keep;", &l).await,
        Err(SieveError::TooMany { max: 2 })
    ));
    assert!(matches!(
        s.have_space(USER, "c", 5, &l).await,
        Err(SieveError::TooMany { max: 2 })
    ));
    // Replacing one that exists is not one more.
    s.put(USER, "b", b"stop;", &l).await.unwrap();
    s.have_space(USER, "b", 20, &l).await.unwrap();
    assert!(matches!(
        s.have_space(USER, "b", 21, &l).await,
        Err(SieveError::TooBig { .. })
    ));
    s.delete(USER, "a").await.unwrap();
    s.delete(USER, "b").await.unwrap();
}

async fn racing_saves_keep_the_count(b: &Backend) {
    let l = limits(1024, 3);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let b = b.clone();
            let l = l.clone();
            tokio::spawn(async move {
                SieveScripts::on(&b)
                    .put(USER, &format!("s{i}"), b"keep;", &l)
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut saved = 0;
    for t in tasks {
        saved += usize::from(t.await.unwrap());
    }
    let s = SieveScripts::on(b);
    assert_eq!(saved, 3, "exactly the limit's worth of racing saves win");
    assert_eq!(s.list(USER).await.unwrap().len(), 3);
    let stored = b
        .scan(
            Space::Meta,
            &super::super::backend::KeyRange::prefix(&scripts_prefix(USER)),
            super::super::backend::ScanOrder::ALL,
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 3, "index and records agree");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sieve_scripts_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Backend::open_sled(dir.path()).unwrap();
    run_all(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sieve_scripts_on_postgres() {
    let server = crate::testing::postgres::PrivatePostgres::start();
    let engine = server.engine(|s| s.pool_size = 8).await;
    run_all(&engine).await;
}

#[tokio::test]
async fn deleting_the_user_deletes_the_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    store.add_user(USER, "pw").await.unwrap();
    let l = SieveConfig::default();
    store.sieve().put(USER, "main", b"keep;", &l).await.unwrap();
    store.sieve().activate(USER, Some("main")).await.unwrap();
    store.delete_user(USER).await.unwrap();
    store.add_user(USER, "pw").await.unwrap();
    assert!(store.sieve().list(USER).await.unwrap().is_empty());
    assert!(store.sieve().active(USER).await.unwrap().is_none());
}

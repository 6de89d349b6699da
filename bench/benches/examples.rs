//! The example policy plugin of `examples/` in Rust, C, JavaScript and
//! Python on the real engine: the first load (compiling the component),
//! and `on-rcpt-to` on a warm instance and on a fresh one (instantiation
//! included). Each call logs one line through the `log` import, as the
//! examples do on every decision.
//!
//! Build the examples first, e.g. by `cargo test --test
//! examples_four_languages` (it leaves them in `target/tmp/examples/`), or
//! with each `examples/LANG/build.sh DIR` and `TERN_EXAMPLES=DIR-parent`;
//! then `cargo bench -p tern-bench --bench examples`. Missing ones are
//! skipped with a note.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern::address::{Address, ReversePath};
use tern::config::{Config, Protocol};
use tern::hooks::bindings::LazyEnvelope;
use tern::hooks::{Envelope, PluginSession, PluginSet, SessionInfo, Verdict};
use tern::mail::{MailParams, RcptParams};
use tern::store::Store;

const LANGUAGES: [&str; 4] = ["rust", "c", "javascript", "python"];

/// Where the built examples are: `$TERN_EXAMPLES/<language>/blocklist.wasm`.
fn examples_root() -> PathBuf {
    std::env::var_os("TERN_EXAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tmp/examples"))
}

struct Fixture {
    _dir: tempfile::TempDir,
    set: Arc<PluginSet>,
}

/// Loads one example (compiling it: the cache starts empty) and reports how long that took.
fn load(rt: &tokio::runtime::Runtime, language: &str, wasm: &std::path::Path) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "hostname = \"mx.example.test\"\nlocal_domains = [\"example.test\"]\ndata_dir = \"data\"\n\
         [[plugin]]\nname = \"blocklist\"\npath = {:?}\ntimeout = \"5s\"\n\
         config = {{ blocked = \"nobody,noreply,postmaster-test\" }}\n",
        wasm.display().to_string()
    );
    let config = Config::from_toml(&text, dir.path()).expect("config");
    let store = rt
        .block_on(Store::open(&dir.path().join("data")))
        .expect("store");
    let dns = tern::dns::Dns::new(
        Some(&[SocketAddr::from(([127, 0, 0, 1], 9))]),
        Duration::from_secs(1),
    )
    .expect("dns");
    let started = Instant::now();
    let set = Arc::new(PluginSet::load(&config, &store, &dns).expect("plugin loads"));
    let size = std::fs::metadata(wasm).map(|m| m.len()).unwrap_or(0);
    println!(
        "{language}: {size} bytes, first load (compile + link) {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    Fixture { _dir: dir, set }
}

fn info(plugins: Arc<PluginSession>) -> SessionInfo {
    SessionInfo {
        client: SocketAddr::from(([192, 0, 2, 7], 40000)),
        local: SocketAddr::from(([127, 0, 0, 1], 25)),
        protocol: Protocol::Smtp,
        helo: Some("client.example".into()),
        tls: None,
        user: None,
        trusted: false,
        plugins,
        trace: tern::trace::Recorder::new(std::net::IpAddr::from([192, 0, 2, 7])),
    }
}

fn rcpt_to(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (from, mail) = (
        ReversePath::Mailbox(Address::new_unchecked("lisa", "outside.test")),
        MailParams::default(),
    );
    let env = Envelope {
        from: &from,
        params: &mail,
        recipients: Vec::new(),
    };
    let params = RcptParams::default();
    for language in LANGUAGES {
        let wasm = examples_root().join(language).join("blocklist.wasm");
        if !wasm.is_file() {
            println!("{language}: {} not built, skipped", wasm.display());
            continue;
        }
        let f = load(&rt, language, &wasm);
        let session = info(Arc::new(PluginSession::new(f.set.clone())));
        // The plugin really decides: a blocked and an allowed recipient.
        rt.block_on(async {
            let v = session
                .plugins
                .rcpt_to(
                    &session,
                    &LazyEnvelope::new(&env),
                    "NoBody@example.test",
                    &params,
                )
                .await;
            assert!(matches!(v, Verdict::Reject(_)), "{language}: {v:?}");
        });
        c.bench_function(&format!("{language}: on-rcpt-to, warm instance"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(
                            session
                                .plugins
                                .rcpt_to(
                                    &session,
                                    &LazyEnvelope::new(&env),
                                    "bob@example.test",
                                    &params,
                                )
                                .await,
                        );
                    }
                    start.elapsed()
                })
            })
        });
        c.bench_function(
            &format!("{language}: on-rcpt-to, fresh instance (instantiation included)"),
            |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            f.set.drain_idle();
                            let start = Instant::now();
                            let fresh = info(Arc::new(PluginSession::new(f.set.clone())));
                            black_box(
                                fresh
                                    .plugins
                                    .rcpt_to(
                                        &fresh,
                                        &LazyEnvelope::new(&env),
                                        "bob@example.test",
                                        &params,
                                    )
                                    .await,
                            );
                            drop(fresh);
                            spent += start.elapsed();
                        }
                        spent
                    })
                })
            },
        );
    }
}

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = quick(); targets = rcpt_to }
criterion_main!(benches);

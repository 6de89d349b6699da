//! The cost of plugin hook calls, measured on the real engine with the
//! test plugins: a trivial `on-rcpt-to` (policy `no_nobody`) on a warm
//! instance (beside the same call made bare, through wasmtime's generated
//! bindings alone: what the dispatch adds) and including instantiation, and
//! a filter (`add_header`)
//! reading the headers of a 5 KB and a 1 MB message. Run with
//! `cargo bench -p tern-bench`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern::config::{Config, Protocol};
use tern::hooks::bindings::{self, wit};
use tern::hooks::{DataMessage, MessageView, PluginSession, PluginSet, SessionInfo};
use tern::mail::{MailParams, RcptParams};
use tern::store::Store;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    set: Arc<PluginSet>,
}

fn fixture(plugins: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::from(
        "hostname = \"mx.example.test\"\nlocal_domains = [\"example.test\"]\ndata_dir = \"data\"\n",
    );
    for (name, path) in plugins {
        text.push_str(&format!(
            "[[plugin]]\nname = \"{name}\"\npath = \"{path}\"\ntimeout = \"1s\"\n"
        ));
    }
    let config = Config::from_toml(&text, dir.path()).expect("config");
    let store = rt()
        .block_on(Store::open(&dir.path().join("data")))
        .expect("store");
    let dns = tern::dns::Dns::new(
        Some(&[SocketAddr::from(([127, 0, 0, 1], 9))]),
        Duration::from_secs(1),
    )
    .expect("dns");
    let set = Arc::new(PluginSet::load(&config, &store, &dns).expect("plugins"));
    Fixture {
        _dir: dir,
        store,
        set,
    }
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

fn envelope() -> wit::Envelope {
    wit::Envelope {
        sender: "lisa@outside.test".into(),
        params: bindings::mail_params(&MailParams::default()),
        recipients: Vec::new(),
        auth: None,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn rcpt_to(c: &mut Criterion) {
    let f = fixture(&[("no-nobody", test_plugins::NO_NOBODY)]);
    let rt = rt();
    let env = envelope();
    let params = bindings::rcpt_params(&RcptParams::default());
    let session = info(Arc::new(PluginSession::new(f.set.clone())));
    c.bench_function("on-rcpt-to, trivial policy, warm instance", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(
                        session
                            .plugins
                            .rcpt_to(&session, &env, "bob@example.test", &params)
                            .await,
                    );
                }
                start.elapsed()
            })
        })
    });
    // The baseline: the same hook on a warm instance of the same plugin,
    // called straight through wasmtime's generated bindings.
    let mut bare = rt
        .block_on(tern::hooks::Bare::new(&f.set, 0))
        .expect("bare instance");
    let wit_session = bindings::session(&session);
    c.bench_function("on-rcpt-to, bare wasmtime component call (baseline)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let answered = bare
                        .rcpt_to(&wit_session, &env, "bob@example.test", &params)
                        .await;
                    assert!(black_box(answered), "the plugin answers on-rcpt-to");
                }
                start.elapsed()
            })
        })
    });
    c.bench_function(
        "on-rcpt-to, a new session's first call, instance reused from the idle list",
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let fresh = info(Arc::new(PluginSession::new(f.set.clone())));
                        black_box(
                            fresh
                                .plugins
                                .rcpt_to(&fresh, &env, "bob@example.test", &params)
                                .await,
                        );
                    }
                    start.elapsed()
                })
            })
        },
    );
    c.bench_function(
        "on-rcpt-to, a new session's first call, fresh instance",
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
                                .rcpt_to(&fresh, &env, "bob@example.test", &params)
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

/// A message of about `size` bytes: 20 header fields, then body lines.
fn message(rt: &tokio::runtime::Runtime, store: &Store, id: u64, size: usize) -> MessageView {
    let mut header = String::new();
    for i in 0..18 {
        header.push_str(&format!(
            "X-Header-{i}: value number {i} of a header section\r\n"
        ));
    }
    header.push_str("From: Lisa <lisa@outside.test>\r\nSubject: a message to filter\r\n\r\n");
    let mut bytes = header.clone().into_bytes();
    while bytes.len() < size {
        bytes.extend_from_slice(
            b"a line of the body of the message, seventy-odd characters long....\r\n",
        );
    }
    let mut w = store.blob_writer(id);
    rt.block_on(async { w.write(&bytes).await.expect("write") });
    // As at the end of data: the full chunks in the store, the rest in the writer.
    let message = DataMessage {
        blob: id,
        tail: w.tail(),
        prefix: b"Received: from client.example ([192.0.2.7])\r\n\tby mx.example.test (Tern) with ESMTP id 1; Mon, 23 Nov 2026 10:00:00 +0000\r\n",
        header: header.as_bytes(),
        auth: None,
        skip: 0,
    };
    let arrival = wit::Arrival {
        tls: None,
        user: None,
    };
    let view = MessageView::of(store.clone(), &message, arrival);
    std::mem::forget(w); // keep the chunks for the benchmark's lifetime
    view
}

fn filter(c: &mut Criterion) {
    let f = fixture(&[("tagger", test_plugins::ADD_HEADER)]);
    let rt = rt();
    let env = envelope();
    let session = info(Arc::new(PluginSession::new(f.set.clone())));
    for (label, size) in [("5 KB", 5 * 1024), ("1 MB", 1024 * 1024)] {
        let view = message(&rt, &f.store, size as u64, size);
        c.bench_function(
            &format!("on-data, filter reading the headers, {label} message"),
            |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            black_box(session.plugins.data(&session, &env, &view).await);
                        }
                        start.elapsed()
                    })
                })
            },
        );
    }
}

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = quick(); targets = rcpt_to, filter }
criterion_main!(benches);

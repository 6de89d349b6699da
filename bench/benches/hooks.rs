//! The cost of plugin hook calls, measured on the real engine with the
//! test plugins: a trivial `on-rcpt-to` (policy `no_nobody`) on a warm
//! instance (beside the same call made bare, through wasmtime's generated
//! bindings alone: what the dispatch adds) and including instantiation, and
//! a filter (`add_header`) reading the headers of a 5 KB and a 1 MB
//! message; and one message through the shipped plugins of compare.py's
//! `plugins` row (greylist, dnsbl, content), what that row's Tern spends
//! on plugins per message without the server around it (it starts
//! the tests' DNS server, `tern::testing::peers`, for the blocklist). The
//! on-rcpt-to calls, dispatched and bare, and the row's message are also
//! measured with the caches cold (`chill`), as a call finds them in the
//! server. Run with `cargo bench -p tern-bench`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tern::address::{Address, ReversePath};
use tern::config::{Config, Protocol};
use tern::hooks::bindings::{self, LazyEnvelope, wit};
use tern::hooks::{
    Envelope, EnvelopeRecipient, MessageView, PluginSession, PluginSet, SessionInfo, Verdict,
};
use tern::mail::{MailParams, RcptParams};
use tern::store::{BlobWriter, Store};
use tern::testing::peers::DnsServer;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    set: Arc<PluginSet>,
}

fn fixture(plugins: &[(&str, &str)]) -> Fixture {
    let plugins: Vec<(&str, &str, &str)> = plugins.iter().map(|(n, p)| (*n, *p, "")).collect();
    fixture_with(&plugins, SocketAddr::from(([127, 0, 0, 1], 9)))
}

/// Plugins `(name, path, config)` (config: the inside of its `config =
/// { … }` table), resolving through `dns`.
fn fixture_with(plugins: &[(&str, &str, &str)], dns: SocketAddr) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::from(
        "hostname = \"mx.example.test\"\nlocal_domains = [\"example.test\"]\ndata_dir = \"data\"\n",
    );
    for (name, path, config) in plugins {
        text.push_str(&format!(
            "[[plugin]]\nname = \"{name}\"\npath = \"{path}\"\ntimeout = \"1s\"\nconfig = {{ {config} }}\n"
        ));
    }
    let config = Config::from_toml(&text, dir.path()).expect("config");
    let store = rt()
        .block_on(Store::open(&dir.path().join("data")))
        .expect("store");
    let dns = tern::dns::Dns::new(Some(&[dns]), Duration::from_secs(1)).expect("dns");
    let set = Arc::new(PluginSet::load(&config, &store, &dns).expect("plugins"));
    Fixture {
        _dir: dir,
        store,
        set,
    }
}

fn info(plugins: Arc<PluginSession>) -> SessionInfo {
    info_from(SocketAddr::from(([192, 0, 2, 7], 40000)), plugins)
}

fn info_from(client: SocketAddr, plugins: Arc<PluginSession>) -> SessionInfo {
    SessionInfo {
        client,
        local: SocketAddr::from(([127, 0, 0, 1], 25)),
        protocol: Protocol::Smtp,
        helo: Some("client.example".into()),
        tls: None,
        user: None,
        trusted: false,
        plugins,
        trace: tern::trace::Recorder::new(client.ip()),
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

/// The sender of `envelope()`, as the session has it.
fn sender() -> ReversePath {
    ReversePath::Mailbox(Address::new_unchecked("lisa", "outside.test"))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The time `one()` takes run `iters` times on `rt`, one after another.
fn timed<F: Future>(
    rt: &tokio::runtime::Runtime,
    iters: u64,
    mut one: impl FnMut() -> F,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(one().await);
        }
        start.elapsed()
    })
}

/// Bytes `chill` writes: well beyond the L2 cache (and the TLB's reach).
const CHILL: usize = 8 << 20;

/// Makes the caches cold, as they are for a plugin call in the server,
/// where a message's SMTP, store and delivery work for twenty sessions
/// runs between two calls: a line of every 64 bytes of `buf` written.
/// Benchmarks call it between calls, outside the time they measure.
fn chill(buf: &mut [u8], round: u64) {
    for byte in buf.iter_mut().step_by(64) {
        *byte = byte.wrapping_add(round as u8);
    }
    black_box(buf);
}

/// Like `timed`, with the caches made cold (`chill`) before each call.
fn timed_cold<T>(
    rt: &tokio::runtime::Runtime,
    iters: u64,
    walked: &mut [u8],
    mut one: impl AsyncFnMut() -> T,
) -> Duration {
    rt.block_on(async {
        let mut took = Duration::ZERO;
        for i in 0..iters {
            chill(walked, i);
            let start = Instant::now();
            black_box(one().await);
            took += start.elapsed();
        }
        took
    })
}

fn rcpt_to(c: &mut Criterion) {
    let f = fixture(&[("no-nobody", test_plugins::NO_NOBODY)]);
    let rt = rt();
    // The dispatched calls get the envelope as the session has it and
    // build the plugin's records themselves, as in the server; the bare
    // call gets the records built.
    let (from, mail, rcpt_params) = (sender(), MailParams::default(), RcptParams::default());
    let host_env = Envelope {
        from: &from,
        params: &mail,
        recipients: Vec::new(),
    };
    let env = envelope();
    let params = bindings::rcpt_params(&rcpt_params);
    let session = info(Arc::new(PluginSession::new(f.set.clone())));
    c.bench_function("on-rcpt-to, trivial policy, warm instance", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                let env = LazyEnvelope::new(&host_env);
                session
                    .plugins
                    .rcpt_to(&session, &env, "bob@example.test", &rcpt_params)
                    .await
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
    // Both again with the caches cold.
    let mut walked = vec![0u8; CHILL];
    let to = "bob@example.test";
    c.bench_function("on-rcpt-to, trivial policy, caches cold", |b| {
        b.iter_custom(|iters| {
            timed_cold(&rt, iters, &mut walked, async || {
                session
                    .plugins
                    .rcpt_to(&session, &LazyEnvelope::new(&host_env), to, &rcpt_params)
                    .await
            })
        })
    });
    c.bench_function(
        "on-rcpt-to, bare wasmtime component call, caches cold",
        |b| {
            b.iter_custom(|iters| {
                timed_cold(&rt, iters, &mut walked, async || {
                    bare.rcpt_to(&wit_session, &env, to, &params).await
                })
            })
        },
    );
    c.bench_function(
        "on-rcpt-to, a new session's first call, instance reused from the idle list",
        |b| {
            b.iter_custom(|iters| {
                timed(&rt, iters, || async {
                    let fresh = info(Arc::new(PluginSession::new(f.set.clone())));
                    let to = "bob@example.test";
                    fresh
                        .plugins
                        .rcpt_to(&fresh, &LazyEnvelope::new(&host_env), to, &rcpt_params)
                        .await
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
                                .rcpt_to(
                                    &fresh,
                                    &LazyEnvelope::new(&host_env),
                                    "bob@example.test",
                                    &rcpt_params,
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

/// A message of about `size` bytes (20 header fields, then body lines)
/// written to the store as at the end of DATA: its writer (the full chunks
/// stored, the rest in its buffer) and its header section.
fn written(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    id: u64,
    size: usize,
) -> (BlobWriter, String) {
    let mut header = String::new();
    for i in 0..18 {
        header.push_str(&format!(
            "X-Header-{i}: value number {i} of a header section\r\n"
        ));
    }
    header.push_str("From: Lisa <lisa@outside.test>\r\nSubject: a message to filter\r\n\r\n");
    write_message(rt, store, id, header, size)
}

/// `header`, then body lines up to about `size` bytes, written as `written` says.
fn write_message(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    id: u64,
    header: String,
    size: usize,
) -> (BlobWriter, String) {
    let mut bytes = header.clone().into_bytes();
    while bytes.len() < size {
        bytes.extend_from_slice(
            b"a line of the body of the message, seventy-odd characters long....\r\n",
        );
    }
    let mut w = store.blob_writer(id);
    rt.block_on(async { w.write(&bytes).await.expect("write") });
    (w, header)
}

const PREFIX: &[u8] = b"Received: from client.example ([192.0.2.7])\r\n\tby mx.example.test (Tern) with ESMTP id 1; Mon, 23 Nov 2026 10:00:00 +0000\r\n";

/// The view a filter gets of the message `w` holds (as `Hooks::view` makes it).
fn view_of(store: &Store, id: u64, w: &BlobWriter, header: &str) -> MessageView {
    tern::testing::filter_view(store, id, w.tail(), PREFIX, header.as_bytes())
}

/// A filter's view of a message of about `size` bytes (see `written`).
fn message(rt: &tokio::runtime::Runtime, store: &Store, id: u64, size: usize) -> MessageView {
    let (w, header) = written(rt, store, id, size);
    let view = view_of(store, id, &w, &header);
    std::mem::forget(w); // keep the chunks for the benchmark's lifetime
    view
}

/// One message through the plugins of compare.py's `plugins` row, with
/// its configs (greylist, dnsbl, content), as a session from 127.0.0.1
/// makes it (smtp-source sends a message per session): a new session, the
/// dnsbl's `on-connect` (its look-up answered from the resolver's cache),
/// greylist's `on-rcpt-to`, the filters' view of a 5 KB message and
/// content's `on-data` (the message as smtp-source sends it); refusing at
/// connect, dnsbl turns its `on-rcpt-to` and `on-data` off
/// (`config.skip-hooks`) at its first call. What the row's Tern spends on
/// plugins per message, without the rest of the server around it.
fn shipped(c: &mut Criterion) {
    // As compare.py's blocklist zone: NXDOMAIN for everything, with the
    // SOA, so the resolver caches it.
    let dns = DnsServer::start(&serde_json::json!({"bl.bench.test": {"SOA": 300}}));
    let shipped = [
        (
            "greylist",
            test_plugins::shipped::GREYLIST,
            r#"allow_networks = "127.0.0.0/8""#,
        ),
        (
            "dnsbl",
            test_plugins::shipped::DNSBL,
            r#"zones = "bl.bench.test""#,
        ),
        (
            "content",
            test_plugins::shipped::CONTENT,
            r#"refuse_extensions = "exe, scr, js", subject_contains = "lottery winner""#,
        ),
    ];
    let f = fixture_with(&shipped, SocketAddr::from(([127, 0, 0, 1], dns.port)));
    let rt = rt();
    // What smtp-source sends (`-l 5120`): four header fields.
    let header = "From: <lisa@outside.test>\r\nTo: <fwd@bench.test>\r\n\
                  Date: Sat,  5 Dec 2026 18:29:11 +0000 (UTC)\r\n\
                  Message-Id: <6313.0003.0000@vm>\r\n\r\n";
    let (writer, header) = write_message(&rt, &f.store, 1, header.into(), 5120);
    let row = Arc::new(Row {
        set: f.set.clone(),
        store: f.store.clone(),
        writer,
        header,
        from: sender(),
        mail: MailParams::default(),
        params: RcptParams::default(),
    });
    // The resolver's cache warm; and, as in the server, the greylist's and
    // the DNSBL's passes for 127.0.0.1 kept (`verdicts.same-for-client`):
    // from here on a message makes one call (content's) and gets two
    // remembered verdicts.
    rt.block_on(row.message(40000));
    c.bench_function(
        "a message through greylist, dnsbl and content (compare.py's plugins row)",
        |b| b.iter_custom(|iters| timed(&rt, iters, || row.message(40000))),
    );
    // The same with the caches cold, as in the server (`chill`).
    let mut walked = vec![0u8; CHILL];
    c.bench_function(
        "the same, caches cold (8 MiB written between messages, not timed)",
        |b| {
            b.iter_custom(|iters| {
                timed_cold(&rt, iters, &mut walked, async || row.message(40000).await)
            })
        },
    );
    // As the row runs them: 20 sessions at once (20 instances of each
    // plugin in turn) on the runtime's two workers. Time per message,
    // wall clock: with both workers busy, half the CPU a message takes.
    c.bench_function(
        "the same, 20 sessions at once on 2 worker threads (wall time per message)",
        |b| {
            b.iter_custom(|iters| {
                let left = Arc::new(AtomicI64::new(iters as i64));
                let start = Instant::now();
                rt.block_on(async {
                    let sessions: Vec<_> = (0..20u16)
                        .map(|i| {
                            let (row, left) = (row.clone(), left.clone());
                            tokio::spawn(async move {
                                while left.fetch_sub(1, Ordering::Relaxed) > 0 {
                                    row.message(40000 + i).await;
                                }
                            })
                        })
                        .collect();
                    for s in sessions {
                        s.await.expect("session");
                    }
                });
                start.elapsed()
            })
        },
    );
}

/// What a message of compare.py's plugins row gives the plugins.
struct Row {
    set: Arc<PluginSet>,
    store: Store,
    writer: BlobWriter,
    header: String,
    from: ReversePath,
    mail: MailParams,
    params: RcptParams,
}

impl Row {
    /// One message in a new session from 127.0.0.1:`port`.
    async fn message(&self, port: u16) {
        let client = SocketAddr::from(([127, 0, 0, 1], port));
        let s = info_from(client, Arc::new(PluginSession::new(self.set.clone())));
        let connect = s.plugins.connect(&s).await;
        assert_eq!(connect, Verdict::Continue, "on-connect");
        let mut envelope = Envelope {
            from: &self.from,
            params: &self.mail,
            recipients: Vec::new(),
        };
        let to = "fwd@bench.test";
        let lazy = LazyEnvelope::new(&envelope);
        let rcpt = s.plugins.rcpt_to(&s, &lazy, to, &self.params).await;
        drop(lazy);
        assert_eq!(rcpt, Verdict::Continue, "on-rcpt-to");
        envelope.recipients.push(EnvelopeRecipient {
            address: to.into(),
            params: &self.params,
        });
        // As `Hooks::data` builds it.
        let envelope = bindings::envelope(&envelope);
        let view = view_of(&self.store, 1, &self.writer, &self.header);
        let data = s.plugins.data(&s, &envelope, &view).await;
        assert!(data.verdict.is_none(), "on-data: {:?}", data.verdict);
        assert!(!data.add_headers.is_empty(), "the content filter's header");
    }
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
                    timed(&rt, iters, || session.plugins.data(&session, &env, &view))
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

criterion_group! { name = benches; config = quick(); targets = rcpt_to, filter, shipped }
criterion_main!(benches);

//! `tern plugin test`: one plugin's hooks run on a given envelope and
//! message outside a server, the way a session would call them (connect,
//! helo, mail-from, then for each recipient rewrite-recipient, rcpt-to and
//! route, then data, then deliver for each recipient's account), with a
//! scratch store for its key-value area (and, with `--sieve`, the
//! recipients' active script) and the real resolver. Each call's answer and time is recorded for the CLI to
//! print; the final verdict says whether a server would have accepted the
//! message. Only what the component implements is called, and a hook the
//! plugin's configuration turned off (`config.skip-hooks`) is reported as
//! not called. The input and the config made from it are in `input.rs`;
//! the answers in words in `describe.rs`.

mod describe;
mod input;

pub use input::{TrialInput, header_addresses};

use super::bindings::{self, EnvelopeRecipient};
use super::engine::PluginSet;
use super::{DataMessage, MessageView, PluginError, RewriteDecision, SessionInfo, Verdict};
use crate::address::{Address, ReversePath};
use crate::config::Protocol;
use crate::dns::Dns;
use crate::mail::{MailParams, RcptParams, Reply};
use crate::store::Store;
use describe::{describe_delivery, describe_rewrite, describe_verdict};
use input::{parse_sender, trial_config};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One hook call and what came of it.
#[derive(Debug, Clone)]
pub struct Call {
    pub hook: &'static str,
    /// The argument the hook saw (a recipient, the HELO name…).
    pub subject: String,
    pub answer: String,
    pub took: Duration,
}

/// The whole run.
#[derive(Debug)]
pub struct TrialReport {
    pub plugin: String,
    pub hooks: Vec<&'static str>,
    pub calls: Vec<Call>,
    /// None: the message would be accepted; else the refusal.
    pub refused: Option<Reply>,
    /// The recipients it would be accepted for.
    pub accepted: Vec<String>,
    /// Calls that trapped or ran out of time (each answered as the
    /// plugin's `on_error` says, which is in `calls`).
    pub failures: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("the scratch store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("the resolver: {0}")]
    Dns(#[from] crate::dns::DnsError),
}

/// Loads the plugin with the given settings and runs its hooks on the input.
pub async fn run(input: &TrialInput) -> Result<TrialReport, TrialError> {
    let scratch =
        tempfile::tempdir().map_err(|e| TrialError::Input(format!("a scratch folder: {e}")))?;
    let config = trial_config(input, scratch.path())?;
    share_compile_cache(&config.data_dir);
    let store = Store::open(&config.data_dir).await?;
    let dns = Dns::from_config(&config.dns)?;
    let set = Arc::new(PluginSet::load(&config, &store, &dns)?);
    let loaded = set
        .plugins
        .first()
        .ok_or_else(|| TrialError::Input("no plugin loaded".into()))?;
    let mut report = TrialReport {
        plugin: loaded.name.clone(),
        hooks: super::declared::Hook::ALL
            .into_iter()
            .filter(|h| loaded.calls(*h))
            .map(|h| h.wit_name())
            .collect(),
        calls: Vec::new(),
        refused: None,
        accepted: Vec::new(),
        failures: 0,
    };
    let failures_before = plugin_failures();
    let from = parse_sender(&input.from)?;
    let recipients = input
        .to
        .iter()
        .map(|t| Address::parse(t, true).map_err(|e| TrialError::Input(format!("--to {t}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let plugins = Arc::new(super::PluginSession::new(set));
    let info = SessionInfo {
        client: SocketAddr::new(input.client, 49152),
        local: SocketAddr::from(([127, 0, 0, 1], 25)),
        protocol: if input.login.is_some() {
            Protocol::Submission
        } else {
            Protocol::Smtp
        },
        helo: None,
        tls: None,
        user: input.login.clone(),
        trusted: false,
        plugins,
        trace: crate::trace::Recorder::off(),
    };
    run_session(&mut report, input, &store, info, &from, &recipients).await?;
    report.failures = plugin_failures() - failures_before;
    Ok(report)
}

/// Compiled components are kept between runs in the user's cache folder
/// (`$XDG_CACHE_HOME/tern/plugin-cache`, else `~/.cache/…`): the scratch
/// data folder's cache is a link to it. Without one, each run compiles.
fn share_compile_cache(data_dir: &std::path::Path) {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    let Some(shared) = base.map(|b| b.join("tern").join("plugin-cache")) else {
        return;
    };
    let linked = std::fs::create_dir_all(&shared)
        .and_then(|()| std::fs::create_dir_all(data_dir))
        .and_then(|()| std::os::unix::fs::symlink(&shared, data_dir.join("plugin-cache")));
    if let Err(e) = linked {
        tracing::debug!(cache = %shared.display(), "no shared compile cache: {e}");
    }
}

fn plugin_failures() -> u64 {
    crate::metrics::counter_total("tern_plugin_traps_total")
        + crate::metrics::counter_total("tern_plugin_timeouts_total")
}

/// The hooks in a session's order; stops where a server would stop.
async fn run_session(
    report: &mut TrialReport,
    input: &TrialInput,
    store: &Store,
    mut info: SessionInfo,
    from: &ReversePath,
    recipients: &[Address],
) -> Result<(), TrialError> {
    let plugins = info.plugins.clone();
    let mut run = Runner {
        report,
        plugins: &plugins,
    };
    if run
        .policy(&info, "on-connect", "", plugins.connect(&info))
        .await
        .is_some()
    {
        return Ok(());
    }
    if run
        .policy(
            &info,
            "on-helo",
            &input.helo,
            plugins.helo(&info, &input.helo),
        )
        .await
        .is_some()
    {
        return Ok(());
    }
    info.helo = Some(input.helo.clone());
    let params = MailParams::default();
    let wit_params = bindings::mail_params(&params);
    let from_text = from.to_string();
    if run
        .policy(
            &info,
            "on-mail-from",
            &format!("<{from_text}>"),
            plugins.mail_from(&info, &from_text, &wit_params),
        )
        .await
        .is_some()
    {
        return Ok(());
    }
    let rcpt_params = RcptParams::default();
    let mut accepted = Vec::new();
    let mut last_refusal = None;
    for to in recipients {
        let so_far = super::Envelope {
            from,
            params: &params,
            recipients: accepted
                .iter()
                .map(|a: &Address| EnvelopeRecipient {
                    address: a.to_string(),
                    params: &rcpt_params,
                })
                .collect(),
        };
        let env = bindings::LazyEnvelope::new(&so_far);
        let rcpt = EnvelopeRecipient {
            address: to.to_string(),
            params: &rcpt_params,
        };
        let subject = format!("<{to}>");
        if plugins.has_rewrite() {
            // (A rewriter turned off by its configuration is left out of
            // has_rewrite: nothing to report per recipient.)
            let start = Instant::now();
            let answer = plugins.rewrite(env.get(), &rcpt).await;
            run.record(
                "rewrite-recipient",
                &subject,
                describe_rewrite(&answer),
                start,
            );
            if let Some(RewriteDecision::Reject(r) | RewriteDecision::Tempfail(r)) = answer {
                last_refusal = Some(r);
                continue;
            }
        }
        let verdict = plugins.rcpt_to(&info, &env, &rcpt.address, &rcpt_params);
        if let Some(r) = run.policy(&info, "on-rcpt-to", &subject, verdict).await {
            last_refusal = Some(r);
            continue;
        }
        if !run.report.hooks.contains(&"route") || run.turned_off("route", &subject) {
            accepted.push(to.clone());
            continue;
        }
        let start = Instant::now();
        let (route, tls) = plugins
            .route(&crate::trace::Recorder::off(), env.get(), &rcpt)
            .await;
        let mut answer = match &route {
            None => "default (the built-in router decides)".to_string(),
            Some(d) => format!("{d:?}"),
        };
        if let Some(demand) = tls {
            answer = format!("{answer}; {demand}");
        }
        run.record("route", &subject, answer, start);
        match route {
            Some(super::RouteDecision::Reject(r) | super::RouteDecision::Tempfail(r)) => {
                last_refusal = Some(r)
            }
            _ => accepted.push(to.clone()),
        }
    }
    if accepted.is_empty() {
        run.report.refused = last_refusal;
        return Ok(());
    }
    // Some recipients may have been refused; the message goes on to the rest.
    run.report.refused = None;
    run.report.accepted = accepted.iter().map(|a| format!("<{a}>")).collect();
    if !run.report.hooks.contains(&"on-data") && !run.report.hooks.contains(&"deliver") {
        return Ok(());
    }
    run_data(run.report, store, &info, from, &params, &accepted, input).await
}

/// The data hook over the message, written to the scratch store first
/// (filters read it range by range, as in a server).
async fn run_data(
    report: &mut TrialReport,
    store: &Store,
    info: &SessionInfo,
    from: &ReversePath,
    params: &MailParams,
    accepted: &[Address],
    input: &TrialInput,
) -> Result<(), TrialError> {
    let bytes = crate::mail::lines::to_crlf(&input.message);
    let header_end = find(&bytes, b"\r\n\r\n").map_or(bytes.len(), |p| p + 4);
    let id = store.next_id().await?;
    let mut writer = store.blob_writer(id);
    writer.write(&bytes).await?;
    let rcpt_params = RcptParams::default();
    let envelope = super::Envelope {
        from,
        params,
        recipients: accepted
            .iter()
            .map(|a| EnvelopeRecipient {
                address: a.to_string(),
                params: &rcpt_params,
            })
            .collect(),
    };
    let message = DataMessage {
        blob: id,
        tail: writer.tail(),
        prefix: b"",
        header: &bytes[..header_end],
        auth: None,
        skip: 0,
    };
    let view = MessageView::of(store.clone(), &message, bindings::arrival(info));
    let plugins = info.plugins.clone();
    let discarded = report.hooks.contains(&"on-data")
        && !Runner {
            report,
            plugins: &plugins,
        }
        .turned_off("on-data", "message")
        && data_hook(report, info, &envelope, &view).await;
    if discarded || report.refused.is_some() || !report.hooks.contains(&"deliver") {
        return Ok(());
    }
    let mut run = Runner {
        report,
        plugins: &plugins,
    };
    if run.turned_off("deliver", "every recipient") {
        return Ok(());
    }
    let wit_envelope = bindings::envelope(&envelope);
    for to in accepted {
        let address = to.to_string();
        let account = address.to_ascii_lowercase();
        if let Some(script) = &input.sieve {
            make_active(store, &account, script).await?;
        }
        let start = Instant::now();
        let decision = info
            .plugins
            .deliver(
                &wit_envelope,
                &super::delivery::Account {
                    name: &account,
                    address: &address,
                },
                &view,
            )
            .await;
        run.record(
            "deliver",
            &format!("<{address}>"),
            describe_delivery(decision.as_ref()),
            start,
        );
    }
    Ok(())
}

/// The data hook over the message: its verdict and edits recorded; a
/// refusal ends the run. True: the message was discarded (nothing is
/// delivered, so no delivery hook runs).
async fn data_hook(
    report: &mut TrialReport,
    info: &SessionInfo,
    envelope: &super::Envelope<'_>,
    view: &MessageView,
) -> bool {
    let start = Instant::now();
    let outcome = info
        .plugins
        .data(info, &bindings::envelope(envelope), view)
        .await;
    let mut parts = vec![match &outcome.verdict {
        None => "continue".to_string(),
        Some(v) => describe_verdict(v),
    }];
    if !outcome.add_headers.is_empty() {
        let added = String::from_utf8_lossy(&outcome.add_headers);
        parts.push(format!(
            "add headers: {}",
            added.trim_end().replace("\r\n", " | ")
        ));
    }
    if !outcome.remove_headers.is_empty() {
        parts.push(format!(
            "remove headers: {}",
            outcome.remove_headers.join(", ")
        ));
    }
    if outcome.discard {
        parts.push("discard (250, nothing kept)".into());
    }
    if let Some(q) = &outcome.quarantine {
        parts.push(format!("quarantine: {q}"));
    }
    if let Some(f) = &outcome.local_folder {
        parts.push(format!("local copies to {f}"));
    }
    Runner {
        report,
        plugins: &info.plugins,
    }
    .record("on-data", "message", parts.join("; "), start);
    if let Some(Verdict::Reject(r) | Verdict::Tempfail(r) | Verdict::Disconnect(r)) =
        outcome.verdict
    {
        report.refused = Some(r);
        report.accepted.clear();
    }
    outcome.discard
}

/// The account in the scratch store with `script` as its active Sieve
/// script (a broken script is the input's error, as `tern sieve put`'s).
async fn make_active(store: &Store, account: &str, script: &[u8]) -> Result<(), TrialError> {
    match store.add_user(account, "trial").await {
        Ok(()) | Err(crate::store::StoreError::UserExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let limits = crate::config::SieveConfig::default();
    let sieve = store.sieve();
    sieve
        .put(account, "trial", script, &limits)
        .await
        .map_err(|e| TrialError::Input(format!("--sieve: {e}")))?;
    sieve
        .activate(account, Some("trial"))
        .await
        .map_err(|e| TrialError::Input(format!("--sieve: {e}")))
}

struct Runner<'a> {
    report: &'a mut TrialReport,
    plugins: &'a super::PluginSession,
}

impl Runner<'_> {
    /// Whether the plugin's configuration turned `hook` off (it said so
    /// in an earlier call); if so the report says it and the hook is not
    /// run.
    fn turned_off(&mut self, hook: &'static str, subject: &str) -> bool {
        let off = super::declared::Hook::named(hook).is_some_and(|h| self.plugins.turned_off(h));
        if off {
            self.report.calls.push(Call {
                hook,
                subject: subject.to_string(),
                answer: "not called: the plugin's configuration turns this hook off".into(),
                took: std::time::Duration::ZERO,
            });
        }
        off
    }

    fn record(&mut self, hook: &'static str, subject: &str, answer: String, start: Instant) {
        self.report.calls.push(Call {
            hook,
            subject: subject.to_string(),
            answer,
            took: start.elapsed(),
        });
    }

    /// Runs a policy hook if the plugin has it; Some(reply) when it refused.
    async fn policy(
        &mut self,
        info: &SessionInfo,
        hook: &'static str,
        subject: &str,
        call: impl std::future::Future<Output = Verdict>,
    ) -> Option<Reply> {
        if !self.report.hooks.contains(&hook) || self.turned_off(hook, subject) {
            return None;
        }
        let start = Instant::now();
        let verdict = call.await;
        let mut answer = describe_verdict(&verdict);
        let held =
            super::declared::Hook::named(hook).and_then(|h| self.plugins.remembered(info, h));
        if let Some(hit) = held {
            // Kept since this call started: the call asked for it; before:
            // the plugin was not called.
            answer.push_str(&if hit.at >= start {
                format!(
                    " (the plugin says this holds for this client for {} s)",
                    hit.lasts.as_secs()
                )
            } else {
                " (not called: remembered from an earlier call for this client)".to_string()
            });
        }
        self.record(hook, subject, answer, start);
        match verdict {
            Verdict::Reject(r) | Verdict::Tempfail(r) | Verdict::Disconnect(r) => {
                self.report.refused = Some(r.clone());
                Some(r)
            }
            Verdict::Continue | Verdict::Accept => None,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

//! `tern plugin test`: one plugin's hooks run on a given envelope and
//! message outside a server, the way a session would call them (connect,
//! helo, mail-from, then for each recipient rewrite-recipient, rcpt-to
//! and route for each address it was rewritten to, then data, then
//! deliver for each recipient's account), with a scratch store for its
//! key-value area (and, with `--sieve`, the recipients' active script)
//! and the real resolver, or the canned answers of `--dns FILE`. Each
//! call's answer and time is recorded for the CLI to print; the final
//! verdict says whether a server would have accepted the message. Only
//! what the component implements is called, and a hook the plugin's
//! configuration turned off (`config.skip-hooks`) is reported as not
//! called. The input and the config made from it are in `input.rs`; the
//! end of data (trace fields, filters, delivery) in `data.rs`; the
//! answers in words in `describe.rs`.

mod data;
mod describe;
mod input;

pub use input::{TrialInput, header_addresses};

use super::bindings::{self, EnvelopeRecipient};
use super::engine::PluginSet;
use super::{PluginError, RewriteDecision, SessionInfo, Verdict};
use crate::address::{Address, ReversePath};
use crate::config::{Config, Protocol};
use crate::dns::Dns;
use crate::mail::{MailParams, RcptParams, Reply};
use crate::store::Store;
use data::{Session, run_data, trace_fields};
use describe::{describe_rewrite, describe_verdict};
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
    let dns = match &input.canned_dns {
        Some(answers) => Dns::canned(answers.clone()),
        None => Dns::from_config(&config.dns)?,
    };
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
        // As in a server, the client logs in after EHLO.
        user: None,
        trusted: false,
        plugins,
        trace: crate::trace::Recorder::off(),
    };
    run_session(
        &mut report,
        input,
        &config,
        &store,
        info,
        &from,
        &recipients,
    )
    .await?;
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
    config: &Config,
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
    info.user = input.login.clone();
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
    // The accounts a delivery plugin is asked about: (address, account).
    let mut accounts = Vec::new();
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
        let mut rewritten = None;
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
            match answer {
                Some(RewriteDecision::Reject(r) | RewriteDecision::Tempfail(r)) => {
                    last_refusal = Some(r);
                    continue;
                }
                Some(RewriteDecision::Addresses(list)) => rewritten = Some(list),
                None => {}
            }
        }
        // As in a server: the policy hook is asked about the address the
        // client gave; the router about each address it was rewritten to.
        let verdict = plugins.rcpt_to(&info, &env, &rcpt.address, &rcpt_params);
        if let Some(r) = run.policy(&info, "on-rcpt-to", &subject, verdict).await {
            last_refusal = Some(r);
            continue;
        }
        let routed = rewritten.unwrap_or_else(|| vec![to.clone()]);
        match run.route(&env, to, &routed, &rcpt_params).await {
            Ok(mut these) => {
                accepted.push(to.clone());
                accounts.append(&mut these);
            }
            Err(r) => last_refusal = Some(r),
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
    let prefix = trace_fields(input, config, store, &accepted).await?;
    let session = Session {
        info: &info,
        from,
        params: &params,
        accepted: &accepted,
    };
    run_data(run.report, store, &session, prefix, &accounts, input).await
}

pub(super) struct Runner<'a> {
    pub(super) report: &'a mut TrialReport,
    pub(super) plugins: &'a super::PluginSession,
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

    /// Routes each address recipient `to` goes to (itself, or those it
    /// was rewritten to), as a server does: the accounts a delivery plugin
    /// is then asked about, as (the address the sender used, account),
    /// none for an address relayed elsewhere; or the refusal of the first
    /// address refused.
    async fn route(
        &mut self,
        env: &bindings::LazyEnvelope<'_>,
        to: &Address,
        addresses: &[Address],
        params: &RcptParams,
    ) -> Result<Vec<(String, String)>, Reply> {
        let subject = format!("<{to}>");
        let own = |a: &Address| (to.to_string(), a.to_string().to_ascii_lowercase());
        if !self.report.hooks.contains(&"route") || self.turned_off("route", &subject) {
            return Ok(addresses.iter().map(own).collect());
        }
        let mut accounts = Vec::new();
        for a in addresses {
            let rcpt = EnvelopeRecipient {
                address: a.to_string(),
                params,
            };
            let start = Instant::now();
            let (route, tls) = self
                .plugins
                .route(&crate::trace::Recorder::off(), env.get(), &rcpt)
                .await;
            let mut answer = match &route {
                None => "default (the built-in router decides)".to_string(),
                Some(d) => format!("{d:?}"),
            };
            if let Some(demand) = tls {
                answer = format!("{answer}; {demand}");
            }
            self.record("route", &format!("<{a}>"), answer, start);
            match route {
                Some(super::RouteDecision::Reject(r) | super::RouteDecision::Tempfail(r)) => {
                    return Err(r);
                }
                Some(super::RouteDecision::Local(user)) => accounts.push((to.to_string(), user)),
                Some(super::RouteDecision::Relay(_)) => {}
                None => accounts.push(own(a)),
            }
        }
        Ok(accounts)
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

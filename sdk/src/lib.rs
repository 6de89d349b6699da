//! Write plugins for Tern, the mail server, in Rust.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2`. It
//! implements one or more of the traits [`Policy`], [`Filter`], [`Router`],
//! [`Rewrite`], [`Storage`] and [`Delivery`] and exports them with [`export!`]. Here is a complete
//! plugin that refuses mail to `nobody@` any domain:
//!
//! ```no_run
//! use tern_sdk::{Envelope, Policy, RcptParams, Session, Verdict, log};
//!
//! struct NoNobody;
//!
//! #[tern_sdk::hooks] // tells the server to call on-rcpt-to alone
//! impl Policy for NoNobody {
//!     fn on_rcpt_to(_session: Session, _envelope: Envelope, address: String, _params: RcptParams) -> Verdict {
//!         let local = address.rsplit_once('@').map(|(l, _)| l).unwrap_or(&address);
//!         if local.eq_ignore_ascii_case("nobody") {
//!             log::info(&format!("refusing {address}"));
//!             return Verdict::reject(550, "5.1.1", "nobody lives here");
//!         }
//!         Verdict::Continue
//!     }
//! }
//!
//! tern_sdk::export!(NoNobody: Policy);
//! ```
//!
//! Its `Cargo.toml` needs `crate-type = ["cdylib"]` and a dependency on
//! `tern-sdk`; build it with `cargo build --release --target wasm32-wasip2`
//! and point a `[[plugin]]` entry at `target/wasm32-wasip2/release/NAME.wasm`.
//!
//! Every method of `Policy`, `Filter`, `Router` and `Rewrite` has a default that lets
//! mail through, so a plugin writes only the hooks it cares about (a
//! `Storage` must implement all of its methods but `claims`). The component exports only the
//! interfaces named in [`export!`], and with [`hooks`] on an impl block
//! the server calls only the methods written there (without it, every
//! method of the trait, defaults included). State kept from hook to hook
//! needs no `static`: see [`state`].
//!
//! The host functions are plain Rust functions here: [`log`], [`config`],
//! [`kv`] (a private key-value store kept across restarts), [`dns`],
//! [`clock`], for routers [`routing`] (demand verified TLS), and for
//! policy hooks [`verdicts`] (a verdict the server may reuse for the
//! client without calling the plugin; for filters, the folder for the local
//! copies and the decisions made about the message so far). A plugin instance serves one SMTP session at a time: its
//! memory is kept from hook to hook within the session. After the session
//! the same instance may serve later ones (it is thrown away after a trap
//! or a timeout, and after 1000 sessions), so keep nothing in memory that
//! must not outlive a session; use [`kv`] for what must be kept.
//!
//! The WIT package `tern:plugin@0.1.0` in this crate's `wit/` folder is the
//! interface itself, for plugins in other languages.

extern crate self as tern_sdk;

#[doc(hidden)]
pub mod __bindings;

pub use __bindings::{
    Account, Arrival, AuthOutcome, AuthResults, Client, DeliveryAction, Destination, DkimResult,
    DmarcPolicy, DmarcResult, Envelope, Filing, FilterAction, FilterVerdict, Header, HeaderEdit,
    MailParams, Message, Protocol, RcptParams, Recipient, Reply, Rewritten, Session, SpfResult,
    Stored, TlsInfo, Verdict,
};

#[doc(hidden)]
pub use __bindings::{
    DeliveryExport, FilterExport, PolicyExport, RewriteExport, RouterExport, StorageExport,
};

/// Records which hook methods an `impl Policy for …` (or `Filter`,
/// `Router`, `Rewrite`, `Storage`, `Delivery`) block writes, so the server
/// calls only those: `#[tern_sdk::hooks] impl Policy for MyPlugin { fn
/// on_rcpt_to(…) … }`. The methods' names tell the hooks, so the trait
/// may be written as a path or imported under another name.
/// Without it every method of the trait is called (the defaults let mail
/// through, at the cost of a call per hook).
pub use tern_sdk_macros::hooks;

/// Connection and address policy (interface `tern:plugin/policy`).
pub trait Policy {
    #[doc(hidden)]
    const IMPLEMENTED: &'static [&'static str] =
        &["on-connect", "on-helo", "on-mail-from", "on-rcpt-to"];
    /// A client connected.
    fn on_connect(_client: Client) -> Verdict {
        Verdict::Continue
    }
    /// EHLO/HELO.
    fn on_helo(_session: Session, _name: String) -> Verdict {
        Verdict::Continue
    }
    /// MAIL FROM (`address` is empty for `<>`).
    fn on_mail_from(_session: Session, _address: String, _params: MailParams) -> Verdict {
        Verdict::Continue
    }
    /// RCPT TO, after the built-in recipient checks.
    fn on_rcpt_to(
        _session: Session,
        _envelope: Envelope,
        _address: String,
        _params: RcptParams,
    ) -> Verdict {
        Verdict::Continue
    }
}

/// Content filtering at the end of data (interface `tern:plugin/filter`).
///
/// The [`Message`] reads the message (`size`, `headers`, `header`, `read`)
/// and says how it arrived: [`Message::arrival`] gives an [`Arrival`] with
/// the [`TlsInfo`] (version and cipher) of an encrypted session and the
/// account the client logged in as, e.g. to be stricter with mail that came
/// in clear: `message.arrival().tls.is_none()`.
pub trait Filter {
    #[doc(hidden)]
    const IMPLEMENTED: &'static [&'static str] = &["on-data"];
    fn on_data(_session: Session, _envelope: Envelope, _message: &Message) -> FilterVerdict {
        FilterVerdict {
            action: FilterAction::Continue,
            edits: Vec::new(),
        }
    }
}

/// Routing of each recipient (interface `tern:plugin/router`).
///
/// Within `route`, [`routing::require_verified_tls`] demands that the
/// recipient be delivered only over TLS with a verified certificate,
/// whichever [`Destination`] the plugin answers.
pub trait Router {
    #[doc(hidden)]
    const IMPLEMENTED: &'static [&'static str] = &["route"];
    fn route(_envelope: Envelope, _recipient: Recipient) -> Destination {
        Destination::Default
    }
}

/// Address rewriting (interface `tern:plugin/rewrite`): virtual domains
/// and aliases, asked about each RCPT TO before the built-in recipient
/// checks.
pub trait Rewrite {
    #[doc(hidden)]
    const IMPLEMENTED: &'static [&'static str] = &["rewrite-recipient"];
    /// Where mail for `recipient` goes instead, if anywhere else (WIT
    /// `rewrite-recipient`).
    fn rewrite_recipient(envelope: Envelope, recipient: Recipient) -> Rewritten {
        #[allow(deprecated)]
        Self::rewrite(envelope, recipient)
    }
    /// The old name of [`Rewrite::rewrite_recipient`], still called when a
    /// plugin implements it instead.
    #[deprecated(
        since = "0.1.1",
        note = "implement `rewrite_recipient`, the WIT's name"
    )]
    fn rewrite(_envelope: Envelope, _recipient: Recipient) -> Rewritten {
        Rewritten::Unchanged
    }
}

/// Mailbox storage (interface `tern:plugin/storage`). Implement
/// `deliver`, `list_messages`, `fetch` and `delete` (and `claims`).
pub trait Storage {
    #[doc(hidden)]
    const IMPLEMENTED: &'static [&'static str] =
        &["claims", "deliver", "list-messages", "fetch", "delete"];
    /// Does this plugin keep `mailbox`?
    fn claims(_mailbox: String) -> bool {
        false
    }
    fn deliver(mailbox: String, message: &Message) -> Result<String, String>;
    /// The messages kept for `mailbox` (WIT `list-messages`).
    fn list_messages(mailbox: String) -> Result<Vec<Stored>, String> {
        #[allow(deprecated)]
        Self::list(mailbox)
    }
    /// The old name of [`Storage::list_messages`], still called when a
    /// plugin implements it instead.
    #[deprecated(since = "0.1.1", note = "implement `list_messages`, the WIT's name")]
    fn list(_mailbox: String) -> Result<Vec<Stored>, String> {
        Err("this storage plugin implements neither list_messages nor list".to_string())
    }
    fn fetch(mailbox: String, id: String, offset: u64, len: u32) -> Result<Vec<u8>, String>;
    fn delete(mailbox: String, id: String) -> Result<(), String>;
}

/// Final delivery to a local account (interface `tern:plugin/delivery`):
/// asked once per local account a message goes to, after routing and the
/// filters, before it is stored. Answer the actions for the account's
/// copy — [`DeliveryAction::Keep`] or [`DeliveryAction::Fileinto`] a
/// [`Filing`] (folder, flags), `Discard`, `Redirect`, `Reject`,
/// `Vacation` — or an empty list for no opinion (the copy goes to INBOX).
/// Within `deliver`, [`mailbox`] reads the account's Sieve script and a
/// key-value area of its own, and sends mail through the server's queue.
///
/// ```no_run
/// use tern_sdk::{Account, Delivery, DeliveryAction, Envelope, Filing, Message};
///
/// struct Archive;
///
/// impl Delivery for Archive {
///     fn deliver(_envelope: Envelope, _account: Account, message: &Message) -> Vec<DeliveryAction> {
///         if message.header("list-id").is_empty() {
///             return Vec::new();
///         }
///         vec![DeliveryAction::Fileinto(Filing::folder("Lists"))]
///     }
/// }
/// tern_sdk::export!(Archive: Delivery);
/// ```
pub trait Delivery {
    #[doc(hidden)]
    const IMPLEMENTED: &'static [&'static str] = &["deliver"];
    fn deliver(envelope: Envelope, account: Account, message: &Message) -> Vec<DeliveryAction>;
}

impl Filing {
    /// Into `folder`, no flags, not created when missing.
    pub fn folder(folder: &str) -> Filing {
        Filing {
            folder: folder.to_string(),
            flags: Vec::new(),
            create: false,
        }
    }
    /// With these flags too (`\\Seen`, `$label1`).
    pub fn with_flags(mut self, flags: &[&str]) -> Filing {
        self.flags.extend(flags.iter().map(|f| f.to_string()));
        self
    }
    /// Created when it does not exist.
    pub fn creating(mut self) -> Filing {
        self.create = true;
        self
    }
}

impl Verdict {
    /// A permanent refusal, e.g. `Verdict::reject(550, "5.7.1", "go away")`.
    pub fn reject(code: u16, enhanced: &str, text: &str) -> Verdict {
        Verdict::Reject(Reply::new(code, enhanced, text))
    }
    /// A temporary refusal, e.g. `Verdict::tempfail(451, "4.7.1", "try later")`.
    pub fn tempfail(code: u16, enhanced: &str, text: &str) -> Verdict {
        Verdict::Tempfail(Reply::new(code, enhanced, text))
    }
}

impl Reply {
    pub fn new(code: u16, enhanced: &str, text: &str) -> Reply {
        Reply {
            code,
            enhanced: enhanced.to_string(),
            text: text.to_string(),
        }
    }
}

impl FilterVerdict {
    /// No opinion, no edits.
    pub fn pass() -> FilterVerdict {
        FilterVerdict {
            action: FilterAction::Continue,
            edits: Vec::new(),
        }
    }
    /// Adds a header field (the verdict stays as it is).
    pub fn add_header(mut self, name: &str, value: &str) -> FilterVerdict {
        self.edits.push(HeaderEdit::Add(Header {
            name: name.to_string(),
            value: value.to_string(),
        }));
        self
    }
    /// Removes every field of this name.
    pub fn remove_header(mut self, name: &str) -> FilterVerdict {
        self.edits.push(HeaderEdit::Remove(name.to_string()));
        self
    }
}

/// The server log, tagged with the plugin's name.
pub mod log {
    use crate::__bindings::log::{Level, log};

    pub fn trace(message: &str) {
        log(Level::Trace, message)
    }
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// The plugin's `config` table.
pub mod config {
    /// One value.
    pub fn get(key: &str) -> Option<String> {
        crate::__bindings::config::get(key)
    }
    /// Every key and value, sorted by key.
    pub fn all() -> Vec<(String, String)> {
        crate::__bindings::config::all()
    }
    /// Tells the server which of this plugin's hooks have nothing to do
    /// as it is configured (WIT names: `"on-connect"`, `"on-rcpt-to"`,
    /// `"on-data"`…), so it stops calling them for this plugin until a
    /// reload: a DNSBL that refuses at connect need not be called at every
    /// RCPT TO. Call it where the configuration is first read; the hook
    /// running at the time finishes as usual.
    pub fn skip_hooks(hooks: &[&str]) {
        let hooks: Vec<String> = hooks.iter().map(|h| h.to_string()).collect();
        crate::__bindings::config::skip_hooks(&hooks)
    }
}

/// The plugin's private key-value store, kept on disk across restarts.
pub mod kv {
    use crate::__bindings::kv as host;

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
        host::get(key)
    }
    /// Sets `key`, expiring after `ttl_seconds` when given.
    pub fn set(key: &str, value: &[u8], ttl_seconds: Option<u64>) -> Result<(), String> {
        host::set(key, value, ttl_seconds)
    }
    pub fn delete(key: &str) -> Result<bool, String> {
        host::delete(key)
    }
    /// Adds `delta` to a counter and returns the new value.
    pub fn increment(key: &str, delta: i64, ttl_seconds: Option<u64>) -> Result<i64, String> {
        host::increment(key, delta, ttl_seconds)
    }
}

/// DNS look-ups through the server's resolver.
pub mod dns {
    use crate::__bindings::dns as host;
    pub use crate::__bindings::dns::{DnsError, MxRecord};

    pub fn a(name: &str) -> Result<Vec<String>, DnsError> {
        host::a(name)
    }
    pub fn aaaa(name: &str) -> Result<Vec<String>, DnsError> {
        host::aaaa(name)
    }
    pub fn txt(name: &str) -> Result<Vec<String>, DnsError> {
        host::txt(name)
    }
    pub fn mx(name: &str) -> Result<Vec<MxRecord>, DnsError> {
        host::mx(name)
    }
}

/// Outgoing TCP, for plugins whose `[[plugin]]` entry grants `connect =
/// ["host:port", …]` (rspamd, clamd, an HTTP service). Names resolve
/// through the server's resolver ([`dns`]); the server refuses any
/// address its grants do not cover, and the hook's timeout covers the I/O.
pub mod net {
    use std::io;
    use std::net::{IpAddr, SocketAddr, TcpStream};

    /// Connects to `host` (a name or an address) on `port`, trying each
    /// address the server's resolver gives in turn.
    pub fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let mut ips = Vec::new();
                for found in [crate::dns::a(host), crate::dns::aaaa(host)] {
                    ips.extend(
                        found
                            .unwrap_or_default()
                            .iter()
                            .filter_map(|a| a.parse::<IpAddr>().ok()),
                    );
                }
                ips
            }
        };
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
        for ip in addrs {
            match TcpStream::connect(SocketAddr::new(ip, port)) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// Demands a router makes of the delivery of the recipient it is routing.
pub mod routing {
    /// Call from [`Router::route`](crate::Router::route): deliver this
    /// recipient only over TLS whose certificate is verified (the system's
    /// trust anchors or the server's `relay.tls_ca`, for the next hop's
    /// name; or DANE) — never in clear, never unverified. Hops that cannot
    /// are a temporary failure; the message stays queued and bounces with
    /// the reason when it expires. `name` pins the name the certificate
    /// must be valid for (hosts given as addresses, a smarthost known by
    /// another name); `None` checks each hop's own name. The demand holds
    /// whatever `route` returns, [`Destination::Default`](crate::Destination::Default)
    /// included (the built-in route then picks the hosts):
    ///
    /// ```no_run
    /// use tern_sdk::{Destination, Envelope, Recipient, Router, routing};
    ///
    /// struct Bank;
    ///
    /// #[tern_sdk::hooks]
    /// impl Router for Bank {
    ///     fn route(_envelope: Envelope, recipient: Recipient) -> Destination {
    ///         if recipient.address.ends_with("@bank.example") {
    ///             routing::require_verified_tls(None);
    ///         }
    ///         Destination::Default
    ///     }
    /// }
    /// # tern_sdk::export!(Bank: Router);
    /// ```
    pub fn require_verified_tls(name: Option<&str>) {
        crate::__bindings::routing::require_verified_tls(name)
    }
}

/// Verdicts the server may reuse for a client without calling the plugin,
/// the folder a filter chooses for the local copies, and the decisions
/// made about the message so far.
pub mod verdicts {
    /// Call from a policy hook ([`Policy`](crate::Policy)'s `on-connect`,
    /// `on-helo`, `on-mail-from` or `on-rcpt-to`) when the verdict it is
    /// about to return depends on nothing but the client's address: for
    /// the next `seconds` seconds (at most a day) the server gives that
    /// verdict again at this hook to sessions from the same address on the
    /// same listener without calling the plugin, and its trace says the
    /// verdict was remembered. Like postscreen's cache of clients that
    /// passed: a DNSBL that found the client on no list, a greylist whose
    /// allow-list holds the client. Authenticated sessions are always
    /// called; a reload of the plugin forgets what was remembered.
    ///
    /// ```no_run
    /// use tern_sdk::{Client, Policy, Verdict, verdicts};
    ///
    /// struct Office;
    ///
    /// #[tern_sdk::hooks]
    /// impl Policy for Office {
    ///     fn on_connect(client: Client) -> Verdict {
    ///         if client.address.starts_with("192.0.2.") {
    ///             verdicts::same_for_client(3600);
    ///         }
    ///         Verdict::Continue
    ///     }
    /// }
    /// # tern_sdk::export!(Office: Policy);
    /// ```
    pub fn same_for_client(seconds: u32) {
        crate::__bindings::verdicts::same_for_client(seconds)
    }

    /// One decision recorded about the message so far ([`so_far`]).
    pub use crate::__bindings::verdicts::Decision;

    /// Call from [`Filter`](crate::Filter)'s `on_data`: once the message is
    /// accepted, its local copies go to `folder` (`"Junk"` for spam)
    /// instead of INBOX, while relayed copies go out as usual (unlike
    /// [`FilterAction::Quarantine`](crate::FilterAction::Quarantine), which
    /// relays nothing). The first filter that asks decides; the folder is
    /// created for an account that lacks it. Called before answering
    /// `Quarantine`, it names the quarantine's folder instead of Junk. It
    /// holds even when `on_data` then returns a pass, and is recorded in
    /// the message's trace.
    ///
    /// ```no_run
    /// use tern_sdk::{Envelope, Filter, FilterVerdict, Message, Session, verdicts};
    ///
    /// struct Tagger;
    ///
    /// #[tern_sdk::hooks]
    /// impl Filter for Tagger {
    ///     fn on_data(_s: Session, _e: Envelope, message: &Message) -> FilterVerdict {
    ///         if message.header("Subject").iter().any(|s| s.contains("lottery")) {
    ///             verdicts::local_folder("Junk");
    ///             return FilterVerdict::pass().add_header("X-Spam", "Yes");
    ///         }
    ///         FilterVerdict::pass()
    ///     }
    /// }
    /// # tern_sdk::export!(Tagger: Filter);
    /// ```
    pub fn local_folder(folder: &str) {
        crate::__bindings::verdicts::local_folder(folder)
    }

    /// Call from [`Filter`](crate::Filter)'s `on_data`: the decisions
    /// recorded about this message so far, in order — the session's
    /// connect and HELO, the MAIL and RCPT decisions, SPF/DKIM/DMARC, the
    /// earlier filters — as `tern trace` shows them, without timings and
    /// without what plugins keep to themselves (their `detail`). Empty
    /// outside `on_data`.
    pub fn so_far() -> Vec<Decision> {
        crate::__bindings::verdicts::so_far()
    }
}

pub mod mailbox;

pub mod state;

mod export;
#[doc(hidden)]
pub use export::{__hooks_bytes, __hooks_len};

/// Wall-clock time.
pub mod clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms() -> u64 {
        crate::__bindings::clock::now_ms()
    }
}

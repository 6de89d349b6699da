//! Real TLS peers for the outbound TLS suites (smarthost, MTA-STS,
//! REQUIRETLS, TLS-RPT): a test CA made with rcgen
//! (good, expired, wrong-name and self-signed certificates), an SMTP next
//! hop with real TLS that logs every line it is sent
//! (`fixtures/tls_smtp.py`: STARTTLS, implicit TLS, or a man in the middle
//! stripping STARTTLS), and an HTTPS server for MTA-STS policy files
//! (`fixtures/https_files.py`). Every process is killed when its guard drops.

use super::{Tern, python, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tern::testing::peers::{fixture, start_python_peer};
use tern::testing::reaper::Watched;

/// A certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A private CA in a temporary folder.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    pub dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Tern test CA");
        let key = rcgen::KeyPair::generate().expect("ca key");
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).expect("ca cert");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), issuer.pem()).expect("ca.pem");
        TestCa { issuer, dir }
    }

    /// The CA certificate (PEM), to trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn write(&self, label: &str, cert: String, key: &rcgen::KeyPair) -> CertFiles {
        let files = CertFiles {
            cert: self.dir.path().join(format!("{label}.crt")),
            key: self.dir.path().join(format!("{label}.key")),
        };
        std::fs::write(&files.cert, cert).expect("cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("key");
        files
    }

    fn params(names: &[&str]) -> rcgen::CertificateParams {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        rcgen::CertificateParams::new(names).expect("params")
    }

    /// A certificate for `names`, valid now, signed by this CA.
    pub fn issue(&self, label: &str, names: &[&str]) -> CertFiles {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = Self::params(names)
            .signed_by(&key, &self.issuer)
            .expect("sign");
        self.write(label, cert.pem(), &key)
    }

    /// A certificate for `names` signed by this CA that expired in 2021.
    pub fn issue_expired(&self, label: &str, names: &[&str]) -> CertFiles {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = Self::params(names);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        self.write(label, cert.pem(), &key)
    }

    /// A certificate for `names` signed by this CA, valid from 2020 until
    /// `days` days from now.
    pub fn issue_for_days(&self, label: &str, names: &[&str], days: i64) -> CertFiles {
        use chrono::Datelike as _;
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = Self::params(names);
        let until = chrono::Utc::now() + chrono::Duration::days(days);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after =
            rcgen::date_time_ymd(until.year(), until.month() as u8, until.day() as u8);
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        self.write(label, cert.pem(), &key)
    }

    /// A self-signed certificate for `names` (no CA vouches for it).
    pub fn self_signed(&self, label: &str, names: &[&str]) -> CertFiles {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = Self::params(names).self_signed(&key).expect("self-sign");
        self.write(label, cert.pem(), &key)
    }
}

/// Runs a fixture that writes its port to a file once ready.
fn spawn(script: &str, args: &[&str], dir: &Path, env: &[(&str, String)]) -> (Watched, u16) {
    let port_file = dir.join("port");
    let mut cmd = Command::new("python3");
    cmd.arg(fixture(script))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .arg(&port_file);
    start_python_peer(cmd, &port_file, script)
}

/// An SMTP next hop with real TLS (see `fixtures/tls_smtp.py`).
pub struct SmtpPeer {
    child: Watched,
    pub port: u16,
    pub out: tempfile::TempDir,
}

impl SmtpPeer {
    /// `mode`: "starttls" or "implicit".
    pub fn start(mode: &str, cert: &CertFiles) -> SmtpPeer {
        SmtpPeer::launch(mode, cert, None, &[])
    }

    /// Like `start`, presenting `other` to clients that ask for `name` (SNI).
    pub fn start_with_sni(mode: &str, cert: &CertFiles, name: &str, other: &CertFiles) -> SmtpPeer {
        let sni = format!("{name}={},{}", other.cert.display(), other.key.display());
        SmtpPeer::launch(mode, cert, None, &[("TLS_SMTP_SNI", sni)])
    }

    /// A man in the middle in front of `upstream` that hides STARTTLS.
    pub fn stripping(upstream: &SmtpPeer, cert: &CertFiles) -> SmtpPeer {
        SmtpPeer::launch("strip", cert, Some(upstream.port), &[])
    }

    fn launch(
        mode: &str,
        cert: &CertFiles,
        upstream: Option<u16>,
        env: &[(&str, String)],
    ) -> SmtpPeer {
        let out = tempfile::tempdir().expect("tempdir");
        let (c, k) = (cert.cert.to_string_lossy(), cert.key.to_string_lossy());
        let out_path = out.path().to_string_lossy().into_owned();
        let upstream = upstream.map(|p| p.to_string());
        // `spawn` appends the port file: MODE CERT KEY OUT_DIR [UPSTREAM] PORT_FILE.
        let mut args = vec![mode, &c, &k, &out_path];
        if let Some(u) = upstream.as_deref() {
            args.push(u);
        }
        let (child, port) = spawn("tls_smtp.py", &args, out.path(), env);
        SmtpPeer { child, port, out }
    }

    /// Every line the peer was sent ("-- TLS" where TLS started).
    pub fn commands(&self) -> String {
        std::fs::read_to_string(self.out.path().join("commands.log")).unwrap_or_default()
    }

    /// The messages it accepted.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.out.path())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }
}

/// An HTTPS server answering from a routes file (see `fixtures/https_files.py`).
pub struct HttpsServer {
    child: Watched,
    pub port: u16,
    routes: PathBuf,
    _dir: tempfile::TempDir,
}

impl HttpsServer {
    pub fn start(cert: &CertFiles, routes: &serde_json::Value) -> HttpsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("routes.json");
        std::fs::write(&path, routes.to_string()).expect("routes");
        let (c, k, r) = (
            cert.cert.to_string_lossy(),
            cert.key.to_string_lossy(),
            path.to_string_lossy().into_owned(),
        );
        let (child, port) = spawn("https_files.py", &[&c, &k, &r], dir.path(), &[]);
        HttpsServer {
            child,
            port,
            routes: path,
            _dir: dir,
        }
    }

    pub fn set_routes(&self, routes: &serde_json::Value) {
        std::fs::write(&self.routes, routes.to_string()).expect("routes");
    }

    /// The bodies POSTed so far, in order.
    pub fn posts(&self) -> Vec<PathBuf> {
        (1..)
            .map(|n| {
                let mut p = self.routes.clone().into_os_string();
                p.push(format!(".post.{n}"));
                PathBuf::from(p)
            })
            .take_while(|p| p.exists())
            .collect()
    }

    /// The requests served so far, as "host/path" lines.
    pub fn requests(&self) -> String {
        let mut log = self.routes.clone().into_os_string();
        log.push(".log");
        std::fs::read_to_string(log).unwrap_or_default()
    }
}

/// Hands Tern (on 127.0.0.2, the client trusted) one message for `rcpt`
/// with `headers` (lines ending in CRLF). `requiretls`: over STARTTLS with
/// `MAIL FROM … REQUIRETLS`, after checking that REQUIRETLS is announced
/// only after STARTTLS and refused before it (RFC 8689).
pub fn send(tern: &Tern, rcpt: &str, headers: &str, requiretls: bool) {
    let out = python(
        &format!(
            r#"
import smtplib, ssl, sys
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
rcpt, headers = sys.argv[1], sys.argv[2].encode()
s = smtplib.SMTP("127.0.0.2", {port})
s.ehlo()
options = []
if {requiretls}:
    assert not s.has_extn("requiretls"), s.esmtp_features
    code, text = s.mail("lisa@a.test", ["REQUIRETLS"])
    assert (code, text[:6]) == (530, b"5.7.10"), (code, text)
    s.starttls(context=CTX)
    s.ehlo()
    assert s.has_extn("requiretls"), s.esmtp_features
    options = ["REQUIRETLS"]
assert s.mail("lisa@a.test", options)[0] == 250
assert s.rcpt(rcpt)[0] == 250
msg = b"From: lisa@a.test\r\nTo: " + rcpt.encode() + b"\r\n" + headers + b"\r\nhello\r\n"
assert s.data(msg)[0] == 250
s.quit()
print("sent")
"#,
            port = tern.port("smtp"),
            requiretls = if requiretls { "True" } else { "False" },
        ),
        &[rcpt, headers],
    );
    assert_eq!(out.trim(), "sent");
}

/// `tern queue show` of the first entry, once the listing shows `rcpt`
/// deferred for `reason`.
pub fn deferred_with(tern: &Tern, rcpt: &str, reason: &str) -> String {
    let listing = wait_for("the deferral in the queue", Duration::from_secs(60), || {
        let l = tern.queue_list();
        (l.contains(rcpt) && l.contains(reason)).then_some(l)
    });
    let id = listing
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    let show = tern.cli(&["queue", "show", &id], "");
    String::from_utf8_lossy(&show.stdout).into_owned()
}

/// Waits until `peer` has accepted `n` messages.
pub fn delivered(peer: &SmtpPeer, n: usize) {
    wait_for(
        "the next hop to take the message",
        Duration::from_secs(60),
        || (peer.messages().len() >= n).then_some(()),
    );
}

/// Waits until `peer` has the message, and checks that it came over TLS
/// with `MAIL FROM … REQUIRETLS` (RFC 8689: the parameter is passed on).
pub fn delivered_under_requiretls(peer: &SmtpPeer) {
    delivered(peer, 1);
    let commands = peer.commands();
    let mail = commands
        .lines()
        .find(|l| l.starts_with("MAIL FROM"))
        .expect("MAIL FROM");
    assert!(mail.ends_with(" REQUIRETLS"), "{commands}");
    assert!(commands.find("-- TLS") < commands.find("MAIL FROM"));
}

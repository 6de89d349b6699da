//! Entry points for the fuzz targets (`fuzz/`, cargo-fuzz) and for the
//! corpus replay test (`tests/fuzz_corpus.rs`): one function per parser
//! that reads outside input, each taking raw bytes, running the parser and
//! checking what must hold whatever the input (no panic, and the
//! properties named in each function). A violated property panics, which
//! libFuzzer reports as a crash. Nothing here is used by the server.

use crate::address::Address;
use crate::hooks::bindings::{self, ReplyKind, wit};
use crate::mail::xtext::{xtext_decode, xtext_encode};
use crate::smtp::body::{ChunkDecoder, DataDecoder, HeaderCollector};
use crate::smtp::command::{self, Command};
use crate::store::{QueueEntry, QueueRecipient, RecipientState};
use std::path::Path;

/// A fuzz target: raw input in, a panic when a property fails.
pub type Target = fn(&[u8]);

/// Every target by name (the names of `fuzz/fuzz_targets/*.rs` and of the
/// folders under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("smtp_command", smtp_command),
    ("address", address),
    ("data_reader", data_reader),
    ("pop3_command", pop3_command),
    ("sasl", sasl),
    ("dsn", dsn),
    ("header", header),
    ("config", config),
    ("plugin_reply", plugin_reply),
    ("next_hop_reply", next_hop_reply),
    ("sieve_script", sieve_script),
    ("managesieve_command", managesieve_command),
];

/// Splits fuzz input into `n` text fields at NUL bytes (missing ones empty).
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = data
        .splitn(n, |&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    out.resize(n, String::new());
    out
}

/// Does `bytes` contain a CR or LF that is not part of a CRLF pair?
fn has_bare_line_end(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || bytes[i - 1] != b'\r',
        _ => false,
    })
}

/// An SMTP command line: parses or gives a reply; MAIL/RCPT addresses
/// survive rendering and parsing again; xtext round-trips.
pub fn smtp_command(data: &[u8]) {
    for utf8 in [false, true] {
        match command::parse_command(data, utf8) {
            Ok(Command::Mail { from, params }) => {
                if let crate::address::ReversePath::Mailbox(a) = &from {
                    check_address_round_trip(a, true);
                }
                if let Some(envid) = &params.envid {
                    let again = xtext_decode(&xtext_encode(envid));
                    assert_eq!(again.as_deref(), Some(envid.as_str()));
                }
            }
            Ok(Command::Rcpt { to, params }) => {
                if let command::ForwardPath::Mailbox(a) = &to {
                    check_address_round_trip(a, true);
                }
                if let Some((_, addr)) = &params.orcpt {
                    let again = xtext_decode(&xtext_encode(addr));
                    assert_eq!(again.as_deref(), Some(addr.as_str()));
                }
            }
            Ok(_) => {}
            Err(e) => {
                let wire = e.reply().to_wire();
                assert!(
                    !has_bare_line_end(&wire),
                    "error reply with a bare line end"
                );
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let again = xtext_decode(&xtext_encode(text));
        assert_eq!(again.as_deref(), Some(text));
    }
}

fn check_address_round_trip(a: &Address, utf8: bool) {
    let shown = a.to_string();
    let again = Address::parse(&shown, utf8)
        .unwrap_or_else(|e| panic!("{shown:?} (from {a:?}) does not parse again: {e}"));
    assert_eq!(&again, a, "{shown:?} parses to something else");
}

/// An address between angle brackets: parses or gives an error; a parsed
/// one renders to text that parses to the same address, never with a line
/// end or NUL in it.
pub fn address(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for utf8 in [false, true] {
        if let Ok(a) = Address::parse(text, utf8) {
            assert!(
                utf8 || !a.needs_smtputf8(),
                "UTF-8 address without SMTPUTF8"
            );
            let shown = a.to_string();
            assert!(
                !shown.contains(['\r', '\n', '\0']),
                "control character in {shown:?}"
            );
            check_address_round_trip(&a, utf8);
            let _ = a.to_lowercase_key();
            let _ = a.is_fqdn();
        }
    }
}

/// The DATA and BDAT readers: the same output and end of data however the
/// input is split into reads; never a bare CR or LF in the output; the end
/// is found only after `<CRLF>.<CRLF>`.
pub fn data_reader(data: &[u8]) {
    let Some((&cuts, input)) = data.split_first() else {
        return;
    };
    let whole = {
        let mut d = DataDecoder::default();
        let mut out = Vec::new();
        let end = d.feed(input, &mut out);
        (out, end)
    };
    // Split into pieces whose lengths come from the first byte.
    let step = usize::from(cuts % 7) + 1;
    let mut d = DataDecoder::default();
    let mut out = Vec::new();
    let mut end = None;
    let mut pos = 0;
    while pos < input.len() {
        let piece = &input[pos..(pos + step).min(input.len())];
        if let Some(n) = d.feed(piece, &mut out) {
            end = Some(pos + n);
            break;
        }
        pos += piece.len();
    }
    assert_eq!((&out, end), (&whole.0, whole.1), "split reads disagree");
    assert!(!has_bare_line_end(&out), "bare line end in DATA output");
    if let Some(n) = end {
        // The end of data is CRLF.CRLF: at the start, or after a line end.
        let consumed = &input[..n];
        assert!(consumed.ends_with(b".\r\n"));
        assert!(n == 3 || consumed[..n - 3].ends_with(b"\r\n"));
    }

    let mut whole_chunk = Vec::new();
    let mut c = ChunkDecoder::default();
    c.feed(input, &mut whole_chunk);
    c.finish(&mut whole_chunk);
    let mut split_chunk = Vec::new();
    let mut c = ChunkDecoder::default();
    for piece in input.chunks(step) {
        c.feed(piece, &mut split_chunk);
    }
    c.finish(&mut split_chunk);
    assert_eq!(whole_chunk, split_chunk, "BDAT chunk splits disagree");
    assert!(
        !has_bare_line_end(&whole_chunk),
        "bare line end in BDAT output"
    );
}

/// A POP3 command line: parses or gives an error, never panics; message
/// numbers are positive.
pub fn pop3_command(data: &[u8]) {
    use crate::pop3::command::{Command as Pop3, parse};
    match parse(data) {
        Ok(Pop3::Retr(n) | Pop3::Dele(n) | Pop3::List(Some(n)) | Pop3::Uidl(Some(n))) => {
            assert!(n > 0)
        }
        Ok(Pop3::Top(n, _)) => assert!(n > 0),
        _ => {}
    }
}

/// A ManageSieve command as a client sends it (lines, literals after a
/// `{N+}`): framing and parsing never panic, and every string the server
/// would send quoted reads back as the same bytes.
pub fn managesieve_command(data: &[u8]) {
    use crate::managesieve::command::parse;
    use crate::managesieve::wire::{Token, string, tokenize};
    let mut tokens = Vec::new();
    let mut rest = data;
    loop {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(p) => (&rest[..p], &rest[p + 1..]),
            None => (rest, &[][..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match tokenize(line, &mut tokens) {
            Err(_) => return,
            Ok(None) => break,
            Ok(Some(n)) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX).min(after.len());
                tokens.push(Token::Str(after[..n].to_vec()));
                rest = &after[n..];
            }
        }
    }
    let _ = parse(&tokens);
    for t in &tokens {
        if let Token::Str(s) = t {
            let rendered = string(s);
            if rendered.first() == Some(&b'"') {
                let mut again = Vec::new();
                assert_eq!(tokenize(&rendered, &mut again), Ok(None));
                assert_eq!(again, vec![Token::Str(s.clone())]);
            }
        }
    }
}

/// SASL responses (PLAIN and LOGIN steps, base64 from the client).
pub fn sasl(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok((authz, authc, pass)) = crate::auth::decode_plain(&text) {
        assert!(!authz.contains('\0') && !authc.contains('\0') && !pass.contains('\0'));
        let joined = format!("{authz}\0{authc}\0{pass}");
        let again = crate::auth::decode_plain(&crate::auth::encode_b64(&joined));
        assert_eq!(again, Ok((authz, authc, pass)));
    }
    if let Ok(t) = crate::auth::decode_b64_text(&text) {
        let again = crate::auth::decode_b64_text(&crate::auth::encode_b64(&t));
        assert_eq!(again.as_deref(), Ok(t.as_str()));
    }
    // Raw bytes as a PLAIN payload: split at NULs like the decoder does.
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data);
    let _ = crate::auth::decode_plain(&encoded);
}

/// A delivery status notification built from what senders and next hops
/// gave us (envelope id, recipients, ORCPT, the next hop's error text and
/// the original message): every line ends in CRLF, and nothing they gave
/// adds a line or a MIME boundary to the report.
pub fn dsn(data: &[u8]) {
    use crate::queue::dsn::{DsnKind, build};
    let f = fields(data, 7);
    let kind = match f[0].bytes().next().unwrap_or(0) % 4 {
        0 => DsnKind::Failed,
        1 => DsnKind::Delayed,
        2 => DsnKind::Delivered,
        _ => DsnKind::Relayed,
    };
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let recipient = QueueRecipient {
        address: f[2].clone(),
        notify: None,
        orcpt: some(&f[3]),
        state: RecipientState::Failed,
        attempts: 1,
        next_attempt: 0,
        last_error: some(&f[4]),
        local_users: Vec::new(),
        status: Some("5.1.1".into()),
        remote_mta: some(&f[5]),
        route: Vec::new(),
        tls_policy: None,
        verified_tls: None,
    };
    let entry = QueueEntry {
        id: 1,
        blob: 1,
        size: 0,
        sender: "sender@example.test".into(),
        envid: some(&f[1]),
        ret: None,
        smtputf8: true,
        eight_bit: true,
        arrived: 0,
        client: "client [192.0.2.1]".into(),
        recipients: vec![recipient.clone()],
        warned: false,
        require_tls: false,
        node: None,
    };
    let original = f[6].as_bytes();
    let out = build("mx.example.test", &entry, &[&recipient], kind, original);
    // Our own part: everything before the original (or its header section),
    // which is appended as it is, perhaps with a final CRLF.
    let appended = if kind == DsnKind::Failed {
        original
    } else {
        crate::queue::dsn::header_section(original)
    };
    let text = String::from_utf8_lossy(&out);
    let boundary = text
        .split_once("boundary=\"")
        .and_then(|(_, b)| b.split_once('"'))
        .map(|(b, _)| b.to_string())
        .expect("a boundary parameter");
    let closing = format!("\r\n--{boundary}--\r\n");
    assert!(
        out.ends_with(closing.as_bytes()),
        "no closing boundary at the end"
    );
    let mut ours_len = out.len() - closing.len();
    if !appended.ends_with(b"\r\n") && out[..ours_len].ends_with(b"\r\n") {
        ours_len -= 2;
    }
    assert!(
        out[..ours_len].ends_with(appended),
        "the original is not at the end"
    );
    ours_len -= appended.len();
    let ours = &out[..ours_len];
    assert!(
        !has_bare_line_end(ours),
        "bare line end in the DSN's own parts"
    );
    let text = String::from_utf8_lossy(ours);
    let boundary_lines = text.lines().filter(|l| l.starts_with("--")).count();
    assert_eq!(
        boundary_lines, 3,
        "a field added a MIME boundary line:\n{text}"
    );
}

/// The header section of an incoming message: the same however the body
/// arrives in pieces; `Authentication-Results` fields found for renaming
/// really are such fields at the start of a line; mail-parser (used for
/// DKIM signing's From:) copes with it.
pub fn header(data: &[u8]) {
    let Some((&cuts, input)) = data.split_first() else {
        return;
    };
    let mut whole = HeaderCollector::default();
    whole.push(input);
    let mut split = HeaderCollector::default();
    for piece in input.chunks(usize::from(cuts % 13) + 1) {
        split.push(piece);
    }
    assert_eq!(
        whole.header(),
        split.header(),
        "split header sections disagree"
    );
    let header = whole.header();
    assert!(input.starts_with(header));
    for name in ["Message-ID", "Date", "From"] {
        let _ = whole.has_header(name);
    }
    for offset in crate::mailauth::forged_results(header, "mx.example.test") {
        assert!(offset == 0 || header[..offset].ends_with(b"\r\n"));
        assert!(header[offset..].len() >= 23);
        assert!(header[offset..offset + 23].eq_ignore_ascii_case(b"authentication-results:"));
    }
    let _ = mail_parser::MessageParser::default()
        .parse_headers(header)
        .map(|m| {
            m.from()
                .map(|f| f.first().map(|a| a.address().map(str::len)))
        });
}

/// The configuration file: loads or gives an error, never panics.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::config::Config::from_toml(text, Path::new("/nonexistent"));
    let _ = crate::config::ByteSize::parse(text);
    let _ = crate::config::ConfigDuration::parse(text);
}

/// Whatever a plugin answers: the reply that reaches the client is one
/// printable line with a code of the class the verdict stands for and a
/// matching enhanced code; header edits add whole header lines only.
pub fn plugin_reply(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let f = fields(rest, 5);
    let code_bytes = f[0].as_bytes();
    let code = u16::from_le_bytes([
        code_bytes.first().copied().unwrap_or(0),
        code_bytes.get(1).copied().unwrap_or(0),
    ]);
    let reply = wit::Reply {
        code,
        enhanced: f[1].clone(),
        text: f[2].clone(),
    };
    for kind in [
        ReplyKind::Reject,
        ReplyKind::Tempfail,
        ReplyKind::Disconnect,
    ] {
        let r = bindings::checked_reply("fuzz", &reply, kind);
        let class = r.code / 100;
        match kind {
            ReplyKind::Reject => assert_eq!(class, 5),
            ReplyKind::Tempfail => assert_eq!(class, 4),
            ReplyKind::Disconnect => assert!(class == 4 || class == 5),
        }
        let enhanced = r.enhanced.as_deref().unwrap_or("");
        assert!(enhanced.starts_with(&format!("{class}.")), "{r:?}");
        let wire = r.to_wire();
        assert!(wire.ends_with(b"\r\n"));
        let line = &wire[..wire.len() - 2];
        assert!(
            line.iter().all(|&b| (32..127).contains(&b)),
            "unprintable reply {wire:?}"
        );
    }
    let verdict = match head % 5 {
        0 => wit::Verdict::Continue,
        1 => wit::Verdict::Accept,
        2 => wit::Verdict::Reject(reply.clone()),
        3 => wit::Verdict::Tempfail(reply.clone()),
        _ => wit::Verdict::Disconnect(reply.clone()),
    };
    let _ = bindings::verdict("fuzz", &verdict);
    let edits = [
        wit::HeaderEdit::Add(wit::Header {
            name: f[3].clone(),
            value: f[4].clone(),
        }),
        wit::HeaderEdit::Remove(f[3].clone()),
    ];
    let added = crate::hooks::edits::header_lines_of(&edits);
    if !added.is_empty() {
        assert!(added.ends_with(b"\r\n"));
        assert!(!has_bare_line_end(&added), "bare line end in {added:?}");
        assert!(!added.contains(&0));
        // One field: every line after the first is a continuation.
        for (i, line) in added[..added.len() - 2].split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                assert!(matches!(line.first(), Some(b' ' | b'\t')), "{added:?}");
            }
        }
    }
}

/// A next hop's replies, as the outbound client reads them: each reply is
/// parsed or refused; a parsed one has a code in 200..600 and a valid
/// enhanced code, if any.
pub fn next_hop_reply(data: &[u8]) {
    use tokio::io::AsyncWriteExt;
    thread_local! {
        static RUNTIME: Option<tokio::runtime::Runtime> = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .ok();
    }
    RUNTIME.with(|runtime| {
        let Some(runtime) = runtime else { return };
        runtime.block_on(async {
            let (ours, mut theirs) = tokio::io::duplex(data.len() + 1);
            let _ = theirs.write_all(data).await;
            drop(theirs);
            let mut wire = crate::outbound::wire::Wire::new(Box::new(ours));
            while let Ok(r) = wire.reply(std::time::Duration::from_secs(5)).await {
                assert!((200..600).contains(&r.code));
                if let Some(e) = &r.enhanced {
                    assert!(matches!(e.as_bytes().first(), Some(b'2' | b'4' | b'5')));
                }
                assert!(!r.lines.is_empty());
            }
        })
    });
}

/// A Sieve script, then after a NUL a message: compiling never panics and
/// names a position inside the script; a run ends (step limit) and a
/// failed run leaves only the implicit keep.
pub fn sieve_script(data: &[u8]) {
    let f = fields(data, 2);
    let (script, message) = (&f[0], f[1].as_bytes());
    match tern_sieve::compile(script) {
        Err(e) => {
            let lines = script.split('\n').count() as u32;
            assert!(
                e.pos.line >= 1 && e.pos.line <= lines.max(1),
                "error line {} of {lines}",
                e.pos.line
            );
            assert!(e.pos.col >= 1);
        }
        Ok(compiled) => {
            let envelope = tern_sieve::Envelope {
                from: "a@example.test".into(),
                to: "b+x@example.test".into(),
            };
            let mut ctx = tern_sieve::Context::new("b@example.test", envelope);
            ctx.step_limit = 10_000;
            let out = tern_sieve::run(&compiled, message, &ctx, &tern_sieve::NoEnvironment);
            if out.error.is_some() {
                assert!(out.actions.is_empty() && out.implicit_keep);
            }
        }
    }
}

//! One normal form for both sides' actions: one string per action in order,
//! then the implicit keep; flags lower-cased and sorted (IMAP flags are
//! case-insensitive), control characters as `?` in
//! folders, reasons and handles (as `sieve-test` prints them).

use tern_sieve::{Action, Outcome};

pub fn flags(f: &[String]) -> String {
    let mut v: Vec<String> = f.iter().map(|s| s.to_ascii_lowercase()).collect();
    v.sort();
    v.dedup();
    v.join(" ")
}

pub fn store(folder: &str, f: &[String], copy: bool, create: bool) -> String {
    let folder = if folder.eq_ignore_ascii_case("inbox") {
        "INBOX"
    } else {
        folder
    };
    format!(
        "store {:?} flags=[{}]{}{}",
        text(folder),
        flags(f),
        if copy { " copy" } else { "" },
        if create { " create" } else { "" }
    )
}

pub fn text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

pub fn vacation(
    seconds: u64,
    subject: Option<&str>,
    from: Option<&str>,
    handle: &str,
    reason: &str,
) -> String {
    format!(
        "vacation seconds={seconds} subject={subject:?} from={from:?} handle={:?} reason={:?}",
        text(handle),
        text(reason)
    )
}

pub fn from_outcome(o: &Outcome) -> Vec<String> {
    let mut out = Vec::new();
    if o.error.is_some() {
        out.push("runtime-error".to_string());
    }
    for a in &o.actions {
        out.push(match a {
            Action::Keep { flags } => store("INBOX", flags, false, false),
            Action::FileInto {
                folder,
                flags,
                copy,
                create,
            } => store(folder, flags, *copy, *create),
            Action::Discard => "discard".to_string(),
            Action::Redirect { address, copy } => {
                let a = address.trim().trim_start_matches('<').trim_end_matches('>');
                format!("redirect <{a}>{}", if *copy { " copy" } else { "" })
            }
            Action::Reject { reason, .. } => format!("reject {:?}", text(reason)),
            Action::Vacation(v) => vacation(
                v.period,
                v.subject.as_deref(),
                v.from.as_deref(),
                &v.handle,
                &v.reason,
            ),
        });
    }
    out.push(if o.implicit_keep {
        format!("implicit-keep flags=[{}]", flags(&o.implicit_flags))
    } else {
        "no-implicit-keep".into()
    });
    out
}

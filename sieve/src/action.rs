//! The result of a run: the actions in order, whether the implicit keep
//! still applies (RFC 5228 section 2.10.2), and the merging and conflict
//! rules applied as actions are added (duplicate fileinto/redirect collapse;
//! reject conflicts with delivering or answering, RFC 5429 section 2.1).

use crate::error::RuntimeError;

/// What the vacation command asks for (RFC 5230, RFC 6131). Whether a reply
/// is sent is decided by [`crate::vacation::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacationAction {
    /// Seconds before the same sender is answered again (clamped).
    pub period: u64,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub addresses: Vec<String>,
    pub mime: bool,
    /// `:handle`, or one derived from the reason, subject, from and :mime.
    pub handle: String,
    pub reason: String,
}

/// One action of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store into the user's default mailbox (explicit `keep`).
    Keep {
        flags: Vec<String>,
    },
    FileInto {
        folder: String,
        flags: Vec<String>,
        copy: bool,
        create: bool,
    },
    Discard,
    Redirect {
        address: String,
        copy: bool,
    },
    Reject {
        reason: String,
        extended: bool,
    },
    Vacation(VacationAction),
}

/// The outcome of running a script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    pub actions: Vec<Action>,
    /// Whether the message is still kept implicitly in the default mailbox.
    pub implicit_keep: bool,
    /// The flags the implicit keep stores with (imap4flags' internal variable).
    pub implicit_flags: Vec<String>,
    /// Set when the script failed at run time; `actions` is then empty and
    /// `implicit_keep` true (mail is never lost to a bad script).
    pub error: Option<RuntimeError>,
}

/// Collects actions while a script runs.
#[derive(Debug, Default)]
pub struct ActionSet {
    pub actions: Vec<Action>,
    pub keep_cancelled: bool,
}

impl ActionSet {
    pub fn add(&mut self, a: Action) -> Result<(), RuntimeError> {
        let rejects = self
            .actions
            .iter()
            .any(|x| matches!(x, Action::Reject { .. }));
        let delivers = |x: &Action| {
            matches!(
                x,
                Action::Keep { .. }
                    | Action::FileInto { .. }
                    | Action::Redirect { .. }
                    | Action::Vacation(_)
            )
        };
        match &a {
            Action::Reject { .. } if rejects => {
                return Err(RuntimeError::Conflict("duplicate reject action".into()));
            }
            Action::Reject { .. } if self.actions.iter().any(delivers) => {
                return Err(RuntimeError::Conflict(
                    "reject conflicts with an earlier action".into(),
                ));
            }
            a if rejects && delivers(a) => {
                return Err(RuntimeError::Conflict(
                    "action conflicts with reject".into(),
                ));
            }
            Action::Vacation(_)
                if self
                    .actions
                    .iter()
                    .any(|x| matches!(x, Action::Vacation(_))) =>
            {
                return Err(RuntimeError::Conflict("duplicate vacation action".into()));
            }
            _ => {}
        }
        let cancels = match &a {
            Action::Keep { .. } | Action::Discard | Action::Reject { .. } => true,
            Action::FileInto { copy, .. } | Action::Redirect { copy, .. } => !copy,
            Action::Vacation(_) => false,
        };
        self.keep_cancelled |= cancels;
        // Duplicates collapse: the later store's flags win, the position is the first's.
        let key = store_key(&a);
        if let Some(k) = key
            && let Some(prev) = self.actions.iter_mut().find(|x| store_key(x) == Some(k))
        {
            match (prev, a) {
                (
                    Action::Keep { flags },
                    Action::Keep { flags: f } | Action::FileInto { flags: f, .. },
                )
                | (
                    Action::FileInto { flags, .. },
                    Action::Keep { flags: f } | Action::FileInto { flags: f, .. },
                ) => *flags = f,
                _ => {}
            }
            return Ok(());
        }
        match &a {
            Action::Redirect { address, .. } => {
                let norm = normalize_address(address);
                if self.actions.iter().any(|x| matches!(x, Action::Redirect { address, .. } if normalize_address(address) == norm)) {
                    return Ok(());
                }
            }
            Action::Discard if self.actions.contains(&Action::Discard) => return Ok(()),
            _ => {}
        }
        self.actions.push(a);
        Ok(())
    }
}

/// The mailbox a store action writes to.
fn store_key(a: &Action) -> Option<&str> {
    match a {
        Action::Keep { .. } => Some("INBOX"),
        Action::FileInto { folder, .. } if folder.eq_ignore_ascii_case("inbox") => Some("INBOX"),
        Action::FileInto { folder, .. } => Some(folder),
        _ => None,
    }
}

/// `<Local@Domain>` → `Local@domain` (local parts are case-sensitive).
pub fn normalize_address(a: &str) -> String {
    let a = crate::message::unbracket(a);
    match a.rsplit_once('@') {
        Some((l, d)) => format!("{l}@{}", d.to_ascii_lowercase()),
        None => a.to_string(),
    }
}

/// The flags of `list` that IMAP can store: the five system flags
/// (RFC 3501 section 2.3.2) and keyword atoms; others are dropped (RFC 5232
/// section 3 leaves invalid flags to the implementation; Pigeonhole drops them).
pub fn storable_flags(list: &[String]) -> Vec<String> {
    list.iter()
        .filter(|f| match f.strip_prefix('\\') {
            Some(sys) => ["seen", "answered", "flagged", "deleted", "draft"]
                .contains(&sys.to_ascii_lowercase().as_str()),
            None => {
                !f.is_empty()
                    && f.bytes()
                        .all(|b| b > b' ' && b < 0x7f && !b"(){%*\"\\]".contains(&b))
            }
        })
        .cloned()
        .collect()
}

/// Splits a flag list value into flags (space separated), dropping
/// duplicates case-insensitively (RFC 5232 section 3).
pub fn split_flags<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        for f in item.split_whitespace() {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(f)) {
                out.push(f.to_string());
            }
        }
    }
    out
}

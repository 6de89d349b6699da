//! The ESMTP parameters of a transaction as every side sees them: MAIL's
//! SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH and REQUIRETLS, RCPT's NOTIFY
//! and ORCPT (RFC 1870, 6152, 6531, 3461, 4954, 8689). The SMTP parser fills them, the hooks
//! hand them to plugins, web mail makes empty ones, and the DSN fields of the
//! queue are written from them. Plain data: no parsing of command lines here
//! (`smtp/command.rs` does that), no I/O.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    SevenBit,
    EightBitMime,
    BinaryMime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ret {
    Full,
    Hdrs,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailParams {
    pub size: Option<u64>,
    pub body: Option<Body>,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    /// ENVID, xtext-decoded.
    pub envid: Option<String>,
    /// AUTH=, as given.
    pub auth: Option<String>,
    /// REQUIRETLS (RFC 8689): the message may leave only over verified TLS.
    #[serde(default)]
    pub requiretls: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RcptParams {
    pub notify: Option<Notify>,
    /// ORCPT as (address type, xtext-decoded address).
    pub orcpt: Option<(String, String)>,
}

impl Notify {
    /// The NOTIFY value as the queue keeps it ("NEVER", "SUCCESS,FAILURE").
    pub fn to_text(&self) -> String {
        if self.never {
            return "NEVER".into();
        }
        let mut parts = Vec::new();
        if self.success {
            parts.push("SUCCESS");
        }
        if self.failure {
            parts.push("FAILURE");
        }
        if self.delay {
            parts.push("DELAY");
        }
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_as_text() {
        let n = Notify {
            success: true,
            delay: true,
            ..Notify::default()
        };
        assert_eq!(n.to_text(), "SUCCESS,DELAY");
        let never = Notify {
            never: true,
            ..Notify::default()
        };
        assert_eq!(never.to_text(), "NEVER");
    }
}

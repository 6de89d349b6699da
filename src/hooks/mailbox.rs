//! The host side of the `mailbox` interface: what a delivery plugin may
//! ask about the account of the `deliver` call in progress (its Sieve
//! scripts, its folders, a key-value area private to the plugin and the
//! account) and the mail it asks to send. Outside a `deliver` call the
//! state holds no account and every function answers an error or nothing.
//! Mail to send is only collected here, checked (sender, counts, sizes);
//! the submission path queues it once the delivered message is committed.

use super::bindings::tern::plugin::mailbox;
use super::host::PluginState;
use crate::address::Address;

/// Most messages one `deliver` call may send (vacation and `send` together).
pub const MAX_SENDS: usize = 10;
/// Most recipients of one sent message.
pub const MAX_SEND_RECIPIENTS: usize = 100;
/// Largest message a plugin may send.
pub const MAX_SEND_SIZE: usize = 1 << 20;

/// A message a delivery plugin asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The envelope sender; empty for `<>`.
    pub sender: String,
    pub recipients: Vec<Address>,
    pub message: Vec<u8>,
}

/// The account of the `deliver` call in progress, and what the plugin
/// asked to send in it.
#[derive(Debug, Clone, Default)]
pub struct MailboxCall {
    /// The local account (lower case).
    pub account: String,
    /// Addresses the account may send from: its name and the address the
    /// message came to (lower case).
    pub own: Vec<String>,
    pub outgoing: Vec<Outgoing>,
}

impl MailboxCall {
    /// Checks and records one message to send.
    pub fn send(
        &mut self,
        sender: &str,
        recipients: &[String],
        message: Vec<u8>,
    ) -> Result<(), String> {
        if self.outgoing.len() >= MAX_SENDS {
            return Err(format!("at most {MAX_SENDS} messages per delivery"));
        }
        let sender = sender.trim();
        if !sender.is_empty() && !self.own.contains(&sender.to_ascii_lowercase()) {
            return Err(format!(
                "sender {sender:?} is not the account's address (use it or the null sender)"
            ));
        }
        if recipients.is_empty() || recipients.len() > MAX_SEND_RECIPIENTS {
            return Err(format!("1 to {MAX_SEND_RECIPIENTS} recipients"));
        }
        if message.len() > MAX_SEND_SIZE || message.is_empty() {
            return Err(format!("a message of 1 to {MAX_SEND_SIZE} bytes"));
        }
        let recipients = recipients
            .iter()
            .map(|a| Address::parse(a, true).map_err(|e| format!("{a:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        self.outgoing.push(Outgoing {
            sender: sender.to_string(),
            recipients,
            message,
        });
        Ok(())
    }
}

impl PluginState {
    /// The per-account key-value namespace of this plugin.
    fn account_area(&self) -> Result<String, String> {
        match &self.mailbox {
            Some(call) => Ok(format!("{}\u{1}{}", self.shared.name, call.account)),
            None => Err("not within a deliver call".into()),
        }
    }
}

impl mailbox::Host for PluginState {
    async fn active_script(&mut self) -> Option<(String, String)> {
        let account = self.mailbox.as_ref()?.account.clone();
        match self.shared.store.sieve().active(&account).await {
            Ok(Some((name, text))) => Some((name, String::from_utf8_lossy(&text).into_owned())),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(plugin = %self.shared.name, %account, "reading the active Sieve script failed: {e}");
                None
            }
        }
    }

    async fn script(&mut self, name: String) -> Option<String> {
        let account = self.mailbox.as_ref()?.account.clone();
        let text = self.shared.store.sieve().get(&account, &name).await.ok()?;
        Some(String::from_utf8_lossy(&text).into_owned())
    }

    async fn folder_exists(&mut self, name: String) -> bool {
        let Some(call) = &self.mailbox else {
            return false;
        };
        let folder = crate::store::canonical_folder(&name);
        matches!(
            self.shared.store.folder(&call.account, &folder).await,
            Ok(Some(_))
        )
    }

    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        let area = self.account_area()?;
        self.shared
            .store
            .kv_get(&area, &key)
            .await
            .map_err(|e| e.to_string())
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_seconds: Option<u64>,
    ) -> Result<(), String> {
        let area = self.account_area()?;
        self.shared
            .store
            .kv_set(&area, &key, &value, ttl_seconds)
            .await
            .map_err(|e| e.to_string())
    }

    async fn send(
        &mut self,
        sender: String,
        recipients: Vec<String>,
        message: Vec<u8>,
    ) -> Result<(), String> {
        let plugin = self.shared.name.clone();
        let call = self.mailbox.as_mut().ok_or("not within a deliver call")?;
        call.send(&sender, &recipients, message).inspect_err(|e| {
            tracing::warn!(%plugin, account = %call.account, "plugin's send refused: {e}");
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_checked() {
        let mut call = MailboxCall {
            account: "bob@example.test".into(),
            own: vec!["bob@example.test".into(), "bob+x@example.test".into()],
            outgoing: Vec::new(),
        };
        let msg = b"Subject: x\r\n\r\nhi\r\n".to_vec();
        assert!(call.send("", &["a@x.test".into()], msg.clone()).is_ok());
        assert!(
            call.send("BOB@example.test", &["a@x.test".into()], msg.clone())
                .is_ok()
        );
        assert!(
            call.send("eve@example.test", &["a@x.test".into()], msg.clone())
                .is_err()
        );
        assert!(call.send("", &[], msg.clone()).is_err());
        assert!(
            call.send("", &["a@x.test>\r\nRCPT".into()], msg.clone())
                .is_err()
        );
        assert!(call.send("", &["a@x.test".into()], Vec::new()).is_err());
        for _ in 0..MAX_SENDS {
            let _ = call.send("", &["a@x.test".into()], msg.clone());
        }
        assert_eq!(call.outgoing.len(), MAX_SENDS);
        assert!(call.send("", &["a@x.test".into()], msg).is_err());
    }
}

//! Storage plugins: a plugin exporting `storage` may claim local mailboxes;
//! mail for a claimed mailbox is handed to the plugin's `deliver` (before
//! the 250, instead of the built-in store) and POP3 serves that mailbox
//! through `list-messages`, `fetch` and `delete` (see `pop3/maildrop.rs`).
//! IMAP and web mail read only the built-in store. The first plugin (in
//! config order) that claims a mailbox owns it.

use super::dispatch::{Failure, PluginSession, arm, call, on_error};
use super::engine::LoadedPlugin;
use super::message::MessageView;

/// Most bytes asked of a plugin in one `fetch`.
pub const FETCH_CHUNK: u32 = 64 * 1024;

/// A stored message as a storage plugin lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: String,
    pub size: u64,
}

impl PluginSession {
    /// Has any plugin of this session's set a storage hook?
    pub fn has_storage(&self) -> bool {
        self.set.plugins.iter().any(|p| p.exports.storage.is_some())
    }

    /// The index of the first storage plugin that claims `mailbox`.
    pub async fn storage_claim(&self, mailbox: &str) -> Option<usize> {
        let mut slots = self.slots.lock().await;
        for (i, plugin) in self.set.plugins.iter().enumerate() {
            if plugin.exports.storage.is_none() {
                continue;
            }
            if let Ok(Some(true)) = call!(self, slots, i, plugin, storage, "claims", |g, s| g
                .call_claims(s, mailbox))
            {
                return Some(i);
            }
        }
        None
    }

    /// Hands a message to storage plugin `i` for `mailbox`; its id there.
    pub async fn storage_deliver(
        &self,
        i: usize,
        mailbox: &str,
        message: &MessageView,
    ) -> Result<String, String> {
        let mut slots = self.slots.lock().await;
        let plugin = self.set.plugins.get(i).ok_or("no such plugin")?.clone();
        let own = match self.live(&mut slots[i], &plugin).await {
            Ok(live) => live
                .store
                .data_mut()
                .table
                .push(message.clone())
                .map_err(|e| e.to_string())?,
            Err(f) => {
                slots[i] = None;
                return Err(format!("plugin {}: {f}", plugin.name));
            }
        };
        let rep = own.rep();
        let result = call!(self, slots, i, &plugin, storage, "deliver", |g, s| g
            .call_deliver(
                s,
                mailbox,
                wasmtime::component::Resource::<MessageView>::new_borrow(rep)
            ));
        if let Some(live) = slots[i].as_mut() {
            let _ = live.store.data_mut().table.delete(own);
        }
        flatten(&plugin.name, result)
    }

    /// The messages of `mailbox` in storage plugin `i`.
    pub async fn storage_list(
        &self,
        i: usize,
        mailbox: &str,
    ) -> Result<Vec<StoredMessage>, String> {
        let mut slots = self.slots.lock().await;
        let plugin = self.set.plugins.get(i).ok_or("no such plugin")?.clone();
        let list = call!(self, slots, i, &plugin, storage, "list-messages", |g, s| g
            .call_list_messages(s, mailbox));
        let list = flatten(&plugin.name, list)?;
        Ok(list
            .into_iter()
            .map(|m| StoredMessage {
                id: m.id,
                size: m.size,
            })
            .collect())
    }

    /// A whole message from storage plugin `i`, read `FETCH_CHUNK` bytes at
    /// a time, as the pieces it came in.
    pub async fn storage_fetch(
        &self,
        i: usize,
        mailbox: &str,
        id: &str,
        size_hint: u64,
    ) -> Result<Vec<Vec<u8>>, String> {
        let mut slots = self.slots.lock().await;
        let plugin = self.set.plugins.get(i).ok_or("no such plugin")?.clone();
        let mut parts = Vec::new();
        let mut offset = 0u64;
        // A bound on the calls, whatever the plugin answers: the listed size and some slack.
        let max_calls = size_hint / u64::from(FETCH_CHUNK) + 16;
        for _ in 0..max_calls {
            let r = call!(self, slots, i, &plugin, storage, "fetch", |g, s| g
                .call_fetch(s, mailbox, id, offset, FETCH_CHUNK));
            let bytes = flatten(&plugin.name, r)?;
            let n = bytes.len() as u64;
            if n > 0 {
                parts.push(bytes);
            }
            if n < u64::from(FETCH_CHUNK) {
                return Ok(parts);
            }
            offset += n;
        }
        Err(format!(
            "plugin {}: message {id} is larger than it said",
            plugin.name
        ))
    }

    /// Removes message `id` of `mailbox` from storage plugin `i`.
    pub async fn storage_delete(&self, i: usize, mailbox: &str, id: &str) -> Result<(), String> {
        let mut slots = self.slots.lock().await;
        let plugin = self.set.plugins.get(i).ok_or("no such plugin")?.clone();
        let r = call!(self, slots, i, &plugin, storage, "delete", |g, s| g
            .call_delete(s, mailbox, id));
        flatten(&plugin.name, r)
    }
}

/// A storage call's result: the plugin's own error, or its failure.
fn flatten<T>(
    plugin: &str,
    r: Result<Option<Result<T, String>>, super::Verdict>,
) -> Result<T, String> {
    match r {
        Ok(Some(Ok(v))) => Ok(v),
        Ok(Some(Err(e))) => Err(format!("plugin {plugin}: {e}")),
        Ok(None) => Err(format!("plugin {plugin} has no storage hook")),
        Err(_) => Err(format!("plugin {plugin} failed (see the log)")),
    }
}

//! The account of the [`Delivery::deliver`](crate::Delivery::deliver) call in progress: its Sieve
//! scripts, folders, a key-value area private to this plugin and the
//! account, and sending mail through the server's queue (checked there:
//! the sender is empty or the account's own address; DKIM-signed). Outside
//! `deliver` these answer nothing or an error.

use crate::__bindings::mailbox as host;

/// The account's active Sieve script: (name, source).
pub fn active_script() -> Option<(String, String)> {
    host::active_script()
}
/// One of the account's scripts by name.
pub fn script(name: &str) -> Option<String> {
    host::script(name)
}
pub fn folder_exists(name: &str) -> bool {
    host::folder_exists(name)
}
/// A value of the account's area.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
    host::get(key)
}
/// Sets a value of the account's area, expiring after `ttl_seconds`.
pub fn set(key: &str, value: &[u8], ttl_seconds: Option<u64>) -> Result<(), String> {
    host::set(key, value, ttl_seconds)
}
/// Queues `message` from `sender` (empty: `<>`) to `recipients` once
/// the message being delivered is committed.
pub fn send(sender: &str, recipients: &[String], message: &[u8]) -> Result<(), String> {
    host::send(sender, recipients, message)
}

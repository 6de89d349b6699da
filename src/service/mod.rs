//! Running as a system service: who the server runs as (`privileges.rs`:
//! bind as root, then become `user`/`group`; the data directory's owner
//! checked) and what it tells the service manager (`notify.rs`: systemd's
//! `READY=1`, `STOPPING=1`, `RELOADING=1`). `server.rs` calls both at
//! start-up; `tern init` borrows the account look-up.

pub mod notify;
pub mod privileges;

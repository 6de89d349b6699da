//! QUOTA (RFC 9208): one quota root per user, named "", over all their
//! folders, with the STORAGE resource (in units of 1024 octets, from the
//! store's per-user usage counter). A user without a limit has no quota
//! root (GETQUOTAROOT lists none, RFC 9208 4.3). Quotas are set by the
//! administrator (`tern user quota`), so SETQUOTA is refused and QUOTASET
//! not announced. APPEND, COPY and MOVE past the quota end `NO
//! [OVERQUOTA]` (`mailboxes.rs`' `store_failure`).

use super::session::{Outcome, Session};
use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::mailbox::Mailbox;
use std::io;

/// The one quota root's name.
const ROOT: &str = "";

/// The resource list of a quota: `(STORAGE used limit)`, in KiB (usage
/// rounded up, limit down, so a full mailbox never looks roomy).
fn resources(usage: u64, limit: u64) -> String {
    format!("(STORAGE {} {})", usage.div_ceil(1024), limit / 1024)
}

impl Session {
    /// GETQUOTAROOT: the roots of a folder, and each root's quota.
    pub async fn get_quota_root(&mut self, mailbox: Mailbox<'static>) -> io::Result<Outcome> {
        let name = match self.folder_name(&mailbox) {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        let user = self.account();
        match self.ctx.store.folder(&user, &name).await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(Outcome::No("[NONEXISTENT] no such folder".into())),
            Err(e) => return Ok(self.store_failure(e)),
        }
        let quota = match self.ctx.store.quota(&user).await {
            Ok(q) => q,
            Err(e) => return Ok(self.store_failure(e)),
        };
        let mut out = b"* QUOTAROOT ".to_vec();
        self.put_mailbox(&mut out, &name);
        if let Some(limit) = quota.limit {
            out.extend_from_slice(format!(" \"{ROOT}\"\r\n").as_bytes());
            let line = format!(
                "* QUOTA \"{ROOT}\" {}\r\n",
                resources(quota.usage.bytes, limit)
            );
            out.extend_from_slice(line.as_bytes());
        } else {
            out.extend_from_slice(b"\r\n");
        }
        self.conn.write_buffered(&out).await?;
        Ok(Outcome::Ok("GETQUOTAROOT completed".into()))
    }

    /// GETQUOTA: a root's resources; only "" exists, and only with a limit.
    pub async fn get_quota(&mut self, root: AString<'static>) -> io::Result<Outcome> {
        let user = self.account();
        let quota = match self.ctx.store.quota(&user).await {
            Ok(q) => q,
            Err(e) => return Ok(self.store_failure(e)),
        };
        let limit = match quota.limit {
            Some(limit) if root.as_ref() == ROOT.as_bytes() => limit,
            _ => return Ok(Outcome::No("[NONEXISTENT] no such quota root".into())),
        };
        let line = format!(
            "* QUOTA \"{ROOT}\" {}\r\n",
            resources(quota.usage.bytes, limit)
        );
        self.conn.write_buffered(line.as_bytes()).await?;
        Ok(Outcome::Ok("GETQUOTA completed".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::resources;

    #[test]
    fn storage_is_in_kibibytes_rounded_against_the_user() {
        assert_eq!(resources(0, 2048), "(STORAGE 0 2)");
        assert_eq!(resources(1, 2047), "(STORAGE 1 1)");
        assert_eq!(resources(1024, 1 << 30), "(STORAGE 1 1048576)");
    }
}

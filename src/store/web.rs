//! Web mail sessions (`w/<id>` in tree `meta`): a random 256-bit id, kept in
//! the browser's cookie, maps to the account, the session's CSRF token and
//! its expiry. Only the unguessable id is a credential; expired
//! records are swept whenever a new session is created. Written over the
//! storage seam, so a session made on one node is found on every node that
//! shares the database.

use super::backend::{Batch, KeyRange, ScanOrder, Space};
use super::{Store, StoreError, decode, encode, now};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSession {
    pub user: String,
    /// Token every state-changing request must carry.
    pub csrf: String,
    /// Unix seconds after which the session is void.
    pub expires: i64,
}

fn web_key(id: &str) -> Vec<u8> {
    format!("w/{id}").into_bytes()
}

impl Store {
    /// Stores a new session under `id` and sweeps expired ones.
    pub async fn create_web_session(
        &self,
        id: &str,
        session: &WebSession,
    ) -> Result<(), StoreError> {
        let t = now();
        let backend = &self.inner.backend;
        let mut batch = Batch::new();
        for (key, value) in backend
            .scan(Space::Meta, &KeyRange::prefix(b"w/"), ScanOrder::ALL)
            .await?
        {
            let expired = decode::<WebSession>("web session", &value)
                .map(|s| s.expires <= t)
                .unwrap_or(true);
            if expired {
                batch.delete(Space::Meta, key);
            }
        }
        batch.put(Space::Meta, web_key(id), encode(session));
        Ok(backend.commit(batch).await?)
    }

    /// The live session with this id (None when unknown or expired).
    pub async fn web_session(&self, id: &str) -> Result<Option<WebSession>, StoreError> {
        let backend = &self.inner.backend;
        let Some(v) = backend.get(Space::Meta, &web_key(id)).await? else {
            return Ok(None);
        };
        let s: WebSession = decode("web session", &v)?;
        if s.expires <= now() {
            self.delete_web_session(id).await?;
            return Ok(None);
        }
        Ok(Some(s))
    }

    pub async fn delete_web_session(&self, id: &str) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        batch.delete(Space::Meta, web_key(id));
        Ok(self.inner.backend.commit(batch).await?)
    }

    /// Moves messages between folders of one user (IMAP MOVE's store
    /// function: the body is shared, flags travel); returns the new UIDs.
    pub async fn move_messages(
        &self,
        user: &str,
        from: &str,
        uids: &[u32],
        to: &str,
    ) -> Result<Vec<u32>, StoreError> {
        let result = self.copy_messages(user, from, uids, to, true).await?;
        Ok(result.pairs.into_iter().map(|(_, new)| new).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_expire_and_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let live = WebSession {
            user: "bob@x.test".into(),
            csrf: "c".into(),
            expires: now() + 60,
        };
        let dead = WebSession {
            expires: now() - 1,
            ..live.clone()
        };
        store.create_web_session("dead", &dead).await.unwrap();
        store.create_web_session("live", &live).await.unwrap();
        assert_eq!(store.web_session("live").await.unwrap(), Some(live));
        assert_eq!(store.web_session("dead").await.unwrap(), None);
        store.delete_web_session("live").await.unwrap();
        assert_eq!(store.web_session("live").await.unwrap(), None);
    }

    #[tokio::test]
    async fn move_shares_the_body_and_keeps_flags() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.add_user("bob@x.test", "pw").await.unwrap();
        let (_, uid) = store
            .append(
                "bob@x.test",
                "INBOX",
                b"Subject: a\r\n\r\nx\r\n",
                vec!["\\Seen".into()],
                None,
            )
            .await
            .unwrap();
        let blob = store
            .message("bob@x.test", "INBOX", uid)
            .await
            .unwrap()
            .unwrap()
            .blob;
        let new = store
            .move_messages("bob@x.test", "INBOX", &[uid], "Trash")
            .await
            .unwrap();
        assert_eq!(new.len(), 1);
        assert!(
            store
                .messages("bob@x.test", "INBOX")
                .await
                .unwrap()
                .is_empty()
        );
        let moved = store
            .message("bob@x.test", "Trash", new[0])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(moved.blob, blob);
        assert_eq!(moved.flags, vec!["\\Seen".to_string()]);
        assert!(
            store
                .read_blob(blob)
                .await
                .unwrap()
                .starts_with(b"Subject: a")
        );
    }
}

//! BODY and BODYSTRUCTURE as last rendered, per message body: a body never
//! changes once stored (its id is never reused), so what was rendered once
//! holds for every later FETCH of any copy of it, in every session. Dovecot
//! keeps these in its index cache file; here they are kept in memory,
//! bounded in bytes, oldest out first. A FETCH whose only whole-message
//! items are cached ones reads no body at all.

use crate::store::BlobId;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// What the cache holds at most, in rendered bytes.
const MAX_BYTES: usize = 8 * 1024 * 1024;

/// (body, extended: BODYSTRUCTURE rather than BODY).
type Key = (BlobId, bool);

#[derive(Default)]
struct Inner {
    rendered: HashMap<Key, Arc<[u8]>>,
    /// Insertion order, oldest first.
    order: VecDeque<Key>,
    bytes: usize,
}

#[derive(Default)]
pub struct Structures {
    inner: Mutex<Inner>,
}

impl Structures {
    pub fn get(&self, blob: BlobId, extended: bool) -> Option<Arc<[u8]>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.rendered.get(&(blob, extended)).cloned()
    }

    pub fn put(&self, blob: BlobId, extended: bool, rendered: &[u8]) {
        if rendered.len() > MAX_BYTES / 64 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let key = (blob, extended);
        if inner.rendered.contains_key(&key) {
            return;
        }
        while inner.bytes + rendered.len() > MAX_BYTES {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.rendered.remove(&old) {
                inner.bytes -= gone.len();
            }
        }
        inner.bytes += rendered.len();
        inner.order.push_back(key);
        inner.rendered.insert(key, Arc::from(rendered));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_both_forms_apart_and_stays_within_its_bound() {
        let cache = Structures::default();
        cache.put(7, false, b"(BODY)");
        cache.put(7, true, b"(BODYSTRUCTURE)");
        assert_eq!(cache.get(7, false).as_deref(), Some(&b"(BODY)"[..]));
        assert_eq!(cache.get(7, true).as_deref(), Some(&b"(BODYSTRUCTURE)"[..]));
        assert!(cache.get(8, true).is_none());
        let big = vec![b'x'; MAX_BYTES / 64];
        for blob in 100..300 {
            cache.put(blob, true, &big);
        }
        let inner = cache.inner.lock().unwrap();
        assert!(inner.bytes <= MAX_BYTES);
        assert_eq!(inner.rendered.len(), inner.order.len());
        assert!(
            !inner.rendered.contains_key(&(7, false)),
            "oldest out first"
        );
        assert!(inner.rendered.contains_key(&(299, true)));
    }
}

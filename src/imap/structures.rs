//! What FETCH, SORT and THREAD derive from a message body, kept per body:
//! a body never changes once stored (its id is never reused), so what was
//! derived once holds for every later command on any copy of it, in every
//! session. Dovecot keeps these in its index cache file; here they are kept
//! in memory, bounded, oldest out first. BODY and BODYSTRUCTURE as
//! rendered (a FETCH whose only whole-message items are cached reads no
//! body), and the header facts SORT and THREAD use (`subject::Facts`; a
//! second SORT or THREAD reads no headers).

use super::subject::Facts;
use crate::store::BlobId;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Rendered BODY/BODYSTRUCTURE kept at most, in bytes.
const MAX_RENDERED: usize = 8 * 1024 * 1024;
/// Header facts kept at most, in (estimated) bytes.
const MAX_FACTS: usize = 8 * 1024 * 1024;

/// A map bounded by the weight of its values, oldest out first.
struct Fifo<K, V> {
    map: HashMap<K, (V, usize)>,
    order: VecDeque<K>,
    weight: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Fifo<K, V> {
    fn new() -> Self {
        Fifo {
            map: HashMap::new(),
            order: VecDeque::new(),
            weight: 0,
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        self.map.get(key).map(|(v, _)| v.clone())
    }

    fn put(&mut self, key: K, value: V, weight: usize, max: usize) {
        if weight > max / 64 || self.map.contains_key(&key) {
            return;
        }
        while self.weight + weight > max {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some((_, w)) = self.map.remove(&old) {
                self.weight -= w;
            }
        }
        self.weight += weight;
        self.order.push_back(key.clone());
        self.map.insert(key, (value, weight));
    }
}

/// (body, extended: BODYSTRUCTURE rather than BODY) → as rendered.
type RenderedBodies = Fifo<(BlobId, bool), Arc<[u8]>>;

pub struct Structures {
    rendered: Mutex<RenderedBodies>,
    /// Body → its header facts (position, arrival and size are the copy's).
    facts: Mutex<Fifo<BlobId, Arc<Facts>>>,
}

impl Default for Structures {
    fn default() -> Self {
        Structures {
            rendered: Mutex::new(Fifo::new()),
            facts: Mutex::new(Fifo::new()),
        }
    }
}

/// The cache of `store`'s bodies: one per store opened in the process
/// (shared by every session on it).
pub fn of(store: &crate::store::Store) -> Arc<Structures> {
    static ALL: std::sync::LazyLock<Mutex<HashMap<u64, Arc<Structures>>>> =
        std::sync::LazyLock::new(Default::default);
    ALL.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(store.instance())
        .or_default()
        .clone()
}

impl Structures {
    pub fn get(&self, blob: BlobId, extended: bool) -> Option<Arc<[u8]>> {
        let rendered = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        rendered.get(&(blob, extended))
    }

    pub fn put(&self, blob: BlobId, extended: bool, rendered: &[u8]) {
        let mut cache = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        cache.put(
            (blob, extended),
            Arc::from(rendered),
            rendered.len(),
            MAX_RENDERED,
        );
    }

    pub fn facts(&self, blob: BlobId) -> Option<Arc<Facts>> {
        let facts = self.facts.lock().unwrap_or_else(|p| p.into_inner());
        facts.get(&blob)
    }

    pub fn put_facts(&self, blob: BlobId, facts: &Facts) {
        let weight = 128
            + facts.subject.len()
            + facts.from.len()
            + facts.to.len()
            + facts.cc.len()
            + facts.display_from.len()
            + facts.display_to.len()
            + facts.message_id.as_ref().map_or(0, String::len)
            + facts.references.iter().map(|r| r.len() + 24).sum::<usize>();
        let mut cache = self.facts.lock().unwrap_or_else(|p| p.into_inner());
        cache.put(blob, Arc::new(facts.clone()), weight, MAX_FACTS);
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
        let big = vec![b'x'; MAX_RENDERED / 64];
        for blob in 100..300 {
            cache.put(blob, true, &big);
        }
        let inner = cache.rendered.lock().unwrap();
        assert!(inner.weight <= MAX_RENDERED);
        assert_eq!(inner.map.len(), inner.order.len());
        assert!(!inner.map.contains_key(&(7, false)), "oldest out first");
        assert!(inner.map.contains_key(&(299, true)));
    }
}

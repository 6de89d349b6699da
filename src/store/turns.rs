//! Retry turns: writers that lost a race for a record retry one at a time
//! per record, in this process.
//!
//! Every change is a conditional write set (`writeset.rs`), so two writers
//! that read one record (a folder's next UID, a blob's reference count)
//! cannot both commit: the engine refuses the second and it reads again.
//! When twenty sessions deliver into one folder, all of them read, one
//! commits and nineteen retry together, again and again: on PostgreSQL that
//! cost ten rolled-back transactions per message. A writer that lost takes
//! the turns of the records its write set was conditioned on (hashed into
//! a fixed set of stripes, taken in order so two writers never wait on
//! each other crosswise) and retries holding them: the losers queue and
//! each retry mostly wins. First attempts never wait, so writers that do
//! not collide never queue; and the engine's conditions still decide
//! between processes (other nodes have turns of their own).

use std::hash::BuildHasher;
use tokio::sync::{Mutex, MutexGuard};

/// How many stripes the records hash into.
const STRIPES: usize = 64;

/// The turns of one store.
pub(super) struct Turns {
    stripes: Vec<Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
}

/// The records a conflicted write set was conditioned on, as stripes
/// (sorted, without repeats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contention(Vec<usize>);

impl Turns {
    pub(super) fn new() -> Turns {
        Turns {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: Default::default(),
        }
    }

    /// The stripes of `keys`.
    pub(super) fn contention<'a>(&self, keys: impl Iterator<Item = &'a [u8]>) -> Contention {
        let mut stripes: Vec<usize> = keys
            .map(|key| (self.hasher.hash_one(key) % STRIPES as u64) as usize)
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        Contention(stripes)
    }

    /// Waits for the turns of `contention`, in stripe order.
    pub(super) async fn take(&self, contention: &Contention) -> Vec<MutexGuard<'_, ()>> {
        let mut held = Vec::with_capacity(contention.0.len());
        for &stripe in &contention.0 {
            held.push(self.stripes[stripe].lock().await);
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_are_sorted_and_unique_whatever_the_order_of_the_keys() {
        let turns = Turns::new();
        let keys: [&[u8]; 4] = [b"f/bob\0INBOX", b"b/1", b"f/bob\0INBOX", b"u/bob"];
        let a = turns.contention(keys.iter().copied());
        let b = turns.contention(keys.iter().rev().copied());
        assert_eq!(a, b);
        assert!(a.0.windows(2).all(|w| w[0] < w[1]));
        assert!(!a.0.is_empty() && a.0.len() <= 3);
    }

    #[tokio::test]
    async fn a_turn_is_held_until_its_holder_lets_go() {
        let turns = Turns::new();
        let c = turns.contention([b"f/bob\0INBOX".as_slice()].into_iter());
        let held = turns.take(&c).await;
        assert!(turns.stripes[c.0[0]].try_lock().is_err());
        drop(held);
        assert!(turns.stripes[c.0[0]].try_lock().is_ok());
    }
}

//! Point-in-time reads of a live sled store (`tern backup` while the server
//! runs). sled has no snapshots, so the engine keeps one the way a
//! copy-on-write file system does: once a capture starts, every write set
//! first records, for each key it writes, the value the key had before it
//! (or "absent") — only the first time a key is written, so what is
//! recorded is the key's value at the start. A reader then scans the live
//! trees and, for each range it read, replaces what it saw by the recorded
//! values: keys written since the start read as they were, keys added
//! since are left out, keys deleted since come back.
//!
//! Why it is exact: a write set records under the capture gate before its
//! writes reach the tree, and the capture is installed with the gate held
//! exclusively (no write set in flight), so every change after the start
//! is recorded before anyone can read it; the reader consults the record
//! after reading the live range, never before. The record lives in memory
//! until the capture ends: its size is what mail changed during the backup.

use crate::store::backend::{KeyValues, Space};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// (space, key) → its value at the start (None: absent then).
type Before = BTreeMap<(Space, Vec<u8>), Option<Vec<u8>>>;

/// The values, at the start, of the keys written since.
#[derive(Default)]
pub(super) struct Capture {
    before: Mutex<Before>,
}

impl Capture {
    /// Records `old` as the value of `key` at the start, unless the key was
    /// written (and so recorded) before.
    pub(super) fn record(&self, space: Space, key: &[u8], old: Option<&[u8]>) {
        let mut before = self.before.lock().unwrap_or_else(|e| e.into_inner());
        before
            .entry((space, key.to_vec()))
            .or_insert_with(|| old.map(<[u8]>::to_vec));
    }

    /// `live`, the keys read from `start` up to `end` (inclusive when
    /// `end_inclusive`; None: the end of the space), as they were at the
    /// start. Must be called after `live` was read.
    pub(super) fn rewind(
        &self,
        space: Space,
        live: KeyValues,
        start: &[u8],
        end: Option<&[u8]>,
        end_inclusive: bool,
    ) -> KeyValues {
        use std::ops::Bound;
        let before = self.before.lock().unwrap_or_else(|e| e.into_inner());
        let low = Bound::Included((space, start.to_vec()));
        let high = match end {
            Some(end) if end_inclusive => Bound::Included((space, end.to_vec())),
            Some(end) => Bound::Excluded((space, end.to_vec())),
            None => match next_space(space) {
                Some(next) => Bound::Excluded((next, Vec::new())),
                None => Bound::Unbounded,
            },
        };
        let mut out = BTreeMap::new();
        for (key, value) in live {
            if !before.contains_key(&(space, key.clone())) {
                out.insert(key, value);
            }
        }
        for ((_, key), value) in before.range((low, high)) {
            if let Some(value) = value {
                out.insert(key.clone(), value.clone());
            }
        }
        out.into_iter().collect()
    }
}

/// The space after `space` in [`Space`]'s order (the map's key order).
fn next_space(space: Space) -> Option<Space> {
    Space::ALL.into_iter().find(|s| *s > space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewind_restores_changed_drops_added_and_returns_deleted_keys() {
        let c = Capture::default();
        c.record(Space::Meta, b"changed", Some(b"old"));
        c.record(Space::Meta, b"changed", Some(b"newer")); // second write: ignored
        c.record(Space::Meta, b"added", None);
        c.record(Space::Meta, b"deleted", Some(b"gone"));
        c.record(Space::Blobs, b"other-space", Some(b"x"));
        let live = vec![
            (b"added".to_vec(), b"a".to_vec()),
            (b"changed".to_vec(), b"newest".to_vec()),
            (b"kept".to_vec(), b"k".to_vec()),
        ];
        let out = c.rewind(Space::Meta, live, b"", None, false);
        assert_eq!(
            out,
            vec![
                (b"changed".to_vec(), b"old".to_vec()),
                (b"deleted".to_vec(), b"gone".to_vec()),
                (b"kept".to_vec(), b"k".to_vec()),
            ]
        );
        // Bounds: a deleted key past the end of the range stays out.
        let out = c.rewind(Space::Meta, Vec::new(), b"a", Some(b"d"), false);
        assert_eq!(out, vec![(b"changed".to_vec(), b"old".to_vec())]);
        let out = c.rewind(Space::Meta, Vec::new(), b"a", Some(b"deleted"), true);
        assert_eq!(out.len(), 2);
    }
}

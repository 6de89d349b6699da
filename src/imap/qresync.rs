//! QRESYNC's quick resynchronisation (RFC 7162 section 3.2): what SELECT
//! ... (QRESYNC (uidvalidity modseq [known-uids])) and UID FETCH ...
//! (CHANGEDSINCE m VANISHED) add to their answers — VANISHED (EARLIER)
//! for UIDs expunged since the client's mod-sequence and FETCH for
//! messages changed since. Expunged UIDs come from the store's bounded
//! history (`Store::vanished_since`); from before its horizon every UID
//! the client may know that no longer exists is reported instead, as
//! section 3.2.5.2 allows.

use super::view::{View, uid_in, uid_set};
use imap_codec::imap_types::sequence::SequenceSet;

/// The UIDs in `set` (up to the highest UID the folder gave out that the
/// view knows) that vanished: from `history` when it reaches back, else
/// every UID of `set` the view lacks.
fn vanished_in(view: &View, history: Option<Vec<u32>>, set: Option<&SequenceSet>) -> Vec<u32> {
    let largest = view.messages.last().map_or(0, |m| m.uid);
    let wanted = |u: u32| set.is_none_or(|s| uid_in(s, u, largest));
    match history {
        Some(uids) => uids
            .into_iter()
            .filter(|&u| wanted(u) && view.position(u).is_none())
            .collect(),
        None => {
            // Beyond the horizon: every UID up to the largest the client
            // can know of that is not in the folder.
            let top = set
                .map(|s| {
                    s.0.as_ref()
                        .iter()
                        .flat_map(|q| {
                            use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
                            let v = |x: &SeqOrUid| match x {
                                SeqOrUid::Value(n) => n.get(),
                                SeqOrUid::Asterisk => largest,
                            };
                            match q {
                                Sequence::Single(a) => [v(a), v(a)],
                                Sequence::Range(a, b) => [v(a), v(b)],
                            }
                        })
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(largest)
                .min(largest);
            (1..=top)
                .filter(|&u| wanted(u) && view.position(u).is_none())
                .collect()
        }
    }
}

/// `* VANISHED (EARLIER) ...` for a UID FETCH's set (RFC 7162 3.2.6).
pub fn vanished_earlier(
    out: &mut Vec<u8>,
    view: &View,
    history: Option<Vec<u32>>,
    set: &SequenceSet,
) {
    let gone = vanished_in(view, history, Some(set));
    if !gone.is_empty() {
        out.extend_from_slice(format!("* VANISHED (EARLIER) {}\r\n", uid_set(&gone)).as_bytes());
    }
}

/// The resync part of SELECT/EXAMINE with QRESYNC (RFC 7162 3.2.5.1):
/// VANISHED (EARLIER), then FETCH (UID FLAGS MODSEQ) for each message
/// changed after `modseq` (within `known` when given).
pub fn resync(
    out: &mut Vec<u8>,
    view: &View,
    history: Option<Vec<u32>>,
    modseq: u64,
    known: Option<&SequenceSet>,
) {
    let gone = vanished_in(view, history, known);
    if !gone.is_empty() {
        out.extend_from_slice(format!("* VANISHED (EARLIER) {}\r\n", uid_set(&gone)).as_bytes());
    }
    let largest = view.messages.last().map_or(0, |m| m.uid);
    for (i, m) in view.messages.iter().enumerate() {
        if m.modseq <= modseq || known.is_some_and(|k| !uid_in(k, m.uid, largest)) {
            continue;
        }
        out.extend_from_slice(format!("* {} FETCH (UID {} ", i + 1, m.uid).as_bytes());
        view.flags(out, m);
        out.extend_from_slice(format!(" MODSEQ ({}))\r\n", m.modseq).as_bytes());
    }
}

//! SORT and UID SORT (RFC 5256) with SORT=DISPLAY's DISPLAYFROM and
//! DISPLAYTO (RFC 5957), answered with SORT or, given `RETURN (...)`,
//! ESORT's ESEARCH (RFC 5267: MIN, MAX, COUNT, ALL in sorted order).
//! The messages are those SEARCH would find (`Session::matching`); their
//! facts come from `subject.rs`; ties go by sequence number.

use super::sections::load;
use super::session::{Outcome, Session};
use super::subject::Facts;
use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_codec::imap_types::search::SearchKey;
use std::cmp::Ordering;
use std::io;

impl Session {
    /// The facts of the messages at `positions` (kept per body once
    /// derived, `structures.rs`; else from header blocks read one at a
    /// time; an unreadable message sorts by its index data).
    pub async fn facts(&self, positions: &[usize]) -> Vec<Facts> {
        let Some(view) = self.view.as_ref() else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(positions.len());
        let cache = super::structures::of(&self.ctx.store);
        for &p in positions {
            let meta = &view.messages[p];
            if let Some(known) = cache.facts(meta.blob) {
                out.push(known.for_copy(p, meta));
                continue;
            }
            match load(&self.ctx.store, meta, true).await {
                Ok(bytes) => {
                    let facts = Facts::of(p, meta, &bytes);
                    cache.put_facts(meta.blob, &facts);
                    out.push(facts);
                }
                Err(_) => out.push(Facts::of(p, meta, &[])),
            }
        }
        out
    }

    /// The number a response shows for the message at `pos`.
    pub fn number(&self, pos: usize, uid: bool) -> u32 {
        match self.view.as_ref() {
            Some(view) if uid => view.messages[pos].uid,
            _ => pos as u32 + 1,
        }
    }

    /// `positions` in the order of `criteria`.
    pub async fn sorted(&self, criteria: &[SortCriterion], positions: &[usize]) -> Vec<usize> {
        let mut facts = self.facts(positions).await;
        facts.sort_by(|a, b| order(criteria, a, b));
        facts.into_iter().map(|f| f.pos).collect()
    }

    pub async fn sort(
        &mut self,
        criteria: Vec<SortCriterion>,
        charset: Charset<'static>,
        search: Vec<SearchKey<'static>>,
        uid: bool,
        tag: &str,
    ) -> io::Result<Outcome> {
        let options = self.search_return.take().map(|(_, o)| o);
        let kept = match self.to_keep(options.as_deref(), tag, &search) {
            Ok(kept) => kept,
            Err(outcome) => return Ok(outcome),
        };
        let (positions, with_modseq) = match self.matching(Some(charset), search).await {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        let sorted = self.sorted(&criteria, &positions).await;
        let numbers: Vec<u32> = sorted.iter().map(|&p| self.number(p, uid)).collect();
        let highest = self.view.as_ref().map_or(0, |v| {
            sorted
                .iter()
                .map(|&p| v.messages[p].modseq)
                .max()
                .unwrap_or(0)
        });
        if let (Some(search), Some(view)) = (kept, self.view.as_ref()) {
            // CONTEXT=SORT (RFC 5267 4.2): the sort stays live (`updates.rs`).
            let uids = sorted.iter().map(|&p| view.messages[p].uid).collect();
            self.keep_live(super::updates::LiveSearch {
                tag: tag.to_string(),
                uid,
                criteria: search,
                sort: Some(criteria),
                uids,
            })
            .await?;
        }
        let modseq = (with_modseq && !numbers.is_empty()).then_some(highest);
        let line = match options {
            Some(options) => esort(tag, uid, &options, &numbers, modseq),
            None => {
                let mut line = String::from("* SORT");
                for n in &numbers {
                    line.push_str(&format!(" {n}"));
                }
                if let Some(m) = modseq {
                    line.push_str(&format!(" (MODSEQ {m})"));
                }
                line + "\r\n"
            }
        };
        self.conn.write_buffered(line.as_bytes()).await?;
        Ok(Outcome::Ok("SORT completed".into()))
    }
}

/// The order of two messages under `criteria`; equal ones keep their
/// mailbox order (RFC 5256 section 3).
pub fn order(criteria: &[SortCriterion], a: &Facts, b: &Facts) -> Ordering {
    for c in criteria {
        let o = match c.key {
            SortKey::Arrival => a.arrival.cmp(&b.arrival),
            SortKey::Cc => a.cc.cmp(&b.cc),
            SortKey::Date => a.date.cmp(&b.date),
            SortKey::From => a.from.cmp(&b.from),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Subject => a.subject.cmp(&b.subject),
            SortKey::To => a.to.cmp(&b.to),
            SortKey::DisplayFrom => a.display_from.cmp(&b.display_from),
            SortKey::DisplayTo => a.display_to.cmp(&b.display_to),
        };
        let o = if c.reverse { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.pos.cmp(&b.pos)
}

/// A sorted list as a sequence set that keeps its order: only ascending
/// runs become ranges (RFC 5267 section 3.2).
pub fn ordered_set(numbers: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let mut j = i;
        while j + 1 < numbers.len() && numbers[j + 1] == numbers[j] + 1 {
            j += 1;
        }
        parts.push(if j > i {
            format!("{}:{}", numbers[i], numbers[j])
        } else {
            numbers[i].to_string()
        });
        i = j + 1;
    }
    parts.join(",")
}

/// ESORT's ESEARCH response (RFC 5267 section 3.2): MIN and MAX are the
/// first and last in sort order; no options means ALL.
fn esort(tag: &str, uid: bool, options: &[String], sorted: &[u32], modseq: Option<u64>) -> String {
    let want = |o: &str| options.is_empty() && o == "ALL" || options.iter().any(|x| x == o);
    let mut quoted = Vec::new();
    super::wire::string(&mut quoted, tag.as_bytes());
    let mut line = format!("* ESEARCH (TAG {})", String::from_utf8_lossy(&quoted));
    if uid {
        line.push_str(" UID");
    }
    if let (true, Some(m)) = (want("MIN"), sorted.first()) {
        line.push_str(&format!(" MIN {m}"));
    }
    if let (true, Some(m)) = (want("MAX"), sorted.last()) {
        line.push_str(&format!(" MAX {m}"));
    }
    if want("COUNT") {
        line.push_str(&format!(" COUNT {}", sorted.len()));
    }
    if want("ALL") && !sorted.is_empty() {
        line.push_str(&format!(" ALL {}", ordered_set(sorted)));
    }
    if let Some(range) = super::search::partial_option(options) {
        line.push_str(&super::search::partial_item(range, sorted, ordered_set));
    }
    if let Some(m) = modseq {
        line.push_str(&format!(" MODSEQ {m}"));
    }
    line + "\r\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_sets_keep_their_order() {
        assert_eq!(ordered_set(&[3, 4, 5, 1, 9, 8]), "3:5,1,9,8");
        assert_eq!(
            esort("a", true, &["MIN".into(), "COUNT".into()], &[7, 2, 5], None),
            "* ESEARCH (TAG \"a\") UID MIN 7 COUNT 3\r\n"
        );
        assert_eq!(
            esort("a", false, &[], &[], None),
            "* ESEARCH (TAG \"a\")\r\n"
        );
    }
}

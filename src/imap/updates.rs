//! CONTEXT=SEARCH's and CONTEXT=SORT's UPDATE (RFC 5267 section 4):
//! searches and sorts made with `RETURN (UPDATE ...)` stay live on the
//! selected folder (kept in its `View`, so SELECT, EXAMINE, CLOSE and
//! UNSELECT end them) until CANCELUPDATE. After every command the session
//! re-runs them and sends `ESEARCH ... ADDTO` / `REMOVEFROM` for what
//! entered or left the result; messages being expunged leave it just
//! before their EXPUNGE (or VANISHED) responses (`View::remove`). An
//! unsorted result names position 0 (section 4.3); a sorted one names
//! where each run of messages starts in the sort order, one ESEARCH per
//! run, removals first and each position counted after the runs before
//! it were applied, so a client that applies them in turn ends with the
//! server's order. Not re-run while IDLE.

use super::session::{Outcome, Session};
use imap_codec::imap_types::extensions::sort::SortCriterion;
use imap_codec::imap_types::search::SearchKey;
use std::collections::HashSet;
use std::io;

/// Live contexts one session keeps at most: each is re-run after every
/// command. RFC 5267 4.3.1 asks for at least one; more are refused with
/// `NO [NOUPDATE "tag"]` while the command's other results are still sent.
pub const MAX_LIVE: usize = 8;

/// The BAD text for UPDATE under a tag that already names a live context
/// (RFC 5267 4.3: tag reuse).
pub const TAG_IN_USE: &str = "tag already names a live search";

/// One search (or sort) kept up to date.
pub struct LiveSearch {
    pub tag: String,
    pub uid: bool,
    pub criteria: Vec<SearchKey<'static>>,
    /// The sort order of a SORT context; `None` for SEARCH.
    pub sort: Option<Vec<SortCriterion>>,
    /// The result last reported, as UIDs: ascending for a search, in sort
    /// order for a sort.
    pub uids: Vec<u32>,
}

/// A change to a result: `position` (1-based; 0 when unsorted) and the
/// UIDs that enter or leave there, in result order.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    pub position: u32,
    pub uids: Vec<u32>,
}

/// How `old` became `new`: the runs that left (positions counted as each
/// earlier run is already gone) and the runs that entered (positions in
/// `new`, ascending, so each insertion sees the earlier ones in place).
/// Unsorted results give at most one run each, at position 0.
pub fn diff(old: &[u32], new: &[u32], sorted: bool) -> (Vec<Run>, Vec<Run>) {
    let in_new: HashSet<u32> = new.iter().copied().collect();
    let in_old: HashSet<u32> = old.iter().copied().collect();
    let runs = |list: &[u32], keep: &HashSet<u32>, removing: bool| {
        let mut runs: Vec<Run> = Vec::new();
        // Members of `list` already left before the one at hand.
        let mut gone = 0u32;
        let mut last: Option<usize> = None;
        for (i, &u) in list.iter().enumerate() {
            if keep.contains(&u) {
                continue;
            }
            match runs.last_mut() {
                Some(run) if !sorted || last.is_some_and(|l| l + 1 == i) => run.uids.push(u),
                _ => runs.push(Run {
                    position: match (sorted, removing) {
                        (false, _) => 0,
                        (true, true) => i as u32 - gone + 1,
                        (true, false) => i as u32 + 1,
                    },
                    uids: vec![u],
                }),
            }
            last = Some(i);
            gone += 1;
        }
        runs
    };
    (runs(old, &in_new, true), runs(new, &in_old, false))
}

/// `* ESEARCH (TAG "t") [UID] ADDTO|REMOVEFROM (position set)`; `set`
/// renders the numbers (in result order for a sorted context).
pub fn update_line(tag: &str, uid: bool, what: &str, position: u32, set: &str) -> String {
    let mut quoted = Vec::new();
    super::wire::string(&mut quoted, tag.as_bytes());
    format!(
        "* ESEARCH (TAG {}){} {what} ({position} {set})\r\n",
        String::from_utf8_lossy(&quoted),
        if uid { " UID" } else { "" },
    )
}

impl LiveSearch {
    /// The ESEARCH lines for `runs` of this context, each UID shown as
    /// `number` gives it (a UID or a sequence number; runs whose messages
    /// have no number are left out).
    pub fn lines(&self, what: &str, runs: &[Run], number: impl Fn(u32) -> Option<u32>) -> String {
        let mut out = String::new();
        for run in runs {
            let numbers: Vec<u32> = run.uids.iter().filter_map(|&u| number(u)).collect();
            if numbers.is_empty() {
                continue;
            }
            let set = if self.sort.is_some() {
                super::sort::ordered_set(&numbers)
            } else {
                super::wire::sequence_set(&numbers)
            };
            out.push_str(&update_line(&self.tag, self.uid, what, run.position, &set));
        }
        out
    }

    /// Moves the context to `now`, rendering REMOVEFROM and ADDTO.
    pub fn advance(&mut self, now: Vec<u32>, number: impl Fn(u32) -> Option<u32>) -> String {
        let (removed, added) = diff(&self.uids, &now, self.sort.is_some());
        let mut out = self.lines("REMOVEFROM", &removed, &number);
        out.push_str(&self.lines("ADDTO", &added, &number));
        self.uids = now;
        out
    }
}

impl Session {
    /// The criteria to keep live when RETURN `options` ask for UPDATE;
    /// `Err` (BAD) when `tag` already names a live context (RFC 5267 4.3).
    pub fn to_keep(
        &self,
        options: Option<&[String]>,
        tag: &str,
        criteria: &[SearchKey<'static>],
    ) -> Result<Option<Vec<SearchKey<'static>>>, Outcome> {
        if !options.is_some_and(|o| o.iter().any(|x| x == "UPDATE")) {
            return Ok(None);
        }
        let in_use = self
            .view
            .as_ref()
            .is_some_and(|v| v.live.iter().any(|l| l.tag == tag));
        if in_use {
            return Err(Outcome::Bad(TAG_IN_USE.into()));
        }
        Ok(Some(criteria.to_vec()))
    }

    /// Keeps `search` live, or refuses past `MAX_LIVE` with an untagged
    /// `NO [NOUPDATE "tag"]` (RFC 5267 4.3.1).
    pub async fn keep_live(&mut self, search: LiveSearch) -> io::Result<()> {
        let Some(view) = self.view.as_mut() else {
            return Ok(());
        };
        if view.live.len() < MAX_LIVE {
            view.live.push(search);
            return Ok(());
        }
        let mut quoted = Vec::new();
        super::wire::string(&mut quoted, search.tag.as_bytes());
        let line = format!(
            "* NO [NOUPDATE {}] too many live searches\r\n",
            String::from_utf8_lossy(&quoted)
        );
        self.conn.write_buffered(line.as_bytes()).await
    }

    /// Re-runs the live searches and sorts and reports how their results
    /// changed.
    pub async fn update_live_searches(&mut self) -> io::Result<()> {
        let Some(view) = self.view.as_mut() else {
            return Ok(());
        };
        if view.live.is_empty() {
            return Ok(());
        }
        let mut live = std::mem::take(&mut view.live);
        let mut out = String::new();
        for search in &mut live {
            let Ok((positions, _)) = self.matching(None, search.criteria.clone()).await else {
                continue;
            };
            let positions = match &search.sort {
                Some(criteria) => self.sorted(criteria, &positions).await,
                None => positions,
            };
            let Some(view) = self.view.as_ref() else {
                break;
            };
            let now: Vec<u32> = positions.iter().map(|&p| view.messages[p].uid).collect();
            let uid = search.uid;
            out.push_str(&search.advance(now, |u| {
                if uid {
                    Some(u)
                } else {
                    view.position(u).map(|p| p as u32 + 1)
                }
            }));
        }
        if let Some(view) = self.view.as_mut() {
            view.live = live;
        }
        if !out.is_empty() {
            self.conn.write_buffered(out.as_bytes()).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(position: u32, uids: &[u32]) -> Run {
        Run {
            position,
            uids: uids.to_vec(),
        }
    }

    /// Applies REMOVEFROM and then ADDTO runs the way a client does.
    fn apply(old: &[u32], removed: &[Run], added: &[Run]) -> Vec<u32> {
        let mut list = old.to_vec();
        for r in removed {
            let at = r.position as usize - 1;
            assert_eq!(&list[at..at + r.uids.len()], r.uids.as_slice());
            list.drain(at..at + r.uids.len());
        }
        for r in added {
            let at = r.position as usize - 1;
            list.splice(at..at, r.uids.iter().copied());
        }
        list
    }

    #[test]
    fn unsorted_changes_are_one_run_at_zero() {
        let (removed, added) = diff(&[1, 2, 3, 5], &[1, 3, 6, 7], false);
        assert_eq!(removed, vec![run(0, &[2, 5])]);
        assert_eq!(added, vec![run(0, &[6, 7])]);
        assert_eq!(diff(&[1, 2], &[1, 2], false), (vec![], vec![]));
    }

    #[test]
    fn sorted_changes_name_their_positions() {
        // Sort order 9 4 7 2 8 -> 4 5 2 6 8 1.
        let old = [9, 4, 7, 2, 8];
        let new = [4, 5, 2, 6, 8, 1];
        let (removed, added) = diff(&old, &new, true);
        // 9 leaves at 1; then 7 is second (4 7 2 8).
        assert_eq!(removed, vec![run(1, &[9]), run(2, &[7])]);
        assert_eq!(added, vec![run(2, &[5]), run(4, &[6]), run(6, &[1])]);
        assert_eq!(apply(&old, &removed, &added), new);
        // A run of neighbours leaves (and enters) as one.
        let (removed, added) = diff(&[3, 1, 2, 5], &[3, 6, 7, 5], true);
        assert_eq!(removed, vec![run(2, &[1, 2])]);
        assert_eq!(added, vec![run(2, &[6, 7])]);
    }

    #[test]
    fn sorted_lines_keep_the_sort_order() {
        let mut live = LiveSearch {
            tag: "s1".into(),
            uid: true,
            criteria: Vec::new(),
            sort: Some(Vec::new()),
            uids: vec![5, 3],
        };
        let out = live.advance(vec![5, 9, 8, 3], Some);
        assert_eq!(out, "* ESEARCH (TAG \"s1\") UID ADDTO (2 9,8)\r\n");
        let out = live.advance(vec![3], Some);
        assert_eq!(out, "* ESEARCH (TAG \"s1\") UID REMOVEFROM (1 5,9,8)\r\n");
        assert_eq!(live.uids, vec![3]);
    }
}

//! CONTEXT=SEARCH's UPDATE (RFC 5267 section 4): searches made with
//! `SEARCH RETURN (UPDATE ...)` stay live on the selected folder (kept in
//! its `View`, so SELECT, EXAMINE, CLOSE and UNSELECT end them) until
//! CANCELUPDATE. After every command the session re-runs them and sends
//! `ESEARCH ... ADDTO` / `REMOVEFROM` for what entered or left the result;
//! messages being expunged leave it just before their EXPUNGE (or
//! VANISHED) responses (`View::remove`). Positions are 0: these are
//! unsorted results (section 4.3). Not re-run while IDLE.

use super::session::Session;
use imap_codec::imap_types::search::SearchKey;
use std::io;

/// One search kept up to date.
pub struct LiveSearch {
    pub tag: String,
    pub uid: bool,
    pub criteria: Vec<SearchKey<'static>>,
    /// The result last reported, as UIDs, ascending.
    pub uids: Vec<u32>,
}

/// `* ESEARCH (TAG "t") [UID] ADDTO|REMOVEFROM (0 set)`.
pub fn update_line(tag: &str, uid: bool, what: &str, numbers: &[u32]) -> String {
    let mut quoted = Vec::new();
    super::wire::string(&mut quoted, tag.as_bytes());
    format!(
        "* ESEARCH (TAG {}){} {what} (0 {})\r\n",
        String::from_utf8_lossy(&quoted),
        if uid { " UID" } else { "" },
        super::wire::sequence_set(numbers)
    )
}

impl Session {
    /// Re-runs the live searches and reports how their results changed.
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
            let Some(view) = self.view.as_ref() else {
                break;
            };
            let now: Vec<u32> = positions.iter().map(|&p| view.messages[p].uid).collect();
            let number = |u: &u32| {
                if search.uid {
                    Some(*u)
                } else {
                    view.position(*u).map(|p| p as u32 + 1)
                }
            };
            let removed: Vec<u32> = search
                .uids
                .iter()
                .filter(|u| now.binary_search(u).is_err())
                .filter_map(number)
                .collect();
            let added: Vec<u32> = now
                .iter()
                .filter(|u| search.uids.binary_search(u).is_err())
                .filter_map(number)
                .collect();
            if !removed.is_empty() {
                out.push_str(&update_line(
                    &search.tag,
                    search.uid,
                    "REMOVEFROM",
                    &removed,
                ));
            }
            if !added.is_empty() {
                out.push_str(&update_line(&search.tag, search.uid, "ADDTO", &added));
            }
            search.uids = now;
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

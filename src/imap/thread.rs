//! THREAD and UID THREAD (RFC 5256 section 3) for ORDEREDSUBJECT and
//! REFERENCES over the messages SEARCH would find. REFERENCES is the
//! RFC's algorithm step by step: link by References / In-Reply-To
//! (duplicate or missing Message-IDs become unique, no loops), prune
//! empty containers, sort the roots by sent date, gather roots with one
//! base subject, then sort every sibling set by sent date.

use super::session::{Outcome, Session};
use super::subject::Facts;
use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::search::SearchKey;
use std::collections::HashMap;
use std::io;

/// A node of a thread tree: a message (an index into the facts) or an
/// empty container standing for a message not in the set.
#[derive(Default, Clone)]
struct Node {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

impl Session {
    pub async fn thread(
        &mut self,
        algorithm: ThreadingAlgorithm<'static>,
        charset: Charset<'static>,
        search: Vec<SearchKey<'static>>,
        uid: bool,
    ) -> io::Result<Outcome> {
        let references = match algorithm {
            ThreadingAlgorithm::References => true,
            ThreadingAlgorithm::OrderedSubject => false,
            ThreadingAlgorithm::Other(other) => {
                return Ok(Outcome::Bad(format!(
                    "THREAD={} is not supported",
                    other.as_ref()
                )));
            }
        };
        let (positions, _) = match self.matching(Some(charset), search).await {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        let facts = self.facts(&positions).await;
        let numbers: Vec<u32> = facts.iter().map(|f| self.number(f.pos, uid)).collect();
        let (nodes, roots) = if references {
            by_references(&facts)
        } else {
            by_subject(&facts)
        };
        let mut line = String::from("* THREAD ");
        for r in roots {
            line.push('(');
            render(&nodes, r, &numbers, &mut line);
            line.push(')');
        }
        line.truncate(line.trim_end().len());
        line.push_str("\r\n");
        self.conn.write_buffered(line.as_bytes()).await?;
        Ok(Outcome::Ok("THREAD completed".into()))
    }
}

/// Renders a node as RFC 5256's thread-members / thread-nested.
fn render(nodes: &[Node], n: usize, numbers: &[u32], out: &mut String) {
    let node = &nodes[n];
    if let Some(m) = node.msg {
        out.push_str(&numbers[m].to_string());
        match node.children.as_slice() {
            [] => return,
            [only] => {
                out.push(' ');
                return render(nodes, *only, numbers, out);
            }
            _ => out.push(' '),
        }
    }
    for &c in &node.children {
        out.push('(');
        render(nodes, c, numbers, out);
        out.push(')');
    }
}

/// ORDEREDSUBJECT: one thread per base subject, the earliest message
/// first with the others as its children, threads by their first's date.
fn by_subject(facts: &[Facts]) -> (Vec<Node>, Vec<usize>) {
    let mut order: Vec<usize> = (0..facts.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&facts[a], &facts[b]);
        (&x.subject, x.date, x.pos).cmp(&(&y.subject, y.date, y.pos))
    });
    let mut nodes: Vec<Node> = (0..facts.len())
        .map(|i| Node {
            msg: Some(i),
            ..Node::default()
        })
        .collect();
    let mut roots: Vec<usize> = Vec::new();
    for i in order {
        match roots.last() {
            Some(&r) if facts[r].subject == facts[i].subject => {
                nodes[r].children.push(i);
                nodes[i].parent = Some(r);
            }
            _ => roots.push(i),
        }
    }
    roots.sort_by_key(|&r| (facts[r].date, facts[r].pos));
    (nodes, roots)
}

/// Whether `a` is `b` or lies below it.
fn under(nodes: &[Node], mut a: usize, b: usize) -> bool {
    loop {
        if a == b {
            return true;
        }
        match nodes[a].parent {
            Some(p) => a = p,
            None => return false,
        }
    }
}

fn link(nodes: &mut [Node], parent: usize, child: usize) {
    if let Some(old) = nodes[child].parent {
        nodes[old].children.retain(|&c| c != child);
    }
    nodes[child].parent = Some(parent);
    nodes[parent].children.push(child);
}

/// The date and position a node sorts by: its message's, or its first
/// child's for an empty container.
fn key(nodes: &[Node], facts: &[Facts], n: usize) -> (i64, usize) {
    match nodes[n].msg {
        Some(m) => (facts[m].date, facts[m].pos),
        None => nodes[n]
            .children
            .first()
            .map_or((i64::MAX, usize::MAX), |&c| key(nodes, facts, c)),
    }
}

fn sort_children(nodes: &mut Vec<Node>, facts: &[Facts], n: usize) {
    let mut children = std::mem::take(&mut nodes[n].children);
    for &c in &children {
        sort_children(nodes, facts, c);
    }
    children.sort_by_key(|&c| key(nodes, facts, c));
    nodes[n].children = children;
}

/// Step 3: drops empty leaves; an empty container with children gives
/// them to its parent, except at the root with more than one child.
fn prune(nodes: &mut Vec<Node>, list: Vec<usize>, root: bool, parent: Option<usize>) -> Vec<usize> {
    let mut out = Vec::new();
    for n in list {
        let children = std::mem::take(&mut nodes[n].children);
        nodes[n].children = prune(nodes, children, false, Some(n));
        if nodes[n].msg.is_none() {
            if nodes[n].children.is_empty() {
                continue;
            }
            if !root || nodes[n].children.len() == 1 {
                let promoted = std::mem::take(&mut nodes[n].children);
                for &c in &promoted {
                    nodes[c].parent = parent;
                }
                out.extend(promoted);
                continue;
            }
        }
        out.push(n);
    }
    out
}

/// REFERENCES (RFC 5256 section 3, steps 1 to 6).
fn by_references(facts: &[Facts]) -> (Vec<Node>, Vec<usize>) {
    let mut nodes: Vec<Node> = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut container = |nodes: &mut Vec<Node>, id: &str| -> usize {
        *ids.entry(id.to_string()).or_insert_with(|| {
            nodes.push(Node::default());
            nodes.len() - 1
        })
    };
    // (1) Containers and links.
    for (i, f) in facts.iter().enumerate() {
        let own = match &f.message_id {
            Some(id) => {
                let c = container(&mut nodes, id);
                if nodes[c].msg.is_none() {
                    Some(c)
                } else {
                    None
                }
            }
            None => None,
        };
        let own = own.unwrap_or_else(|| {
            nodes.push(Node::default());
            nodes.len() - 1
        });
        nodes[own].msg = Some(i);
        let refs: Vec<usize> = f
            .references
            .iter()
            .map(|r| container(&mut nodes, r))
            .collect();
        for pair in refs.windows(2) {
            let (p, c) = (pair[0], pair[1]);
            if nodes[c].parent.is_none() && !under(&nodes, p, c) {
                link(&mut nodes, p, c);
            }
        }
        if let Some(old) = nodes[own].parent.take() {
            nodes[old].children.retain(|&c| c != own);
        }
        if let Some(&last) = refs.last()
            && !under(&nodes, last, own)
        {
            link(&mut nodes, last, own);
        }
    }
    // (2) The root set; (3) pruned.
    let roots: Vec<usize> = (0..nodes.len())
        .filter(|&n| nodes[n].parent.is_none())
        .collect();
    let mut roots = prune(&mut nodes, roots, true, None);
    // (4) Roots by sent date (an empty one by its first child's).
    for &r in &roots {
        sort_children(&mut nodes, facts, r);
    }
    roots.sort_by_key(|&r| key(&nodes, facts, r));
    // (5) Gather roots by base subject.
    let subject_of = |nodes: &[Node], r: usize| -> Option<(String, bool)> {
        let m = nodes[r]
            .msg
            .or_else(|| nodes[r].children.first().and_then(|&c| nodes[c].msg))?;
        let reply = nodes[r].msg.is_some() && facts[m].reply;
        (!facts[m].subject.is_empty()).then(|| (facts[m].subject.clone(), reply))
    };
    let mut table: HashMap<String, usize> = HashMap::new();
    for &r in &roots {
        let Some((subject, reply)) = subject_of(&nodes, r) else {
            continue;
        };
        match table.get(&subject) {
            None => {
                table.insert(subject, r);
            }
            Some(&old) => {
                let old_reply = nodes[old].msg.is_some_and(|m| facts[m].reply);
                let replace = (nodes[r].msg.is_none() && nodes[old].msg.is_some())
                    || (old_reply && !reply && nodes[r].msg.is_some() && nodes[old].msg.is_some());
                if replace {
                    table.insert(subject, r);
                }
            }
        }
    }
    let mut kept: Vec<usize> = Vec::new();
    for r in roots {
        let Some((subject, reply)) = subject_of(&nodes, r) else {
            kept.push(r);
            continue;
        };
        let Some(&c) = table.get(&subject) else {
            kept.push(r);
            continue;
        };
        if c == r {
            kept.push(r);
            continue;
        }
        let (r_dummy, c_dummy) = (nodes[r].msg.is_none(), nodes[c].msg.is_none());
        let c_reply = nodes[c].msg.is_some_and(|m| facts[m].reply);
        if r_dummy && c_dummy {
            for child in std::mem::take(&mut nodes[r].children) {
                nodes[child].parent = None;
                link(&mut nodes, c, child);
            }
        } else if c_dummy {
            link(&mut nodes, c, r);
        } else if r_dummy {
            // The message goes under the empty container, which takes
            // its place among the roots.
            link(&mut nodes, r, c);
            for k in kept.iter_mut() {
                if *k == c {
                    *k = r;
                }
            }
            table.insert(subject, r);
        } else if !c_reply && reply {
            link(&mut nodes, c, r);
        } else {
            nodes.push(Node::default());
            let d = nodes.len() - 1;
            link(&mut nodes, d, c);
            link(&mut nodes, d, r);
            for k in kept.iter_mut() {
                if *k == c {
                    *k = d;
                }
            }
            table.insert(subject, d);
        }
    }
    // (6) Every sibling set by sent date.
    for &r in &kept {
        sort_children(&mut nodes, facts, r);
    }
    (nodes, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(pos: usize, date: i64, subject: &str, id: &str, refs: &[&str]) -> Facts {
        let (subject, reply) = super::super::subject::base_subject(subject);
        Facts {
            pos,
            arrival: date,
            date,
            size: 0,
            subject: subject.to_uppercase(),
            reply,
            from: String::new(),
            to: String::new(),
            cc: String::new(),
            display_from: String::new(),
            display_to: String::new(),
            message_id: Some(id.into()),
            references: refs.iter().map(|r| r.to_string()).collect(),
            dated: true,
        }
    }

    fn show(facts: &[Facts], references: bool) -> String {
        let (nodes, roots) = if references {
            by_references(facts)
        } else {
            by_subject(facts)
        };
        let numbers: Vec<u32> = (1..=facts.len() as u32).collect();
        let mut s = String::new();
        for r in roots {
            s.push('(');
            render(&nodes, r, &numbers, &mut s);
            s.push(')');
        }
        s
    }

    #[test]
    fn references_threads() {
        let facts = vec![
            fact(0, 10, "a", "1@x", &[]),
            fact(1, 20, "Re: a", "2@x", &["1@x"]),
            fact(2, 30, "Re: a", "3@x", &["1@x"]),
            fact(3, 40, "b", "4@x", &[]),
            fact(4, 50, "Re: a", "5@x", &["1@x", "2@x"]),
            // Its parent is missing: an empty container with one child
            // is replaced by the child.
            fact(5, 60, "c", "6@x", &["gone@x"]),
            // Same subject as 4, a reply: goes under 4.
            fact(6, 70, "Re: b", "7@x", &[]),
        ];
        assert_eq!(show(&facts, true), "(1 (2 5)(3))(4 7)(6)");
        assert_eq!(show(&facts, false), "(1 (2)(3)(5))(4 7)(6)");
    }

    #[test]
    fn loops_are_not_made() {
        let facts = vec![
            fact(0, 10, "x", "1@x", &["2@x"]),
            fact(1, 20, "y", "2@x", &["1@x"]),
        ];
        assert_eq!(show(&facts, true), "(2 1)");
    }
}

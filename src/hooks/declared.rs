//! Which hooks a component says it implements: the `tern:hooks` custom
//! section (hook names separated by spaces, in the component itself or in
//! any module inside it; `tern-sdk`'s `export!` writes it from the methods
//! a plugin's `#[hooks]` impl blocks define). The server calls only the
//! declared hooks of the interfaces a component exports, so a plugin that
//! implements `on-rcpt-to` alone costs nothing at connect, HELO and MAIL
//! FROM. A section at the component's top level (`sdk/declare-hooks`
//! writes one after the build, for other tool chains) overrides those of
//! the modules inside. A component without the section (built before it existed, or by
//! a tool that does not write it) gets every hook of its interfaces called.
//! Also `Skipped`: the declared hooks a plugin's configuration turns off
//! once it runs (`config.skip-hooks`).

/// The custom section's name.
pub const SECTION: &str = "tern:hooks";

/// A hook the server may skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    Connect,
    Helo,
    MailFrom,
    RcptTo,
    Data,
    Route,
    RewriteRecipient,
    Deliver,
}

impl Hook {
    pub const ALL: [Hook; 8] = [
        Hook::Connect,
        Hook::Helo,
        Hook::MailFrom,
        Hook::RcptTo,
        Hook::Data,
        Hook::Route,
        Hook::RewriteRecipient,
        Hook::Deliver,
    ];

    /// The function's name in the WIT.
    pub fn wit_name(self) -> &'static str {
        match self {
            Hook::Connect => "on-connect",
            Hook::Helo => "on-helo",
            Hook::MailFrom => "on-mail-from",
            Hook::RcptTo => "on-rcpt-to",
            Hook::Data => "on-data",
            Hook::Route => "route",
            Hook::RewriteRecipient => "rewrite-recipient",
            Hook::Deliver => "deliver",
        }
    }

    /// The hook of a WIT function name.
    pub fn named(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.wit_name() == name)
    }

    pub(super) fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// The hooks a plugin's configuration turns off (`config.skip-hooks`),
/// shared by every instance of one plugin entry; they only grow, until
/// a reload makes a new entry.
#[derive(Debug, Default)]
pub struct Skipped(std::sync::atomic::AtomicU16);

impl Skipped {
    /// Adds the named hooks; the names newly skipped (unknown names and
    /// hooks already skipped are left out).
    pub fn add<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<&'static str> {
        let bits = names
            .into_iter()
            .filter_map(Hook::named)
            .fold(0, |bits, h| bits | h.bit());
        let before = self.0.fetch_or(bits, std::sync::atomic::Ordering::Relaxed);
        Hook::ALL
            .into_iter()
            .filter(|h| bits & !before & h.bit() != 0)
            .map(Hook::wit_name)
            .collect()
    }

    pub fn skips(&self, hook: Hook) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed) & hook.bit() != 0
    }
}

/// The hooks a component declared, or `None` when it declared nothing
/// (then every hook of its exported interfaces is called).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Declared(Option<u16>);

impl Declared {
    /// Reads the `tern:hooks` sections of a component: those at its top
    /// level if any, else those of the modules inside (several are
    /// joined). Names Tern does not know are ignored: a newer SDK may
    /// declare hooks this server does not have.
    pub fn of_component(bytes: &[u8]) -> Result<Declared, String> {
        let (mut top, mut nested): (Option<u16>, Option<u16>) = (None, None);
        // Nesting: each module or component (the outer one too) opens
        // with a Version payload and closes with End.
        let mut depth = 0usize;
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            match payload.map_err(|e| e.to_string())? {
                wasmparser::Payload::Version { .. } => depth += 1,
                wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
                wasmparser::Payload::CustomSection(reader) if reader.name() == SECTION => {
                    let text = std::str::from_utf8(reader.data())
                        .map_err(|_| format!("the {SECTION} section is not UTF-8"))?;
                    let found = if depth <= 1 { &mut top } else { &mut nested };
                    *found = Some(found.unwrap_or(0) | bits_of(text));
                }
                _ => {}
            }
        }
        Ok(Declared(top.or(nested)))
    }

    /// Whether the server calls `hook` (when the interface is exported).
    pub fn calls(&self, hook: Hook) -> bool {
        self.0.is_none_or(|bits| bits & hook.bit() != 0)
    }

    /// The declared hooks' names; `None` without a declaration.
    pub fn names(&self) -> Option<Vec<&'static str>> {
        self.0.map(|_| {
            Hook::ALL
                .iter()
                .filter(|h| self.calls(**h))
                .map(|h| h.wit_name())
                .collect()
        })
    }
}

/// The hooks named in a section's text (spaces or commas between).
fn bits_of(text: &str) -> u16 {
    text.split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter_map(Hook::named)
        .fold(0, |bits, h| bits | h.bit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal component (`\0asm`, version 0x0d, layer 1) with custom sections.
    fn component(sections: &[(&str, &str)]) -> Vec<u8> {
        let mut out = b"\0asm\x0d\0\x01\0".to_vec();
        for (name, data) in sections {
            let mut body = vec![name.len() as u8];
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(data.as_bytes());
            out.push(0);
            out.push(body.len() as u8);
            out.extend(body);
        }
        out
    }

    #[test]
    fn without_a_section_every_hook_is_called() {
        let d = Declared::of_component(&component(&[("producers-ish", "x")])).unwrap();
        assert_eq!(d, Declared(None));
        assert!(Hook::ALL.iter().all(|h| d.calls(*h)));
        assert_eq!(d.names(), None);
    }

    #[test]
    fn only_declared_hooks_are_called() {
        let d = Declared::of_component(&component(&[(SECTION, "on-rcpt-to on-data future-hook ")]))
            .unwrap();
        assert!(d.calls(Hook::RcptTo) && d.calls(Hook::Data));
        assert!(!d.calls(Hook::Connect) && !d.calls(Hook::Helo) && !d.calls(Hook::MailFrom));
        assert!(!d.calls(Hook::Route));
        assert_eq!(d.names(), Some(vec!["on-rcpt-to", "on-data"]));
    }

    #[test]
    fn skipped_hooks_only_grow_and_unknown_names_are_ignored() {
        let s = Skipped::default();
        assert!(Hook::ALL.iter().all(|h| !s.skips(*h)));
        assert_eq!(
            s.add(["on-rcpt-to", "no-such-hook", "on-data"]),
            ["on-rcpt-to", "on-data"]
        );
        assert!(s.skips(Hook::RcptTo) && s.skips(Hook::Data) && !s.skips(Hook::Connect));
        assert!(s.add(["on-data"]).is_empty());
        assert_eq!(s.add(["on-connect"]), ["on-connect"]);
        assert!(s.skips(Hook::Connect) && s.skips(Hook::RcptTo));
    }

    #[test]
    fn an_empty_section_declares_no_hook_and_sections_add_up() {
        let d = Declared::of_component(&component(&[(SECTION, "")])).unwrap();
        assert_eq!(d.names(), Some(vec![]));
        let d = Declared::of_component(&component(&[(SECTION, "on-helo"), (SECTION, "route")]))
            .unwrap();
        assert_eq!(d.names(), Some(vec!["on-helo", "route"]));
    }
}

//! RFC 5321 mailbox syntax: local parts as dot-strings or quoted strings,
//! domains as names or address literals, UTF-8 (RFC 6531) only when the
//! transaction allows it. Addresses are parsed once at the door; everything
//! after works with `Address`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Domain {
    /// A domain name as written (compare case-insensitively).
    Name(String),
    /// `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
    Literal(IpAddr),
    /// `[tag:content]`.
    GeneralLiteral(String),
}

/// A mailbox: local part (unquoted) at a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    local: String,
    domain: Domain,
}

/// MAIL FROM's argument: an address, or `<>` for bounces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReversePath {
    Null,
    Mailbox(Address),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("missing @ in address")]
    MissingAt,
    #[error("empty local part")]
    EmptyLocal,
    #[error("local part longer than 64 octets")]
    LocalTooLong,
    #[error("invalid character in local part")]
    BadLocal,
    #[error("unterminated or malformed quoted local part")]
    BadQuoted,
    #[error("empty domain")]
    EmptyDomain,
    #[error("domain longer than 255 octets")]
    DomainTooLong,
    #[error("invalid domain name")]
    BadDomain,
    #[error("invalid address literal")]
    BadLiteral,
    #[error("address longer than 256 octets")]
    TooLong,
    #[error("UTF-8 in an address needs SMTPUTF8")]
    Utf8NotAllowed,
    #[error("malformed source route")]
    BadRoute,
}

fn is_atext(c: char, utf8: bool) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || (utf8 && !c.is_ascii())
}

impl Address {
    /// Parses the text between `<` and `>`. A source route (`@a,@b:`) is
    /// accepted and ignored (RFC 5321 4.1.2).
    pub fn parse(s: &str, allow_utf8: bool) -> Result<Address, AddressError> {
        if s.len() > 256 {
            return Err(AddressError::TooLong);
        }
        if !allow_utf8 && !s.is_ascii() {
            return Err(AddressError::Utf8NotAllowed);
        }
        let s = strip_route(s)?;
        let (local, rest) = parse_local(s, allow_utf8)?;
        let Some(domain_text) = rest.strip_prefix('@') else {
            return Err(AddressError::MissingAt);
        };
        let domain = parse_domain(domain_text, allow_utf8)?;
        Ok(Address { local, domain })
    }

    /// Builds an address from parts already known to be valid.
    pub fn new_unchecked(local: &str, domain: &str) -> Address {
        Address {
            local: local.to_string(),
            domain: Domain::Name(domain.to_string()),
        }
    }

    pub fn local_part(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    pub fn domain_text(&self) -> String {
        match &self.domain {
            Domain::Name(n) => n.clone(),
            Domain::Literal(IpAddr::V4(v4)) => format!("[{v4}]"),
            Domain::Literal(IpAddr::V6(v6)) => format!("[IPv6:{v6}]"),
            Domain::GeneralLiteral(g) => format!("[{g}]"),
        }
    }

    /// A name with at least two labels whose last is not all digits; literals count.
    pub fn is_fqdn(&self) -> bool {
        match &self.domain {
            Domain::Name(n) => {
                let n = n.trim_end_matches('.');
                match n.rsplit_once('.') {
                    Some((_, tld)) => !tld.is_empty() && !tld.bytes().all(|b| b.is_ascii_digit()),
                    None => false,
                }
            }
            _ => true,
        }
    }

    pub fn needs_smtputf8(&self) -> bool {
        !self.local.is_ascii() || !self.domain_text().is_ascii()
    }

    /// `local@domain` lowercased (ASCII), the key for account look-ups.
    pub fn to_lowercase_key(&self) -> String {
        format!(
            "{}@{}",
            self.local.to_lowercase(),
            self.domain_text().to_lowercase()
        )
    }
}

fn strip_route(s: &str) -> Result<&str, AddressError> {
    if !s.starts_with('@') || !s.contains(':') {
        return Ok(s);
    }
    let Some((route, rest)) = s.split_once(':') else {
        return Err(AddressError::BadRoute);
    };
    for hop in route.split(',') {
        let d = hop.strip_prefix('@').ok_or(AddressError::BadRoute)?;
        parse_domain(d, true).map_err(|_| AddressError::BadRoute)?;
    }
    Ok(rest)
}

/// Returns the local part (unquoted) and the rest of the string (from `@`).
fn parse_local(s: &str, utf8: bool) -> Result<(String, &str), AddressError> {
    if let Some(body) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    if out.len() > 64 {
                        return Err(AddressError::LocalTooLong);
                    }
                    return Ok((out, &body[i + 1..]));
                }
                '\\' => match chars.next() {
                    Some((_, e)) if (' '..='~').contains(&e) || (utf8 && !e.is_ascii()) => {
                        out.push(e)
                    }
                    _ => return Err(AddressError::BadQuoted),
                },
                c if (' '..='~').contains(&c) || (utf8 && !c.is_ascii()) => out.push(c),
                _ => return Err(AddressError::BadQuoted),
            }
        }
        return Err(AddressError::BadQuoted);
    }
    // An unquoted local part never holds '@' (it is not atext); the domain
    // may (a general address literal such as `[tag:a@b]`), so the first '@'
    // ends the local part.
    let end = s.find('@').ok_or(AddressError::MissingAt)?;
    let local = &s[..end];
    if local.is_empty() {
        return Err(AddressError::EmptyLocal);
    }
    if local.len() > 64 {
        return Err(AddressError::LocalTooLong);
    }
    for atom in local.split('.') {
        if atom.is_empty() || !atom.chars().all(|c| is_atext(c, utf8)) {
            return Err(AddressError::BadLocal);
        }
    }
    Ok((local.to_string(), &s[end..]))
}

fn parse_domain(d: &str, utf8: bool) -> Result<Domain, AddressError> {
    if d.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    if d.len() > 255 {
        return Err(AddressError::DomainTooLong);
    }
    if let Some(lit) = d.strip_prefix('[') {
        let lit = lit.strip_suffix(']').ok_or(AddressError::BadLiteral)?;
        if let Some(v6) = lit
            .strip_prefix("IPv6:")
            .or_else(|| lit.strip_prefix("ipv6:"))
        {
            return v6
                .parse::<Ipv6Addr>()
                .map(|a| Domain::Literal(IpAddr::V6(a)))
                .map_err(|_| AddressError::BadLiteral);
        }
        if let Ok(v4) = lit.parse::<Ipv4Addr>() {
            return Ok(Domain::Literal(IpAddr::V4(v4)));
        }
        if let Some((tag, content)) = lit.split_once(':') {
            let tag_ok = !tag.is_empty()
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !tag.ends_with('-');
            let content_ok = !content.is_empty()
                && content
                    .bytes()
                    .all(|b| (33..=90).contains(&b) || (94..=126).contains(&b));
            if tag_ok && content_ok {
                return Ok(Domain::GeneralLiteral(lit.to_string()));
            }
        }
        return Err(AddressError::BadLiteral);
    }
    for label in d.split('.') {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || (utf8 && !c.is_ascii());
        if label.is_empty()
            || label.len() > 63
            || !label.chars().all(ok_char)
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(AddressError::BadDomain);
        }
    }
    Ok(Domain::Name(d.to_string()))
}

/// Does this local part need quoting to be written back?
fn needs_quotes(local: &str) -> bool {
    local.is_empty()
        || local
            .split('.')
            .any(|a| a.is_empty() || !a.chars().all(|c| is_atext(c, true)))
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if needs_quotes(&self.local) {
            f.write_str("\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        } else {
            f.write_str(&self.local)?;
        }
        write!(f, "@{}", self.domain_text())
    }
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => Ok(()),
            ReversePath::Mailbox(a) => a.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_at_sign_in_a_general_literal_round_trips() {
        // Found by the `address` fuzz target: the rendering of a quoted
        // local part that needs no quotes did not parse again.
        let a = Address::parse("\"x\"@[tag:a@b]", true).unwrap();
        assert_eq!(a.to_string(), "x@[tag:a@b]");
        assert_eq!(Address::parse(&a.to_string(), true).unwrap(), a);
    }

    #[test]
    fn parses_plain_and_quoted() {
        let a = Address::parse("Alice.B@Example.Test", false).unwrap();
        assert_eq!(a.local_part(), "Alice.B");
        assert_eq!(a.to_lowercase_key(), "alice.b@example.test");
        assert!(a.is_fqdn());
        let q = Address::parse("\"john doe\"@example.test", false).unwrap();
        assert_eq!(q.local_part(), "john doe");
        assert_eq!(q.to_string(), "\"john doe\"@example.test");
        let e = Address::parse("\"a\\\"b\"@x.test", false).unwrap();
        assert_eq!(e.local_part(), "a\"b");
        assert_eq!(e.to_string(), "\"a\\\"b\"@x.test");
    }

    #[test]
    fn literals_and_routes() {
        let a = Address::parse("u@[192.0.2.1]", false).unwrap();
        assert_eq!(a.domain_text(), "[192.0.2.1]");
        let b = Address::parse("u@[IPv6:2001:db8::1]", false).unwrap();
        assert_eq!(b.domain_text(), "[IPv6:2001:db8::1]");
        assert_eq!(
            Address::parse("u@[999.1.1.1]", false),
            Err(AddressError::BadLiteral)
        );
        let r = Address::parse("@a.test,@b.test:u@c.test", false).unwrap();
        assert_eq!(r.to_string(), "u@c.test");
    }

    #[test]
    fn refuses_bad_forms() {
        assert_eq!(
            Address::parse("nobody", false),
            Err(AddressError::MissingAt)
        );
        assert_eq!(
            Address::parse("@x.test", false),
            Err(AddressError::EmptyLocal)
        );
        assert_eq!(
            Address::parse("a..b@x.test", false),
            Err(AddressError::BadLocal)
        );
        assert_eq!(
            Address::parse("a@-x.test", false),
            Err(AddressError::BadDomain)
        );
        assert_eq!(
            Address::parse("a@x..test", false),
            Err(AddressError::BadDomain)
        );
        let long = format!("{}@x.test", "a".repeat(65));
        assert_eq!(
            Address::parse(&long, false),
            Err(AddressError::LocalTooLong)
        );
        assert!(Address::parse(&format!("{}@x.test", "a".repeat(64)), false).is_ok());
        assert!(!Address::parse("a@localhost", false).unwrap().is_fqdn());
        assert!(!Address::parse("a@host.123", false).unwrap().is_fqdn());
    }

    #[test]
    fn utf8_only_when_allowed() {
        assert_eq!(
            Address::parse("用户@example.test", false),
            Err(AddressError::Utf8NotAllowed)
        );
        let a = Address::parse("用户@例子.test", true).unwrap();
        assert!(a.needs_smtputf8());
        assert_eq!(a.to_string(), "用户@例子.test");
    }
}

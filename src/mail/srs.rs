//! The Sender Rewriting Scheme (SRS), in the format of libsrs2 and postsrsd,
//! so that forwarded mail passes SPF at the next hop and its bounces find
//! their way back. `forward` rewrites a sender `local@domain` to
//! `SRS0=HHHH=TT=domain=local@ours` (HHHH: the first 4 base64 characters of
//! HMAC-SHA1 over the lower-cased time stamp, domain and local part, keyed
//! with `[relay] srs_secret`; TT: days since the epoch modulo 1024 in two
//! base32 characters); an SRS0 address from another forwarder becomes
//! `SRS1=HHHH=theirhost==HHHH=TT=domain=local@ours`, an SRS1 one keeps its
//! first host. `reverse` checks the hash (case-insensitively) and, for
//! SRS0, the age (at most 21 days), and answers the address to deliver the
//! bounce to. Pure: no I/O, the day given by the caller.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};

/// Characters of the hash kept (libsrs2's and postsrsd's default).
const HASH_LEN: usize = 4;
/// Days an SRS0 address stays valid (libsrs2's default maximum age).
pub const MAX_AGE_DAYS: u64 = 21;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const TIME_SLOTS: u64 = 1024;

/// Why an SRS address was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrsError {
    #[error("not an SRS address")]
    NotSrs,
    #[error("malformed SRS address")]
    Malformed,
    #[error("the SRS hash does not verify")]
    BadHash,
    #[error("the SRS address has expired")]
    Expired,
}

/// Rewrites and unwraps addresses with one secret.
#[derive(Clone)]
pub struct Srs {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Srs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Srs(..)")
    }
}

/// Today as SRS counts it: days since the Unix epoch.
pub fn today() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86400)
}

impl Srs {
    pub fn new(secret: &str) -> Srs {
        Srs {
            secret: secret.as_bytes().to_vec(),
        }
    }

    /// The hash of `parts`, lower-cased, as libsrs2 computes it.
    fn hash(&self, parts: &[&str]) -> String {
        let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(&self.secret) else {
            return String::new();
        };
        for p in parts {
            mac.update(p.to_ascii_lowercase().as_bytes());
        }
        let digest = mac.finalize().into_bytes();
        let mut text = base64::engine::general_purpose::STANDARD.encode(digest);
        text.truncate(HASH_LEN);
        text
    }

    /// The sender `address` rewritten into `domain` (one of ours), on `day`.
    /// The null sender and addresses without a domain stay as they are.
    pub fn forward(&self, address: &str, domain: &str, day: u64) -> String {
        let Some((local, host)) = address.rsplit_once('@') else {
            return address.to_string();
        };
        if local.is_empty() || host.eq_ignore_ascii_case(domain) && is_srs(local) {
            return address.to_string();
        }
        if strip_tag(local, "SRS0").is_some() {
            // Another forwarder's SRS0: SRS1 naming its host; the rest
            // keeps its separator (`SRS1=HHHH=host==HHHH=TT=…`).
            let rest = &local[4..];
            let hash = self.hash(&[host, rest]);
            return format!("SRS1={hash}={host}={rest}@{domain}");
        }
        if let Some(rest) = strip_tag(local, "SRS1") {
            // An SRS1 keeps its first host: rehash it for us.
            if let Some((_, tail)) = rest.split_once('=')
                && let Some((first, srs0)) = tail.split_once('=')
            {
                let hash = self.hash(&[first, srs0]);
                return format!("SRS1={hash}={first}={srs0}@{domain}");
            }
        }
        let stamp = stamp(day);
        let hash = self.hash(&[&stamp, host, local]);
        format!("SRS0={hash}={stamp}={host}={local}@{domain}")
    }

    /// The address a bounce to `local` (the local part of an SRS address
    /// of ours) goes to, on `day`.
    pub fn reverse(&self, local: &str, day: u64) -> Result<String, SrsError> {
        if let Some(rest) = strip_tag(local, "SRS0") {
            let mut f = rest.splitn(4, '=');
            let (Some(hash), Some(stamp_text), Some(host), Some(user)) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(SrsError::Malformed);
            };
            if host.is_empty() || user.is_empty() {
                return Err(SrsError::Malformed);
            }
            if !self
                .hash(&[stamp_text, host, user])
                .eq_ignore_ascii_case(hash)
            {
                return Err(SrsError::BadHash);
            }
            let then = unstamp(stamp_text).ok_or(SrsError::Malformed)?;
            let age = (day % TIME_SLOTS + TIME_SLOTS - then) % TIME_SLOTS;
            if age > MAX_AGE_DAYS {
                return Err(SrsError::Expired);
            }
            return Ok(format!("{user}@{host}"));
        }
        if let Some(rest) = strip_tag(local, "SRS1") {
            let mut f = rest.splitn(3, '=');
            let (Some(hash), Some(host), Some(srs0)) = (f.next(), f.next(), f.next()) else {
                return Err(SrsError::Malformed);
            };
            if host.is_empty() || !srs0.starts_with('=') {
                return Err(SrsError::Malformed);
            }
            if !self.hash(&[host, srs0]).eq_ignore_ascii_case(hash) {
                return Err(SrsError::BadHash);
            }
            return Ok(format!("SRS0{srs0}@{host}"));
        }
        Err(SrsError::NotSrs)
    }
}

/// Whether a local part is an SRS address (`SRS0=`/`SRS1=`, any case;
/// libsrs2 also takes `+` and `-` as the separator).
pub fn is_srs(local: &str) -> bool {
    strip_tag(local, "SRS0").is_some() || strip_tag(local, "SRS1").is_some()
}

/// The rest after `TAG` and its separator: `SRS0=rest` → `rest`.
fn strip_tag<'a>(local: &'a str, tag: &str) -> Option<&'a str> {
    let head = local.get(..tag.len())?;
    if !head.eq_ignore_ascii_case(tag) {
        return None;
    }
    let rest = &local[tag.len()..];
    let sep = rest.chars().next()?;
    matches!(sep, '=' | '+' | '-').then(|| &rest[1..])
}

fn stamp(day: u64) -> String {
    let t = day % TIME_SLOTS;
    let chars = [BASE32[((t >> 5) & 31) as usize], BASE32[(t & 31) as usize]];
    String::from_utf8_lossy(&chars).into_owned()
}

fn unstamp(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 2 {
        return None;
    }
    let val = |c: u8| {
        BASE32
            .iter()
            .position(|x| *x == c.to_ascii_uppercase())
            .map(|p| p as u64)
    };
    Some(val(b[0])? << 5 | val(b[1])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash computed independently with Python's hmac the way libsrs2
    /// does (HMAC-SHA1 over "ra" "example.net" "alice", base64, 4
    /// characters): secret "tern-test-secret", day 20000.
    #[test]
    fn forward_matches_the_libsrs2_format() {
        let srs = Srs::new("tern-test-secret");
        let day = 20000; // 20000 % 1024 = 544 = 17*32 + 0 → "RA"
        assert_eq!(stamp(day), "RA");
        let got = srs.forward("Alice@Example.NET", "fwd.test", day);
        assert_eq!(
            got,
            format!(
                "SRS0={}=RA=Example.NET=Alice@fwd.test",
                srs.hash(&["RA", "Example.NET", "Alice"])
            )
        );
        assert_eq!(got, "SRS0=GUsE=RA=Example.NET=Alice@fwd.test");
        let local = got.rsplit_once('@').map(|(l, _)| l).expect("local");
        assert_eq!(srs.reverse(local, day), Ok("Alice@Example.NET".into()));
        // The hash is checked case-insensitively, the age in days.
        assert_eq!(
            srs.reverse(&local.to_ascii_lowercase(), day + 3),
            Ok("alice@example.net".into())
        );
        assert_eq!(
            srs.reverse(local, day + MAX_AGE_DAYS + 1),
            Err(SrsError::Expired)
        );
        assert_eq!(
            srs.reverse(local, day + 1024),
            Ok("Alice@Example.NET".into()),
            "modulo 1024"
        );
        assert_eq!(
            Srs::new("other").reverse(local, day),
            Err(SrsError::BadHash)
        );
        assert_eq!(
            srs.reverse("SRS0=GUsE=RA=Example.NET=Mallory", day),
            Err(SrsError::BadHash)
        );
        assert_eq!(srs.reverse("SRS0=GUsE", day), Err(SrsError::Malformed));
        assert_eq!(srs.reverse("alice", day), Err(SrsError::NotSrs));
    }

    #[test]
    fn srs0_of_another_forwarder_becomes_srs1_and_back() {
        let srs = Srs::new("s");
        let theirs = "SRS0=abcd=RA=example.net=alice@first.test";
        let ours = srs.forward(theirs, "fwd.test", 20000);
        assert!(
            ours.starts_with("SRS1=")
                && ours.ends_with("=first.test==abcd=RA=example.net=alice@fwd.test"),
            "{ours}"
        );
        let local = ours.rsplit_once('@').map(|(l, _)| l).expect("local");
        assert_eq!(srs.reverse(local, 20000), Ok(theirs.to_string()));
        // An SRS1 from elsewhere keeps its first host.
        let again = srs.forward(
            "SRS1=zzzz=first.test==abcd=RA=example.net=alice@second.test",
            "fwd.test",
            20000,
        );
        assert_eq!(again, ours);
        // Our own SRS address is not wrapped again; <> stays.
        assert_eq!(srs.forward(&ours, "fwd.test", 20000), ours);
        assert_eq!(srs.forward("", "fwd.test", 20000), "");
    }
}

//! The wall clock as Tern's records keep it: Unix time in milliseconds
//! (leases, logins, the key-value store's expiry, decision traces, the
//! plugins' `clock` import). One reading for all of them, and no calendar
//! date worked out to get it.

/// Unix time in milliseconds (0 before 1970, which a clock set that far
/// back is the only way to get).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The same, unsigned, as the key-value store's expiry and the plugins'
/// `clock` import give it.
pub fn now_ms_unsigned() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0)
}

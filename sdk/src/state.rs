//! State of this plugin instance, kept from hook to hook, without a
//! `static` of the plugin's own: one value per type, made with
//! `Default` at first use.
//!
//! ```no_run
//! use tern_sdk::{Envelope, Policy, RcptParams, Session, Verdict, state};
//!
//! #[derive(Default)]
//! struct Seen { recipients: u32 }
//!
//! struct Counter;
//!
//! #[tern_sdk::hooks]
//! impl Policy for Counter {
//!     fn on_rcpt_to(_s: Session, _e: Envelope, _to: String, _p: RcptParams) -> Verdict {
//!         let n = state::with(|seen: &mut Seen| { seen.recipients += 1; seen.recipients });
//!         if n > 1000 { Verdict::tempfail(452, "4.5.3", "too many recipients") } else { Verdict::Continue }
//!     }
//! }
//! # tern_sdk::export!(Counter: Policy);
//! ```
//!
//! An instance serves one session at a time and may serve later sessions
//! (see the crate docs): what is kept here lasts as long as the instance,
//! which the server may throw away at any time; keep what must last in
//! [`kv`](crate::kv).

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static VALUES: RefCell<HashMap<TypeId, Box<dyn Any>>> = RefCell::new(HashMap::new());
}

/// Runs `f` on this instance's `T`. Within `f`, `with` may be called
/// for other types; for `T` itself it would see a fresh default.
pub fn with<T: Default + 'static, R>(f: impl FnOnce(&mut T) -> R) -> R {
    let taken = VALUES.with(|v| v.borrow_mut().remove(&TypeId::of::<T>()));
    let mut value: Box<T> = taken
        .and_then(|b| b.downcast::<T>().ok())
        .unwrap_or_default();
    let out = f(&mut value);
    VALUES.with(|v| v.borrow_mut().insert(TypeId::of::<T>(), value));
    out
}

/// Removes this instance's `T` (the next `with` starts from default).
pub fn take<T: Default + 'static>() -> T {
    VALUES
        .with(|v| v.borrow_mut().remove(&TypeId::of::<T>()))
        .and_then(|b| b.downcast::<T>().ok())
        .map(|b| *b)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_kept_per_type_between_calls() {
        super::with(|n: &mut u32| *n += 2);
        let n = super::with(|n: &mut u32| {
            *n += 1;
            super::with(|s: &mut String| s.push('x'));
            *n
        });
        assert_eq!(n, 3);
        assert_eq!(super::take::<String>(), "x");
        assert_eq!(super::take::<u32>(), 3);
        assert_eq!(super::with(|n: &mut u32| *n), 0);
    }
}

//! A hostile policy for the sandbox tests. At RCPT TO its behaviour follows
//! the recipient's local part: `loop` spins forever, `alloc` allocates
//! until it is stopped, `trap` panics (a trap), `bad` answers a 250 as a
//! "rejection"; anyone else passes.

use tern_sdk::{Envelope, Policy, RcptParams, Session, Verdict};

struct Hostile;

impl Policy for Hostile {
    fn on_rcpt_to(
        _session: Session,
        _envelope: Envelope,
        address: String,
        _params: RcptParams,
    ) -> Verdict {
        let local = address.split('@').next().unwrap_or("").to_string();
        match local.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("hostile plugin: deliberate trap"),
            "bad" => Verdict::reject(250, "2.0.0", "this is not a refusal"),
            _ => Verdict::Continue,
        }
    }
}

tern_sdk::export!(Hostile: Policy);

//! A filter that writes down how the message arrived, from
//! `message.arrival()`: `X-Arrival: tls=VERSION; cipher=NAME; user=LOGIN`
//! (`tls=none` for a session in clear, `user=none` without a login).

use tern_sdk::{Envelope, Filter, FilterVerdict, Message, Session};

struct ArrivalSeen;

impl Filter for ArrivalSeen {
    fn on_data(_session: Session, _envelope: Envelope, message: &Message) -> FilterVerdict {
        let arrival = message.arrival();
        let (version, cipher) = match arrival.tls {
            Some(t) => (t.version, t.cipher),
            None => ("none".to_string(), "none".to_string()),
        };
        let user = arrival.user.unwrap_or_else(|| "none".to_string());
        FilterVerdict::pass().add_header(
            "X-Arrival",
            &format!("tls={version}; cipher={cipher}; user={user}"),
        )
    }
}

tern_sdk::export!(ArrivalSeen: Filter);

//! The SDK's per-instance state and its path forms, in a real server:
//! the plugin type lives in a module and is exported by path
//! (`export!(crate::inner::Plugin: …)`); the policy counts the
//! recipients of a transaction with `tern_sdk::state::with` (no static of
//! its own), refusing the third with 452 4.5.3 and starting again at each
//! MAIL FROM; the rewrite hook is written under another name for the
//! trait (`Rewrite as Aliases`), with its old method name `rewrite`, and
//! `#[tern_sdk::hooks]` must still declare `rewrite-recipient`: it sends
//! `alias@…` to the `alias_to` config value (bob@example.test when unset);
//! the router sends recipients in `relay.test` to smarthost.test:2525.
//! The filter adds `X-Recipients-Seen: N` from the same state, and the
//! delivery hook files each account's copy in the folder `SeenN` read
//! back from that field (so it sees the filter's edit applied).

mod inner {
    use tern_sdk::Rewrite as Aliases;
    use tern_sdk::{
        Account, DeliveryAction, Destination, Envelope, Filing, FilterVerdict, MailParams,
        Message, RcptParams, Recipient, Rewritten, Session, Verdict, config, log, state,
    };

    pub struct Plugin;

    /// The recipients of the transaction in progress.
    #[derive(Default)]
    struct Recipients {
        count: u32,
    }

    #[tern_sdk::hooks]
    impl tern_sdk::Policy for Plugin {
        fn on_mail_from(_session: Session, _address: String, _params: MailParams) -> Verdict {
            state::with(|r: &mut Recipients| r.count = 0);
            Verdict::Continue
        }

        fn on_rcpt_to(
            _session: Session,
            _envelope: Envelope,
            address: String,
            _params: RcptParams,
        ) -> Verdict {
            let n = state::with(|r: &mut Recipients| {
                r.count += 1;
                r.count
            });
            log::info(&format!("recipient {n} of this transaction: {address}"));
            if n > 2 {
                return Verdict::tempfail(
                    452,
                    "4.5.3",
                    &format!("recipient {n} of this transaction: at most 2"),
                );
            }
            Verdict::Continue
        }
    }

    #[tern_sdk::hooks]
    impl Aliases for Plugin {
        fn rewrite(_envelope: Envelope, recipient: Recipient) -> Rewritten {
            match recipient.address.split_once('@') {
                Some((local, _)) if local.eq_ignore_ascii_case("alias") => {
                    let to = config::get("alias_to").unwrap_or_else(|| "bob@example.test".into());
                    Rewritten::Addresses(vec![to])
                }
                _ => Rewritten::Unchanged,
            }
        }
    }

    #[tern_sdk::hooks]
    impl tern_sdk::Filter for Plugin {
        fn on_data(_session: Session, _envelope: Envelope, _message: &Message) -> FilterVerdict {
            let n = state::with(|r: &mut Recipients| r.count);
            FilterVerdict::pass().add_header("X-Recipients-Seen", &n.to_string())
        }
    }

    #[tern_sdk::hooks]
    impl tern_sdk::Delivery for Plugin {
        fn deliver(_envelope: Envelope, _account: Account, message: &Message) -> Vec<DeliveryAction> {
            match message.header("x-recipients-seen").first() {
                Some(n) => vec![DeliveryAction::Fileinto(Filing::folder(&format!(
                    "Seen{}",
                    n.trim()
                )))],
                None => Vec::new(),
            }
        }
    }

    #[tern_sdk::hooks]
    impl tern_sdk::Router for Plugin {
        fn route(_envelope: Envelope, recipient: Recipient) -> Destination {
            match recipient.address.rsplit_once('@') {
                Some((_, domain)) if domain.eq_ignore_ascii_case("relay.test") => {
                    Destination::Smarthost("smarthost.test:2525".into())
                }
                _ => Destination::Default,
            }
        }
    }
}

tern_sdk::export!(
    crate::inner::Plugin: tern_sdk::Policy,
    tern_sdk::Rewrite,
    ::tern_sdk::Router,
    tern_sdk::Filter,
    tern_sdk::Delivery,
);

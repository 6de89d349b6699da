//! The delivery hook's smallest useful plugin: mail sent to a subaddress
//! (`bob+lists@example.test`, RFC 5233) is filed into the folder named by
//! the detail (`lists`). Config: `separator` (default `+`), `create`
//! (`yes`: make the folder when missing; default: only existing folders,
//! else the copy stays in INBOX). Mail without a detail gets no opinion.

use tern_sdk::{Account, Delivery, DeliveryAction, Envelope, Filing, Message, config, log};

struct Subaddress;

#[tern_sdk::hooks]
impl Delivery for Subaddress {
    fn deliver(_envelope: Envelope, account: Account, _message: &Message) -> Vec<DeliveryAction> {
        let separator = config::get("separator").unwrap_or_else(|| "+".into());
        let Some(detail) = detail(&account.address, &separator) else {
            return Vec::new();
        };
        log::info(&format!("{}: filing into {detail:?}", account.name));
        let mut filing = Filing::folder(detail);
        if config::get("create").is_some_and(|v| v == "yes") {
            filing = filing.creating();
        }
        vec![DeliveryAction::Fileinto(filing)]
    }
}

/// The detail of `local+detail@domain`, if any and non-empty.
fn detail<'a>(address: &'a str, separator: &str) -> Option<&'a str> {
    let (local, _) = address.rsplit_once('@')?;
    let (_, detail) = local.split_once(separator)?;
    (!detail.is_empty()).then_some(detail)
}

tern_sdk::export!(Subaddress: Delivery);

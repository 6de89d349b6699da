//! The wit-bindgen glue, hidden from plugin authors: one module for the
//! shared types and host imports, and one per hook world, so that a plugin
//! exports only the interfaces it names in `export!`. The traits of the
//! crate root are adapted to the generated `Guest` traits here.

use std::marker::PhantomData;

#[doc(hidden)]
pub use wit_bindgen::rt;

pub mod base {
    wit_bindgen::generate!({
        path: "wit",
        world: "host-imports",
        runtime_path: "tern_sdk::__bindings::rt",
    });
}

pub use base::tern::plugin::types::{
    Arrival, AuthOutcome, AuthResults, Client, DkimResult, DmarcPolicy, DmarcResult, Envelope,
    FilterAction, FilterVerdict, Header, HeaderEdit, MailParams, Message, Protocol, RcptParams,
    Recipient, Reply, Session, SpfResult, TlsInfo, Verdict,
};
pub use base::tern::plugin::{clock, config, dns, kv, log, mailbox, routing, verdicts};
pub use delivery::exports::tern::plugin::delivery::{Account, DeliveryAction, Filing};
pub use rewrite::exports::tern::plugin::rewrite::Rewritten;
pub use router::exports::tern::plugin::router::Destination;
pub use storage::exports::tern::plugin::storage::Stored;

/// One module per hook world, sharing the types and imports of `base`.
macro_rules! hook_world {
    ($module:ident, $world:literal, $export_macro:literal, $path:literal) => {
        pub mod $module {
            wit_bindgen::generate!({
                path: "wit",
                world: $world,
                runtime_path: "tern_sdk::__bindings::rt",
                with: { "tern:plugin/types@0.1.0": tern_sdk::__bindings::base::tern::plugin::types,
                        "tern:plugin/log@0.1.0": tern_sdk::__bindings::base::tern::plugin::log,
                        "tern:plugin/config@0.1.0": tern_sdk::__bindings::base::tern::plugin::config,
                        "tern:plugin/kv@0.1.0": tern_sdk::__bindings::base::tern::plugin::kv,
                        "tern:plugin/dns@0.1.0": tern_sdk::__bindings::base::tern::plugin::dns,
                        "tern:plugin/clock@0.1.0": tern_sdk::__bindings::base::tern::plugin::clock,
                        "tern:plugin/routing@0.1.0": tern_sdk::__bindings::base::tern::plugin::routing,
                        "tern:plugin/verdicts@0.1.0": tern_sdk::__bindings::base::tern::plugin::verdicts,
                        "tern:plugin/mailbox@0.1.0": tern_sdk::__bindings::base::tern::plugin::mailbox },
                pub_export_macro: true,
                export_macro_name: $export_macro,
                default_bindings_module: $path,
            });
        }
    };
}

hook_world!(
    policy,
    "policy-plugin",
    "__export_policy_world",
    "tern_sdk::__bindings::policy"
);
hook_world!(
    filter,
    "filter-plugin",
    "__export_filter_world",
    "tern_sdk::__bindings::filter"
);
hook_world!(
    router,
    "router-plugin",
    "__export_router_world",
    "tern_sdk::__bindings::router"
);
hook_world!(
    storage,
    "storage-plugin",
    "__export_storage_world",
    "tern_sdk::__bindings::storage"
);
hook_world!(
    rewrite,
    "rewrite-plugin",
    "__export_rewrite_world",
    "tern_sdk::__bindings::rewrite"
);
hook_world!(
    delivery,
    "delivery-plugin",
    "__export_delivery_world",
    "tern_sdk::__bindings::delivery"
);

/// Adapts a [`crate::Policy`] to the generated export trait.
pub struct PolicyExport<T>(PhantomData<T>);
/// Adapts a [`crate::Filter`].
pub struct FilterExport<T>(PhantomData<T>);
/// Adapts a [`crate::Router`].
pub struct RouterExport<T>(PhantomData<T>);
/// Adapts a [`crate::Storage`].
pub struct StorageExport<T>(PhantomData<T>);
/// Adapts a [`crate::Rewrite`].
pub struct RewriteExport<T>(PhantomData<T>);
/// Adapts a [`crate::Delivery`].
pub struct DeliveryExport<T>(PhantomData<T>);

impl<T: crate::Policy> policy::exports::tern::plugin::policy::Guest for PolicyExport<T> {
    fn on_connect(client: Client) -> Verdict {
        T::on_connect(client)
    }
    fn on_helo(session: Session, name: String) -> Verdict {
        T::on_helo(session, name)
    }
    fn on_mail_from(session: Session, address: String, params: MailParams) -> Verdict {
        T::on_mail_from(session, address, params)
    }
    fn on_rcpt_to(
        session: Session,
        envelope: Envelope,
        address: String,
        params: RcptParams,
    ) -> Verdict {
        T::on_rcpt_to(session, envelope, address, params)
    }
}

impl<T: crate::Filter> filter::exports::tern::plugin::filter::Guest for FilterExport<T> {
    fn on_data(session: Session, envelope: Envelope, message: &Message) -> FilterVerdict {
        T::on_data(session, envelope, message)
    }
}

impl<T: crate::Router> router::exports::tern::plugin::router::Guest for RouterExport<T> {
    fn route(envelope: Envelope, recipient: Recipient) -> Destination {
        T::route(envelope, recipient)
    }
}

impl<T: crate::Storage> storage::exports::tern::plugin::storage::Guest for StorageExport<T> {
    fn claims(mailbox: String) -> bool {
        T::claims(mailbox)
    }
    fn deliver(mailbox: String, message: &Message) -> Result<String, String> {
        T::deliver(mailbox, message)
    }
    fn list_messages(mailbox: String) -> Result<Vec<Stored>, String> {
        T::list_messages(mailbox)
    }
    fn fetch(mailbox: String, id: String, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        T::fetch(mailbox, id, offset, len)
    }
    fn delete(mailbox: String, id: String) -> Result<(), String> {
        T::delete(mailbox, id)
    }
}

impl<T: crate::Rewrite> rewrite::exports::tern::plugin::rewrite::Guest for RewriteExport<T> {
    fn rewrite_recipient(envelope: Envelope, recipient: Recipient) -> Rewritten {
        T::rewrite_recipient(envelope, recipient)
    }
}

impl<T: crate::Delivery> delivery::exports::tern::plugin::delivery::Guest for DeliveryExport<T> {
    fn deliver(envelope: Envelope, account: Account, message: &Message) -> Vec<DeliveryAction> {
        T::deliver(envelope, account, message)
    }
}

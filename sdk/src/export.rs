//! `export!`: a plugin type's hook implementations exported as the
//! component's interfaces, and the `tern:hooks` custom section that tells
//! the server which hooks the component implements (so it calls no
//! other).

/// Exports a type's hook implementations: `export!(MyPlugin: Policy, Filter);`
/// names the traits it implements; the component exports exactly those
/// interfaces, and its `tern:hooks` custom section lists the hooks the
/// server calls (those written in `#[hooks]` impl blocks; every hook of
/// a trait whose impl has no `#[hooks]`).
///
/// The type and the traits may be paths:
///
/// ```no_run
/// mod plugin {
///     pub struct Quiet;
///     impl tern_sdk::Policy for Quiet {}
///     impl tern_sdk::Filter for Quiet {}
/// }
/// tern_sdk::export!(plugin::Quiet: tern_sdk::Policy, ::tern_sdk::Filter);
/// ```
#[macro_export]
macro_rules! export {
    ($ty:ty : $($(::)? $($hook:ident)::+),+ $(,)?) => {
        $( $crate::__export_hook_path!($ty; $($hook)+); )+
        const _: () = {
            const LISTS: &[&[&str]] = &[$($crate::__implemented!($ty; $($hook)+)),+];
            const LEN: usize = $crate::__hooks_len(LISTS);
            #[unsafe(link_section = "tern:hooks")]
            #[used]
            static TERN_HOOKS: [u8; LEN] = $crate::__hooks_bytes::<LEN>(LISTS);
        };
    };
}

/// The length of the `tern:hooks` section: the names, one space after each.
#[doc(hidden)]
pub const fn __hooks_len(lists: &[&[&str]]) -> usize {
    let mut len = 0;
    let mut i = 0;
    while i < lists.len() {
        let mut j = 0;
        while j < lists[i].len() {
            len += lists[i][j].len() + 1;
            j += 1;
        }
        i += 1;
    }
    len
}

/// The `tern:hooks` section: every name followed by a space.
#[doc(hidden)]
pub const fn __hooks_bytes<const N: usize>(lists: &[&[&str]]) -> [u8; N] {
    let mut out = [b' '; N];
    let mut at = 0;
    let mut i = 0;
    while i < lists.len() {
        let mut j = 0;
        while j < lists[i].len() {
            let name = lists[i][j].as_bytes();
            let mut k = 0;
            while k < name.len() {
                out[at] = name[k];
                at += 1;
                k += 1;
            }
            at += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

/// `__export_hook!` for the last segment of a trait's path.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_hook_path {
    ($ty:ty; $hook:ident) => { $crate::__export_hook!($hook, $ty); };
    ($ty:ty; $first:ident $($rest:ident)+) => { $crate::__export_hook_path!($ty; $($rest)+); };
}

/// The `IMPLEMENTED` list of the trait a path names (its last segment).
#[doc(hidden)]
#[macro_export]
macro_rules! __implemented {
    ($ty:ty; $hook:ident) => { <$ty as $crate::$hook>::IMPLEMENTED };
    ($ty:ty; $first:ident $($rest:ident)+) => { $crate::__implemented!($ty; $($rest)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_hook {
    (Policy, $ty:ty) => {
        const _: () = {
            type __TernPolicy = $crate::PolicyExport<$ty>;
            $crate::__bindings::policy::__export_policy_world!(__TernPolicy with_types_in $crate::__bindings::policy);
        };
    };
    (Filter, $ty:ty) => {
        const _: () = {
            type __TernFilter = $crate::FilterExport<$ty>;
            $crate::__bindings::filter::__export_filter_world!(__TernFilter with_types_in $crate::__bindings::filter);
        };
    };
    (Router, $ty:ty) => {
        const _: () = {
            type __TernRouter = $crate::RouterExport<$ty>;
            $crate::__bindings::router::__export_router_world!(__TernRouter with_types_in $crate::__bindings::router);
        };
    };
    (Rewrite, $ty:ty) => {
        const _: () = {
            type __TernRewrite = $crate::RewriteExport<$ty>;
            $crate::__bindings::rewrite::__export_rewrite_world!(__TernRewrite with_types_in $crate::__bindings::rewrite);
        };
    };
    (Delivery, $ty:ty) => {
        const _: () = {
            type __TernDelivery = $crate::DeliveryExport<$ty>;
            $crate::__bindings::delivery::__export_delivery_world!(__TernDelivery with_types_in $crate::__bindings::delivery);
        };
    };
    (Storage, $ty:ty) => {
        const _: () = {
            type __TernStorage = $crate::StorageExport<$ty>;
            $crate::__bindings::storage::__export_storage_world!(__TernStorage with_types_in $crate::__bindings::storage);
        };
    };
}

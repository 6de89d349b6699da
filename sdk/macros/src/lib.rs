//! `#[tern_sdk::hooks]`: put on an `impl Policy for …` (or `Filter`,
//! `Router`, `Rewrite`, `Storage`, `Delivery`) block, it reads which methods the author
//! wrote and sets the trait's hidden `IMPLEMENTED` constant to their WIT
//! names, so that `export!` can tell the server which hooks to call (the
//! `tern:hooks` custom section). Methods left to the trait's default are
//! never called by the server. The names are told by the methods alone,
//! so the trait may be named as the author likes (`impl tern_sdk::Rewrite
//! for …`, or `use tern_sdk::Rewrite as Aliases; impl Aliases for …`).

use proc_macro::TokenStream;
use quote::quote;
use syn::{ImplItem, ItemImpl, parse_macro_input};

/// Records the hooks this impl block writes; see the crate docs.
#[proc_macro_attribute]
pub fn hooks(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let err = syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[tern_sdk::hooks] takes no arguments",
        );
        return err.to_compile_error().into();
    }
    let mut block = parse_macro_input!(item as ItemImpl);
    if block.trait_.is_none() {
        let err = syn::Error::new_spanned(
            &block.self_ty,
            "#[tern_sdk::hooks] goes on an `impl Policy for …` (Filter, Router, Rewrite, Storage, Delivery) block",
        );
        return err.to_compile_error().into();
    }
    let mut names = Vec::new();
    for item in &block.items {
        if let ImplItem::Fn(f) = item {
            names.push(wit_name(&f.sig.ident.to_string()));
        }
    }
    let constant: ImplItem = syn::parse_quote! {
        #[doc(hidden)]
        const IMPLEMENTED: &'static [&'static str] = &[#(#names),*];
    };
    block.items.push(constant);
    quote!(#block).into()
}

/// The WIT name of a trait method (`on_rcpt_to` → `on-rcpt-to`). The
/// two methods still accepted under their old names are mapped: no other
/// trait has a method so named, so the method tells the hook.
fn wit_name(method: &str) -> String {
    match method {
        "rewrite" => "rewrite-recipient".to_string(),
        "list" => "list-messages".to_string(),
        _ => method.replace('_', "-"),
    }
}

#[cfg(test)]
mod tests {
    use super::wit_name;

    #[test]
    fn methods_give_their_wit_names_whatever_the_trait_is_called() {
        assert_eq!(wit_name("on_rcpt_to"), "on-rcpt-to");
        assert_eq!(wit_name("rewrite_recipient"), "rewrite-recipient");
        assert_eq!(wit_name("rewrite"), "rewrite-recipient");
        assert_eq!(wit_name("list"), "list-messages");
        assert_eq!(wit_name("list_messages"), "list-messages");
        assert_eq!(wit_name("deliver"), "deliver");
    }
}

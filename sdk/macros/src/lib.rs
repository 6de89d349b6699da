//! `#[tern_sdk::hooks]`: put on an `impl Policy for …` (or `Filter`,
//! `Router`, `Rewrite`, `Storage`) block, it reads which methods the author
//! wrote and sets the trait's hidden `IMPLEMENTED` constant to their WIT
//! names, so that `export!` can tell the server which hooks to call (the
//! `tern:hooks` custom section). Methods left to the trait's default are
//! never called by the server.

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
    let Some((_, trait_path, _)) = &block.trait_ else {
        let err = syn::Error::new_spanned(
            &block.self_ty,
            "#[tern_sdk::hooks] goes on an `impl Policy for …` (Filter, Router, Rewrite, Storage) block",
        );
        return err.to_compile_error().into();
    };
    let trait_name = trait_path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    let mut names = Vec::new();
    for item in &block.items {
        if let ImplItem::Fn(f) = item {
            names.push(wit_name(&trait_name, &f.sig.ident.to_string()));
        }
    }
    let constant: ImplItem = syn::parse_quote! {
        #[doc(hidden)]
        const IMPLEMENTED: &'static [&'static str] = &[#(#names),*];
    };
    block.items.push(constant);
    quote!(#block).into()
}

/// The WIT name of a trait method (`on_rcpt_to` → `on-rcpt-to`; the few
/// that differ from their Rust names are mapped).
fn wit_name(trait_name: &str, method: &str) -> String {
    match (trait_name, method) {
        ("Rewrite", "rewrite") => "rewrite-recipient".to_string(),
        ("Storage", "list") => "list-messages".to_string(),
        _ => method.replace('_', "-"),
    }
}

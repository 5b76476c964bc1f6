//! The typed proxies of an actor, `CounterCall` and `CounterSend`: their names, which both
//! the struct's and the impl block's expansions use, and their definitions.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

pub(super) fn call_ident(actor: &Ident) -> Ident {
    format_ident!("{}Call", actor, span = actor.span())
}

pub(super) fn send_ident(actor: &Ident) -> Ident {
    format_ident!("{}Send", actor, span = actor.span())
}

/// `CounterCall<'r>` and `CounterSend<'r>`: what `Ref::call()` and `Ref::send()` return;
/// the impl block's expansion gives them one method per message. Their field is the
/// crate's, so that impl block may stand in another module than the struct.
pub(super) fn proxies(ident: &Ident, vis: &syn::Visibility, p: &TokenStream) -> TokenStream {
    let (call, send) = (call_ident(ident), send_ident(ident));
    let call_doc =
        format!("Synchronous calls to a [`{ident}`] in the same vat: `actor.call().method(..)`.");
    let send_doc = format!(
        "Asynchronous sends to a [`{ident}`]: `actor.send().method(..)` returns a promise."
    );
    quote! {
        #[doc = #call_doc]
        #[derive(Clone, Copy)]
        #vis struct #call<'r>(#[doc(hidden)] pub(crate) &'r #p::Ref<#ident>);

        #[doc = #send_doc]
        #[derive(Clone, Copy)]
        #vis struct #send<'r>(#[doc(hidden)] pub(crate) #p::SendTarget<'r, #ident>);

        #[automatically_derived]
        impl<'r> ::core::convert::From<&'r #p::Ref<#ident>> for #call<'r> {
            fn from(r: &'r #p::Ref<#ident>) -> Self {
                #call(r)
            }
        }

        #[automatically_derived]
        impl<'r> ::core::convert::From<#p::SendTarget<'r, #ident>> for #send<'r> {
            fn from(target: #p::SendTarget<'r, #ident>) -> Self {
                #send(target)
            }
        }
    }
}

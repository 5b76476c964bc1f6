//! Code generation. Everything generated names the runtime through
//! `::gobs_runtime::__private`, sits in `const _: () = { ... };` where it can, and puts
//! trait-bound checks on the user's own tokens (`quote_spanned!`), so an unsavable field
//! type is reported on that field.

use proc_macro2::TokenStream;
use quote::quote;
use syn::visit_mut::VisitMut;
use syn::{Ident, Type};

use crate::ast::{ActorImpl, ActorStruct, Input, Method};
use crate::check;
use crate::ctxt::Ctxt;

mod actor_impl;
mod actor_struct;
mod proxies;

use actor_impl::expand_impl;
use actor_struct::expand_struct;
use proxies::{call_ident, proxies, send_ident};

pub fn define_actor(args: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::default();
    let input = Input::parse(&cx, args, item);
    match input {
        Input::Struct(s) => {
            check::check_struct(&cx, &s);
            let p = private(s.options.krate.as_ref());
            match cx.check() {
                Ok(()) => expand_struct(&s, &p),
                Err(errors) => {
                    let errors = errors.to_compile_error();
                    let item = fallback_struct(&s, &p);
                    quote!(#item #errors)
                }
            }
        }
        Input::Impl(i) => {
            let methods_ok = check::check_impl(&cx, &i);
            let p = private(i.krate.as_ref());
            match cx.check() {
                Ok(()) => expand_impl(&i, &i.methods.iter().collect::<Vec<_>>(), &p),
                Err(errors) => {
                    let errors = errors.to_compile_error();
                    let item = fallback_impl(&i, &methods_ok, &p);
                    quote!(#item #errors)
                }
            }
        }
        Input::Other(tokens) => {
            let errors = cx.check().err().map(|e| e.to_compile_error());
            // An enum can stand in for an actor like a struct with errors does, so its impl
            // block does not add "cannot find type `NameCall`".
            let stand_in = match syn::parse2::<syn::Item>(tokens.clone()) {
                Ok(syn::Item::Enum(e)) if e.generics.params.is_empty() => {
                    stand_in(&e.ident, &e.vis, &private(None))
                }
                _ => TokenStream::new(),
            };
            quote!(#tokens #stand_in #errors)
        }
    }
}

/// The hidden module generated code reaches the runtime through: `::gobs_runtime::__private`,
/// or `<crate>::__private` with `crate = "..."`.
fn private(krate: Option<&syn::Path>) -> TokenStream {
    match krate {
        Some(path) => quote!(#path::__private),
        None => quote!(::gobs_runtime::__private),
    }
}

// Fallbacks: when a check fails, emit the user's item and just enough around it that the
// rest of their program still type-checks, so one mistake gives one error, not a cascade
// ("cannot find type `CounterCall`", "`Counter` is not a gobs actor" at every spawn, ...).

/// The struct as written (minus our attributes, borrowed field types made `'static` so a
/// `&str` field is reported once, by our check), its proxies, and a stub `Actor` impl
/// that is never run (the program does not compile) and registers nothing.
fn fallback_struct(s: &ActorStruct, p: &TokenStream) -> TokenStream {
    let mut item = s.item.clone();
    for field in item.fields.iter_mut() {
        StaticLifetimes.visit_type_mut(&mut field.ty);
    }
    if !s.item.generics.params.is_empty() {
        return quote!(#item);
    }
    let stand_in = stand_in(&item.ident, &item.vis, p);
    quote!(#item #stand_in)
}

/// For an actor whose definition failed: its proxies and a stub `Actor` impl, never run
/// (the program does not compile) and registering nothing, so that its impl block and
/// the code spawning it do not add errors of their own.
fn stand_in(ident: &Ident, vis: &syn::Visibility, p: &TokenStream) -> TokenStream {
    let (call, send) = (call_ident(ident), send_ident(ident));
    let proxies = proxies(ident, vis, p);
    quote! {
        #proxies

        #[automatically_derived]
        #[diagnostic::do_not_recommend]
        impl #p::StructDefined for #ident {}

        #[automatically_derived]
        impl #p::Actor for #ident {
            type Snapshot = ();
            type Caller<'r> = #call<'r>;
            type Sender<'r> = #send<'r>;

            fn entry() -> &'static #p::ActorEntry {
                ::core::unreachable!()
            }

            fn snapshot(&mut self) {}

            fn rollback(&mut self, _: ()) {}

            fn save(&self) -> ::core::result::Result<::std::vec::Vec<u8>, #p::Error> {
                ::core::unreachable!()
            }

            fn restore(_: u32, _: &[u8]) -> ::core::result::Result<Self, #p::Error> {
                ::core::unreachable!()
            }
        }
    }
}

/// Gives elided lifetimes in a field's type (`&str`, `&'_ T`) the `'static` lifetime.
struct StaticLifetimes;

impl VisitMut for StaticLifetimes {
    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        if r.lifetime.as_ref().is_none_or(|l| l.ident == "_") {
            r.lifetime = Some(syn::Lifetime::new("'static", r.and_token.span));
        }
        syn::visit_mut::visit_type_reference_mut(self, r);
    }
}

/// The impl block with the generated code for its good methods (the bad ones are left
/// out of the proxies and the by-name table); if the block itself is of the wrong shape,
/// the block as written and an empty `Methods` impl, so the struct still finds one.
fn fallback_impl(i: &ActorImpl, methods_ok: &[bool], p: &TokenStream) -> TokenStream {
    if check::impl_shape_ok(i) {
        let good: Vec<&Method> = i
            .methods
            .iter()
            .zip(methods_ok)
            .filter_map(|(m, ok)| ok.then_some(m))
            .collect();
        return expand_impl(i, &good, p);
    }
    let item = &i.item;
    // A trait impl is left alone: the actor may have its real impl block elsewhere, and a
    // second `Methods` impl would conflict with it.
    if i.item.trait_.is_some() || !matches!(&i.self_ty, Type::Path(p) if p.qself.is_none()) {
        return quote!(#item);
    }
    let self_ty = &i.self_ty;
    let (impl_generics, _, where_clause) = i.item.generics.split_for_impl();
    quote! {
        #item

        #[automatically_derived]
        impl #impl_generics #p::Methods for #self_ty #where_clause {}
    }
}

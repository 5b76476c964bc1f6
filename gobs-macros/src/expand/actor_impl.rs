//! The impl half: the methods' near-call and send proxies and the by-name dispatch table.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Type};

use super::proxies::{call_ident, send_ident};
use crate::ast::{ActorImpl, Method, Receiver, Ret};

/// The impl block and, for `methods`, the generated proxies and by-name table.
pub(super) fn expand_impl(i: &ActorImpl, methods: &[&Method], p: &TokenStream) -> TokenStream {
    let item = &i.item;
    let self_ty = &i.self_ty;
    let Some(actor) = last_ident(self_ty) else {
        return quote!(#item);
    };
    let (call, send) = (call_ident(&actor), send_ident(&actor));

    let call_methods = methods.iter().map(|m| call_method(m, p));
    let send_methods = methods.iter().map(|m| send_method(m, is_by_name(m), p));
    let by_name: Vec<&Method> = methods.iter().copied().filter(|m| is_by_name(m)).collect();
    let infos = by_name.iter().map(|m| {
        let name = m.ident.to_string();
        let args = signature_text(m);
        let kind = match m.receiver {
            Receiver::Write => quote!(#p::MethodKind::Write),
            _ => quote!(#p::MethodKind::Read),
        };
        let cfgs = &m.cfgs;
        quote!(#(#cfgs)* #p::MethodInfo { name: #name, args: #args, kind: #kind })
    });
    let read_arms = by_name
        .iter()
        .filter(|m| m.receiver == Receiver::Read)
        .map(|m| dispatch_arm(m, p));
    let write_arms = by_name
        .iter()
        .filter(|m| m.receiver == Receiver::Write)
        .map(|m| dispatch_arm(m, p));
    // Without the struct's attribute, `CounterCall` does not exist: rustc says "cannot find
    // type" and this check adds the fix ("add #[define_actor] to the struct").
    let actor_check = quote_spanned! {self_ty.span()=>
        const _: fn() = || {
            fn __struct_has_define_actor<T: #p::StructDefined>() {}
            __struct_has_define_actor::<#self_ty>();
        };
    };

    quote! {
        #item

        #actor_check

        // Generated proxies mirror the user's messages; lints about their shape (a `len`
        // without `is_empty`, a `new` that does not return `Self`, ...) are the user's
        // methods' business, not the proxies'.
        #[automatically_derived]
        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl<'r> #call<'r> {
            #(#call_methods)*
        }

        #[automatically_derived]
        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl<'r> #send<'r> {
            #(#send_methods)*
        }

        #[automatically_derived]
        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl #p::Methods for #self_ty {
            const METHODS: &'static [#p::MethodInfo] = &[#(#infos),*];

            #[allow(unused_variables)]
            fn dispatch_read(
                &self,
                __method: &str,
                __args: &[u8],
            ) -> ::core::result::Result<#p::Reply, #p::DispatchError> {
                match __method {
                    #(#read_arms)*
                    _ => ::core::result::Result::Err(#p::DispatchError::UnknownMethod(
                        ::std::string::ToString::to_string(__method),
                    )),
                }
            }

            #[allow(unused_variables)]
            fn dispatch_write(
                &mut self,
                __method: &str,
                __args: &[u8],
            ) -> ::core::result::Result<#p::Reply, #p::DispatchError> {
                match __method {
                    #(#write_arms)*
                    _ => ::core::result::Result::Err(#p::DispatchError::UnknownMethod(
                        ::std::string::ToString::to_string(__method),
                    )),
                }
            }
        }
    }
}

/// Whether a method is on the by-name table (callable by name, from a peer too): `pub`
/// and not `#[actor(local)]`.
fn is_by_name(m: &Method) -> bool {
    matches!(m.vis, syn::Visibility::Public(_)) && !m.options.local
}

fn last_ident(ty: &Type) -> Option<Ident> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    }
}

/// What the caller gets back: `()`, the value, or the `Ok` type of a `Result`.
fn output(m: &Method, p: &TokenStream) -> TokenStream {
    match &m.ret {
        Ret::Unit => quote!(()),
        Ret::Value(ty) => quote!(#ty),
        Ret::Result { ok: Some(ok), .. } => quote!(#ok),
        Ret::Result { ty, ok: None } => {
            quote_spanned!(ty.span()=> <#ty as #p::TurnResult>::Ok)
        }
    }
}

/// `<R as TurnResult>::into_turn`, spanned on the method's `Result` type: every use is
/// the same obligation on the same tokens, so an error type that cannot fail a turn is
/// reported once, there.
/// The whole call is spanned so that rustc, which spans an error on a call from its path
/// to its closing parenthesis, does not mix the method's tokens with the macro's.
fn into_turn(ty: &Type, value: TokenStream, p: &TokenStream) -> TokenStream {
    quote_spanned!(ty.span()=> <#ty as #p::TurnResult>::into_turn(#value))
}

fn call_method(m: &Method, p: &TokenStream) -> TokenStream {
    let (ident, vis, docs, cfgs) = (&m.ident, &m.vis, &m.docs, &m.cfg_attrs);
    let names: Vec<&Ident> = m.args.iter().map(|a| &a.name).collect();
    let tys: Vec<&Type> = m.args.iter().map(|a| &a.ty).collect();
    let out = output(m, p);
    let with = match m.receiver {
        Receiver::Write => quote!(call_mut_with),
        _ => quote!(call_with),
    };
    let body = match &m.ret {
        Ret::Result { ty, .. } => {
            let try_with = match m.receiver {
                Receiver::Write => quote!(try_call_mut_with),
                _ => quote!(try_call_with),
            };
            let into_turn = into_turn(ty, quote!(__actor.#ident(#(#names),*)), p);
            // Under a savepoint: an `Err` undoes what the call did, as a failed `$` leaves
            // no `bcom` behind in Goblins.
            quote!(self.0.#try_with(move |__actor| #into_turn))
        }
        _ => quote!(self.0.#with(move |__actor| __actor.#ident(#(#names),*))),
    };
    quote! {
        #(#docs)*
        #(#cfgs)*
        #[allow(clippy::unused_unit)]
        #vis fn #ident(self, #(#names: #tys),*) -> ::core::result::Result<#out, #p::Error> {
            #body
        }
    }
}

/// A send proxy method: the typed closure for an actor of this process, and for a
/// by-name method also the call by name an object elsewhere takes (`gobs_runtime::far`).
fn send_method(m: &Method, by_name: bool, p: &TokenStream) -> TokenStream {
    let (ident, vis, docs, cfgs) = (&m.ident, &m.vis, &m.docs, &m.cfg_attrs);
    let names: Vec<&Ident> = m.args.iter().map(|a| &a.name).collect();
    let tys: Vec<&Type> = m.args.iter().map(|a| &a.ty).collect();
    // A message answering with `Promise<T>` gives its senders a `Promise<T>`: the
    // promise of the promise is flattened.
    let (out, flatten) = match m.ret.promised() {
        Some(inner) => (quote!(#inner), quote!(.flatten())),
        None => (output(m, p), TokenStream::new()),
    };
    let span = ident.span();
    let (plain, fallible) = match m.receiver {
        Receiver::Write => (
            quote_spanned!(span=> send_mut_with),
            quote_spanned!(span=> try_send_mut_with),
        ),
        _ => (
            quote_spanned!(span=> send_with),
            quote_spanned!(span=> try_send_with),
        ),
    };
    // Spanned on the method's name: an argument or result that is not `Send` (it would
    // cross to the vat's thread) is reported there rather than on the attribute.
    let body = match &m.ret {
        Ret::Result { ty, .. } => {
            let into_turn = into_turn(ty, quote!(__actor.#ident(#(#names),*)), p);
            quote_spanned! {ident.span()=>
                self.0.#fallible(move |__actor| #into_turn)#flatten
            }
        }
        _ => quote_spanned! {ident.span()=>
            self.0.#plain(move |__actor| __actor.#ident(#(#names),*))#flatten
        },
    };
    let far = by_name.then(|| {
        let name = ident.to_string();
        quote! {
            if let ::core::option::Option::Some(__far) = self.0.far() {
                #[allow(unused_imports)]
                use #p::{FarDecode as _, FarDecodeFallback as _, FarEncode as _, FarEncodeFallback as _};
                let __args = (&&#p::FarArgs(&(#(#names,)*))).far_encode();
                let __decode = (&&#p::FarAnswer::<#out>::new()).far_decoder();
                return #p::send_far(__far, #name, __args, __decode);
            }
        }
    });
    quote! {
        #(#docs)*
        #(#cfgs)*
        #vis fn #ident(self, #(#names: #tys),*) -> #p::Promise<#out> {
            #far
            #body
        }
    }
}

fn dispatch_arm(m: &Method, p: &TokenStream) -> TokenStream {
    let ident = &m.ident;
    let name = ident.to_string();
    let expected = signature_text(m);
    let count = m.args.len() as u32;
    let names: Vec<&Ident> = m.args.iter().map(|a| &a.name).collect();
    let reads = m.args.iter().map(|a| {
        let (id, ty) = (&a.name, &a.ty);
        quote_spanned!(ty.span()=> let #id = <#ty as #p::ByNameArg>::read_arg(&mut __reader)?;)
    });
    // How to answer with a value of type `ty` held in `value`: encoded now, or, for a
    // promise, encoded once it settles.
    let answer = |value: TokenStream, ty: &Type| match m.ret.promised() {
        Some(inner) => quote_spanned!(inner.span()=> #p::reply_later::<#inner>(#name, #value)),
        None => {
            quote_spanned!(ty.span()=> #p::reply_now(<#ty as #p::ByNameResult>::encode_result(&#value)))
        }
    };
    let finish = match &m.ret {
        Ret::Unit => quote!(#p::reply_now(#p::encode_result(&__result))),
        Ret::Value(ty) => answer(quote!(__result), ty),
        Ret::Result { ty, ok } => {
            let into_turn = into_turn(ty, quote!(__result), p);
            let encode = match ok {
                Some(ok) => answer(quote!(__ok), ok),
                None => quote!(#p::reply_now(#p::encode_result(&__ok))),
            };
            quote! {
                match #into_turn {
                    ::core::result::Result::Ok(__ok) => #encode,
                    ::core::result::Result::Err(__err) => {
                        ::core::result::Result::Err(#p::DispatchError::Failed(__err))
                    }
                }
            }
        }
    };
    let cfgs = &m.cfgs;
    quote! {
        #(#cfgs)*
        #name => {
            #[allow(unused_mut)]
            let mut __reader = #p::ArgReader::new(#name, #expected, __args, #count)?;
            #(#reads)*
            __reader.finish()?;
            let __result = self.#ident(#(#names),*);
            #finish
        }
    }
}

/// `name: String, count: u32`, for error messages and `MethodInfo`.
fn signature_text(m: &Method) -> String {
    m.args
        .iter()
        .map(|a| {
            let ty = &a.ty;
            format!("{}: {}", a.name, tidy(&quote!(#ty).to_string()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Vec < u8 >` → `Vec<u8>`.
fn tidy(tokens: &str) -> String {
    tokens
        .replace(" < ", "<")
        .replace(" <", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" , ", ", ")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace("& ", "&")
}

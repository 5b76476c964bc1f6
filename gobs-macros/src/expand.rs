//! Code generation. Everything generated names the runtime through
//! `::gobs_runtime::__private`, sits in `const _: () = { ... };` where it can, and puts
//! trait-bound checks on the user's own tokens (`quote_spanned!`), so an unsavable field
//! type is reported on that field.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Ident, Type};

use crate::ast::{ActorField, ActorImpl, ActorStruct, Input, Method, Receiver, Ret};
use crate::check;
use crate::ctxt::Ctxt;

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

fn call_ident(actor: &Ident) -> Ident {
    format_ident!("{}Call", actor, span = actor.span())
}

fn send_ident(actor: &Ident) -> Ident {
    format_ident!("{}Send", actor, span = actor.span())
}

/// `CounterCall<'r>` and `CounterSend<'r>`: what `Ref::call()` and `Ref::send()` return;
/// the impl block's expansion gives them one method per message.
fn proxies(ident: &Ident, vis: &syn::Visibility, p: &TokenStream) -> TokenStream {
    let (call, send) = (call_ident(ident), send_ident(ident));
    let call_doc =
        format!("Synchronous calls to a [`{ident}`] in the same vat: `actor.call().method(..)`.");
    let send_doc = format!(
        "Asynchronous sends to a [`{ident}`]: `actor.send().method(..)` returns a promise."
    );
    quote! {
        #[doc = #call_doc]
        #[derive(Clone, Copy)]
        #vis struct #call<'r>(&'r #p::Ref<#ident>);

        #[doc = #send_doc]
        #[derive(Clone, Copy)]
        #vis struct #send<'r>(#p::SendTarget<'r, #ident>);

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

fn expand_struct(s: &ActorStruct, p: &TokenStream) -> TokenStream {
    let item = &s.item;
    let ident = &item.ident;
    let proxies = proxies(ident, &item.vis, p);
    let (call, send) = (call_ident(ident), send_ident(ident));

    let saved: Vec<&ActorField> = s.fields.iter().filter(|f| f.saved()).collect();
    let transient: Vec<&ActorField> = s.fields.iter().filter(|f| !f.saved()).collect();
    let saved_idents: Vec<&Ident> = saved.iter().map(|f| &f.ident).collect();
    let saved_tys: Vec<&Type> = saved.iter().map(|f| &f.ty).collect();
    let saved_cfgs: Vec<&[syn::Attribute]> = saved.iter().map(|f| &f.cfgs[..]).collect();
    // A field behind `#[cfg]` may not exist: the count, the snapshot and every use of a
    // field carry the field's cfgs.
    let any_cfg = saved.iter().any(|f| !f.cfgs.is_empty());
    let field_count = if any_cfg {
        quote! {{
            #[allow(unused_mut)]
            let mut __n = 0u32;
            #(#(#saved_cfgs)* { __n += 1; })*
            __n
        }}
    } else {
        let n = saved.len() as u32;
        quote!(#n)
    };

    let name = match &s.options.name {
        Some(lit) => quote!(#lit),
        None => quote!(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(#ident)
        )),
    };
    let aliases = &s.options.aliases;
    let type_name = ident.to_string();
    let line = quote_spanned!(ident.span()=> ::core::line!());

    let takes: Vec<TokenStream> = saved
        .iter()
        .map(|f| {
            let (id, ty, cfgs) = (&f.ident, &f.ty, &f.cfgs);
            let take =
                quote_spanned!(ty.span()=> <#ty as #p::SavedField>::snapshot_field(&mut self.#id));
            if any_cfg {
                quote!(#(#cfgs)* #id: #take)
            } else {
                take
            }
        })
        .collect();
    let backs: Vec<TokenStream> = saved
        .iter()
        .map(|f| {
            let (id, ty) = (&f.ident, &f.ty);
            quote_spanned!(ty.span()=> <#ty as #p::SavedField>::rollback_field(&mut self.#id, #id);)
        })
        .collect();
    let encodes = saved.iter().map(|f| {
        let (id, ty, cfgs) = (&f.ident, &f.ty, &f.cfgs);
        let encode = quote_spanned!(ty.span()=> <#ty as #p::SavedField>::encode_field(&self.#id, &mut __out, __entry)?;);
        quote!(#(#cfgs)* { #encode })
    });
    let decodes = saved.iter().map(|f| {
        let (id, ty, cfgs) = (&f.ident, &f.ty, &f.cfgs);
        let decode = quote_spanned!(ty.span()=> let #id = <#ty as #p::SavedField>::decode_field(&mut __input, __entry)?;);
        quote!(#(#cfgs)* #decode)
    });
    let transient_fields: Vec<TokenStream> = transient
        .iter()
        .map(|f| {
            let (id, cfgs, init) = (&f.ident, &f.cfgs, transient_init(f, p));
            quote!(#(#cfgs)* #id: #init)
        })
        .collect();
    // Typed through a `fn(&mut Self)` binding so a wrong signature is reported as such,
    // on the path the user wrote.
    let on_restore = s.options.on_restore.as_ref().map(|path| {
        quote_spanned! {path.span()=>
            let __on_restore: fn(&mut #ident) = #path;
            __on_restore(&mut __actor);
        }
    });
    let version = s.options.version.map_or(1, |(v, _)| v);
    let upgrade_arms = s.options.upgrades.iter().map(|u| {
        let (from, with) = (u.from, &u.with);
        // The last step must produce the current fields; earlier ones any argument list.
        // (With cfg-gated fields the current list depends on the build: left to the
        // step's own signature.)
        let output = if from + 1 == version && !any_cfg {
            quote!((#(#saved_tys,)*))
        } else {
            quote!(_)
        };
        quote_spanned!(with.span()=> #from => ::core::option::Option::Some(
            #p::upgrade_step::<_, #output, _>(__entry, #from, __args, #with)
        ),)
    });

    // The snapshot: a tuple of the saved fields, or with cfg-gated fields a struct whose
    // fields carry the same cfgs (a tuple type cannot).
    let (snapshot_def, snapshot_ty, snapshot_take, snapshot_back) = if any_cfg {
        (
            quote! {
                #[doc(hidden)]
                pub struct __Snapshot {
                    #(#(#saved_cfgs)* #saved_idents: #saved_tys,)*
                }
            },
            quote!(__Snapshot),
            quote!(__Snapshot { #(#takes,)* }),
            quote! {
                let __Snapshot { #(#(#saved_cfgs)* #saved_idents,)* } = __snapshot;
                #(#(#saved_cfgs)* { #backs })*
            },
        )
    } else {
        (
            TokenStream::new(),
            quote!((#(#saved_tys,)*)),
            quote!((#(#takes,)*)),
            quote! {
                let (#(#saved_idents,)*) = __snapshot;
                #(#backs)*
            },
        )
    };

    let constructor = constructor(s, p);

    quote! {
        #item
        #proxies
        #constructor

        #[automatically_derived]
        #[diagnostic::do_not_recommend]
        impl #p::StructDefined for #ident {}

        const _: () = {
            static __ENTRY: #p::ActorEntry = #p::ActorEntry::new::<#ident>(
                #name,
                &[#(#aliases),*],
                #version,
                #type_name,
                ::core::file!(),
                #line,
            );

            #p::inventory::submit! { #p::Registered(&__ENTRY) }

            const __FIELDS: u32 = #field_count;

            #snapshot_def

            fn __upgrade(
                __from: u32,
                __args: &[u8],
            ) -> ::core::option::Option<::core::result::Result<::std::vec::Vec<u8>, #p::Error>> {
                let __entry = &__ENTRY;
                let _ = (__entry, __args);
                match __from {
                    #(#upgrade_arms)*
                    _ => ::core::option::Option::None,
                }
            }

            #[automatically_derived]
            #[allow(clippy::unused_unit)]
            impl #p::Actor for #ident {
                type Snapshot = #snapshot_ty;
                type Caller<'r> = #call<'r>;
                type Sender<'r> = #send<'r>;

                fn entry() -> &'static #p::ActorEntry {
                    &__ENTRY
                }

                // The snapshot type is written out rather than named `Self::Snapshot`:
                // the projection would repeat the "no impl block" error once per method.
                #[allow(clippy::unused_unit)] // `()` for an actor without saved fields
                fn snapshot(&mut self) -> #snapshot_ty {
                    #snapshot_take
                }

                fn rollback(&mut self, __snapshot: #snapshot_ty) {
                    #snapshot_back
                }

                fn save(&self) -> ::core::result::Result<::std::vec::Vec<u8>, #p::Error> {
                    let __entry = &__ENTRY;
                    let mut __out = #p::begin_portrait(__FIELDS);
                    #(#encodes)*
                    ::core::result::Result::Ok(__out)
                }

                fn restore(
                    __version: u32,
                    __args: &[u8],
                ) -> ::core::result::Result<Self, #p::Error> {
                    let __entry = &__ENTRY;
                    let __upgraded = #p::upgrade(__entry, __version, __args, __upgrade)?;
                    let mut __input = #p::open_portrait(__entry, &__upgraded, __FIELDS)?;
                    #(#decodes)*
                    #p::close_portrait(__entry, __input)?;
                    #[allow(unused_mut)]
                    let mut __actor = #ident {
                        #(#(#saved_cfgs)* #saved_idents,)*
                        #(#transient_fields,)*
                    };
                    #on_restore
                    ::core::result::Result::Ok(__actor)
                }
            }
        };
    }
}

/// The initial value of a transient field, on construction and on restore.
fn transient_init(f: &ActorField, p: &TokenStream) -> TokenStream {
    let ty = &f.ty;
    match &f.options.transient {
        Some(Some(expr)) => quote_spanned!(expr.span()=> #expr),
        _ => quote_spanned!(ty.span()=>
            <#ty as #p::TransientDefault>::transient_default()
        ),
    }
}

/// `Name::new(required args)` when some fields have defaults or are transient: the
/// constructor a newcomer calls, filling the optional arguments.
fn constructor(s: &ActorStruct, p: &TokenStream) -> TokenStream {
    let has_optional = s
        .fields
        .iter()
        .any(|f| f.options.default.is_some() || !f.saved());
    if !has_optional {
        return TokenStream::new();
    }
    let ident = &s.item.ident;
    let vis = &s.item.vis;
    let required: Vec<&ActorField> = s
        .fields
        .iter()
        .filter(|f| f.saved() && f.options.default.is_none())
        .collect();
    let params = required.iter().map(|f| {
        let (id, ty, cfgs) = (&f.ident, &f.ty, &f.cfgs);
        quote!(#(#cfgs)* #id: #ty)
    });
    let inits = s.fields.iter().map(|f| {
        let (id, cfgs) = (&f.ident, &f.cfgs);
        if !f.saved() {
            let init = transient_init(f, p);
            quote!(#(#cfgs)* #id: #init)
        } else if let Some(default) = &f.options.default {
            quote_spanned!(default.span()=> #(#cfgs)* #id: #default)
        } else {
            quote!(#(#cfgs)* #id)
        }
    });
    // Named with the span of the first option that asks for it, so that a hand-written
    // `new` clashing with it is reported on that option.
    let cause = s
        .fields
        .iter()
        .find_map(|f| f.options.default_span.or(f.options.transient_span))
        .unwrap_or_else(proc_macro2::Span::call_site);
    let new = Ident::new("new", cause);
    let doc = format!(
        "Builds a `{ident}` from its required constructor arguments; optional ones take their \
         defaults (spawning actors they need in the current turn)."
    );
    let vis = respan(quote!(#vis), cause);
    let body = quote!(#ident { #(#inits),* });
    // No `Default` to go with a no-argument `new`: defaults may spawn actors, which
    // `Default::default()` callers would not expect.
    let function = quote_spanned! {cause=>
        #[doc = #doc]
        #[allow(clippy::new_without_default)]
        #vis fn #new(#(#params),*) -> Self {
            #body
        }
    };
    quote! {
        #[automatically_derived]
        impl #ident {
            #function
        }
    }
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(g) = &tree {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tree = proc_macro2::TokenTree::Group(group);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// The impl block and, for `methods`, the generated proxies and by-name table.
fn expand_impl(i: &ActorImpl, methods: &[&Method], p: &TokenStream) -> TokenStream {
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

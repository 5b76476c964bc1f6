//! The struct half: the actor's portrait (saved fields), its constructor and rehydrator,
//! its registry entry, versions and upgrade steps.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Type};

use super::proxies::{call_ident, proxies, send_ident};
use crate::ast::{ActorField, ActorStruct};

pub(super) fn expand_struct(s: &ActorStruct, p: &TokenStream) -> TokenStream {
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

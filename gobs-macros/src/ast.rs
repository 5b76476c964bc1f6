//! The typed model of what `#[define_actor]` was put on: an actor struct or its methods.

use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ImplItem, Item, Pat, ReturnType, Type, Visibility};

use crate::attr::{ActorOptions, FieldOptions, MethodOptions};
use crate::ctxt::Ctxt;

/// What the attribute was put on.
pub enum Input {
    Struct(ActorStruct),
    Impl(ActorImpl),
    /// Anything else: re-emitted as it is, beside the error.
    Other(TokenStream),
}

pub struct ActorStruct {
    /// The struct, `#[actor]` attributes removed (emitted as it is).
    pub item: syn::ItemStruct,
    pub options: ActorOptions,
    pub fields: Vec<ActorField>,
    /// `struct S(..)`: refused by a check.
    pub is_tuple: bool,
}

pub struct ActorField {
    pub ident: Ident,
    pub ty: Type,
    pub options: FieldOptions,
    /// The field's `#[cfg]`s (and `#[cfg_attr]`s reduced to their `cfg`s), repeated on
    /// every piece of generated code about the field.
    pub cfgs: Vec<syn::Attribute>,
}

impl ActorField {
    /// Saved in the portrait (not transient).
    pub fn saved(&self) -> bool {
        self.options.transient.is_none()
    }
}

pub struct ActorImpl {
    /// The impl block, `#[actor]` attributes removed (emitted as it is).
    pub item: syn::ItemImpl,
    /// The actor's type as written after `impl`.
    pub self_ty: Type,
    pub methods: Vec<Method>,
    /// Arguments given to the attribute other than `crate` (options belong on the struct).
    pub stray_args: Option<TokenStream>,
    /// `crate = "path"`: where the runtime is, for crates that re-export it.
    pub krate: Option<syn::Path>,
}

#[derive(Copy, Clone, PartialEq, Eq)]
pub enum Receiver {
    /// `&self`
    Read,
    /// `&mut self`
    Write,
    /// `self`, `mut self`, `self: Box<Self>`...
    ByValue,
}

pub struct Method {
    pub ident: Ident,
    pub vis: Visibility,
    pub sig: syn::Signature,
    /// `///` lines, copied onto the generated call and send methods.
    pub docs: Vec<syn::Attribute>,
    /// `#[cfg]`s and `#[cfg_attr]`s as written, copied onto the generated methods.
    pub cfg_attrs: Vec<syn::Attribute>,
    /// The same reduced to what decides whether the method exists, for the by-name table.
    pub cfgs: Vec<syn::Attribute>,
    pub receiver: Receiver,
    pub receiver_tokens: TokenStream,
    pub args: Vec<Arg>,
    pub ret: Ret,
    pub options: MethodOptions,
}

pub struct Arg {
    pub name: Ident,
    pub ty: Type,
}

pub enum Ret {
    /// No return type.
    Unit,
    /// A plain value.
    Value(Type),
    /// A `...Result<..>`: an `Err` fails the turn. `ok` is its first type argument when
    /// written out (`Result<T, E>`, `io::Result<T>`), so the generated code can name the
    /// success type without going through a trait projection.
    Result { ty: Type, ok: Option<Box<Type>> },
}

impl Ret {
    /// `T` when the message answers with a `Promise<T>` (or `Result<Promise<T>, E>`):
    /// its senders get a `Promise<T>`, its by-name callers `T`'s encoding.
    pub fn promised(&self) -> Option<Type> {
        match self {
            Ret::Value(ty) => promise_arg(ty),
            Ret::Result { ok: Some(ok), .. } => promise_arg(ok),
            _ => None,
        }
    }
}

/// `T` in a type whose last path segment is `Promise<T>`.
fn promise_arg(ty: &Type) -> Option<Type> {
    match ty {
        Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Promise") => {
            first_type_arg(ty)
        }
        _ => None,
    }
}

impl Input {
    pub fn parse(cx: &Ctxt, args: TokenStream, item: TokenStream) -> Input {
        match syn::parse2::<Item>(item.clone()) {
            Ok(Item::Struct(s)) => Input::Struct(ActorStruct::from_syn(cx, args, s)),
            Ok(Item::Impl(i)) => Input::Impl(ActorImpl::from_syn(cx, args, i)),
            Ok(other) => {
                let hint = match &other {
                    Item::Enum(e) => format!(
                        "; keep the enum as a field of an actor struct, e.g. \
                         `struct {0}Actor {{ state: {0} }}` (derive serde's `Serialize` and \
                         `Deserialize` on the enum)",
                        e.ident
                    ),
                    _ => String::new(),
                };
                cx.error_spanned_by(
                    item_head(&other),
                    format!(
                        "#[define_actor] goes on a struct (its fields are the saved constructor \
                         arguments) and on that struct's `impl` block (its methods are the \
                         messages){hint}"
                    ),
                );
                Input::Other(item)
            }
            Err(e) => {
                cx.syn_error(e);
                Input::Other(item)
            }
        }
    }
}

/// The tokens to point at for "wrong kind of item": its keyword and name.
fn item_head(item: &Item) -> TokenStream {
    use quote::quote;
    match item {
        Item::Enum(e) => {
            let (k, i) = (&e.enum_token, &e.ident);
            quote!(#k #i)
        }
        Item::Fn(f) => {
            let (k, i) = (&f.sig.fn_token, &f.sig.ident);
            quote!(#k #i)
        }
        Item::Trait(t) => {
            let (k, i) = (&t.trait_token, &t.ident);
            quote!(#k #i)
        }
        Item::Union(u) => {
            let (k, i) = (&u.union_token, &u.ident);
            quote!(#k #i)
        }
        other => quote::ToTokens::to_token_stream(other),
    }
}

impl ActorStruct {
    fn from_syn(cx: &Ctxt, args: TokenStream, mut item: syn::ItemStruct) -> Self {
        let options = ActorOptions::parse(cx, args);
        let is_tuple = matches!(item.fields, syn::Fields::Unnamed(_));
        let mut fields = Vec::new();
        if let syn::Fields::Named(named) = &mut item.fields {
            for f in named.named.iter_mut() {
                let options = FieldOptions::take(cx, &mut f.attrs);
                if let Some(ident) = f.ident.clone() {
                    fields.push(ActorField {
                        ident,
                        ty: f.ty.clone(),
                        options,
                        cfgs: cfgs(cx, &f.attrs),
                    });
                }
            }
        }
        ActorStruct {
            item,
            options,
            fields,
            is_tuple,
        }
    }
}

impl ActorImpl {
    fn from_syn(cx: &Ctxt, args: TokenStream, mut item: syn::ItemImpl) -> Self {
        let mut methods = Vec::new();
        for impl_item in item.items.iter_mut() {
            if let ImplItem::Fn(f) = impl_item {
                let options = MethodOptions::take(cx, &mut f.attrs);
                if let Some(mut m) = Method::from_syn(f, options) {
                    m.cfgs = cfgs(cx, &f.attrs);
                    methods.push(m);
                }
            }
        }
        let (krate, stray_args) = crate::attr::impl_args(cx, args);
        ActorImpl {
            self_ty: (*item.self_ty).clone(),
            item,
            methods,
            stray_args,
            krate,
        }
    }
}

impl Method {
    /// A method with a `self` receiver; `None` for associated functions (not messages).
    fn from_syn(f: &syn::ImplItemFn, options: MethodOptions) -> Option<Method> {
        let mut inputs = f.sig.inputs.iter();
        let FnArg::Receiver(recv) = inputs.next()? else {
            return None;
        };
        let receiver = match (&recv.reference, &recv.mutability, recv.colon_token) {
            (Some(_), None, None) => Receiver::Read,
            (Some(_), Some(_), None) => Receiver::Write,
            _ => Receiver::ByValue,
        };
        let args = inputs
            .enumerate()
            .filter_map(|(i, arg)| match arg {
                FnArg::Typed(pt) => Some(Arg {
                    name: match &*pt.pat {
                        Pat::Ident(p) if p.subpat.is_none() => p.ident.clone(),
                        _ => quote::format_ident!("__arg{}", i, span = pt.pat.span()),
                    },
                    ty: (*pt.ty).clone(),
                }),
                FnArg::Receiver(_) => None,
            })
            .collect();
        let ret = match &f.sig.output {
            ReturnType::Default => Ret::Unit,
            ReturnType::Type(_, ty) if is_result(ty) => Ret::Result {
                ty: (**ty).clone(),
                ok: first_type_arg(ty).map(Box::new),
            },
            ReturnType::Type(_, ty) => Ret::Value((**ty).clone()),
        };
        Some(Method {
            ident: f.sig.ident.clone(),
            vis: f.vis.clone(),
            sig: f.sig.clone(),
            docs: f
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("doc"))
                .cloned()
                .collect(),
            cfg_attrs: f
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
                .cloned()
                .collect(),
            cfgs: Vec::new(),
            receiver,
            receiver_tokens: quote::ToTokens::to_token_stream(recv),
            args,
            ret,
            options,
        })
    }
}

/// A type whose last path segment is `Result` (`Result<T, E>`, `io::Result<T>`, ...).
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        _ => false,
    }
}

/// `T` in `Result<T, ..>`.
fn first_type_arg(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let syn::PathArguments::AngleBracketed(args) = &p.path.segments.last()?.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

/// What decides whether an item exists: its `#[cfg]`s, and its `#[cfg_attr]`s reduced to
/// the `cfg`s inside them (`#[cfg_attr(test, cfg(feature = "x"))]` is a cfg too). A
/// `#[cfg_attr(.., actor(..))]` is refused: the expansion must know the item's options.
fn cfgs(cx: &Ctxt, attrs: &[syn::Attribute]) -> Vec<syn::Attribute> {
    use syn::punctuated::Punctuated;
    let mut out = Vec::new();
    for attr in attrs {
        if attr.path().is_ident("cfg") {
            out.push(attr.clone());
        } else if attr.path().is_ident("cfg_attr") {
            let parsed = attr.parse_args_with(|input: syn::parse::ParseStream<'_>| {
                let predicate: syn::Meta = input.parse()?;
                input.parse::<syn::Token![,]>()?;
                let metas = Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated(input)?;
                Ok((predicate, metas))
            });
            let Ok((predicate, metas)) = parsed else {
                // Not ours to judge: rustc reports a malformed `cfg_attr` itself.
                continue;
            };
            for meta in &metas {
                if meta.path().is_ident("actor") {
                    cx.error_spanned_by(
                        meta,
                        "`#[actor(...)]` cannot sit inside `#[cfg_attr]`: #[define_actor] \
                         must know the options in every configuration. Write two \
                         `#[cfg]`-gated versions of the item instead",
                    );
                }
            }
            let kept: Vec<&syn::Meta> = metas.iter().filter(|m| m.path().is_ident("cfg")).collect();
            if !kept.is_empty() {
                let pound = attr.pound_token;
                out.push(syn::parse_quote!(#pound[cfg_attr(#predicate, #(#kept),*)]));
            }
        }
    }
    out
}

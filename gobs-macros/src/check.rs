//! Validation: one `check_*` per rule, each error on the tokens that break it.

use std::collections::HashMap;

use syn::Type;

use crate::ast::{ActorImpl, ActorStruct, Receiver, Ret};
use crate::ctxt::Ctxt;

pub fn check_struct(cx: &Ctxt, s: &ActorStruct) {
    check_named_fields(cx, s);
    check_not_generic(cx, &s.item.generics);
    check_fields_owned(cx, s);
    check_field_options(cx, s);
    check_versions(cx, s);
    check_names(cx, s);
}

/// Checks an impl block; returns, per method, whether it passed (the fallback expansion
/// keeps the methods that did, so one bad method does not hide the others).
pub fn check_impl(cx: &Ctxt, i: &ActorImpl) -> Vec<bool> {
    check_no_impl_options(cx, i);
    check_inherent_impl(cx, i);
    if !impl_shape_ok(i) {
        // Not an actor's own impl block: its methods are not messages, so checking them as
        // messages would only repeat the error above.
        return vec![false; i.methods.len()];
    }
    i.methods
        .iter()
        .map(|m| {
            let before = cx.error_count();
            check_receiver(cx, m);
            check_plain_signature(cx, m);
            for arg in &m.args {
                check_owned(
                    cx,
                    &arg.ty,
                    "message arguments are owned (a message may cross vats)",
                );
            }
            if let Ret::Value(ty) | Ret::Result { ty, .. } = &m.ret {
                check_owned(
                    cx,
                    ty,
                    "message results are owned (an answer may cross vats)",
                );
            }
            cx.error_count() == before
        })
        .collect()
}

/// Whether the impl block is one the full expansion can work with: an inherent,
/// non-generic impl of a plain type name.
pub fn impl_shape_ok(i: &ActorImpl) -> bool {
    i.item.trait_.is_none()
        && i.item.generics.params.is_empty()
        && matches!(&i.self_ty, Type::Path(p) if p.qself.is_none())
}

fn check_named_fields(cx: &Ctxt, s: &ActorStruct) {
    if s.is_tuple {
        cx.error_spanned_by(
            &s.item.fields,
            "an actor's fields are its named constructor arguments: write `struct Name { field: Type }` instead of a tuple struct",
        );
    }
}

fn check_not_generic(cx: &Ctxt, generics: &syn::Generics) {
    if !generics.params.is_empty() {
        cx.error_spanned_by(
            generics,
            "actors cannot be generic: each actor type needs one registry name to be restored by; \
             define a concrete type for each instantiation",
        );
    }
}

fn check_fields_owned(cx: &Ctxt, s: &ActorStruct) {
    for f in &s.fields {
        check_owned(
            cx,
            &f.ty,
            "actor fields are owned: a portrait cannot save a borrowed reference",
        );
    }
}

/// Refuses `&T` and `impl Trait` anywhere in `ty`.
fn check_owned(cx: &Ctxt, ty: &Type, why: &str) {
    match ty {
        Type::Reference(r) => cx.error_spanned_by(
            r,
            format!("{why}; use an owned type (`String` for `&str`, `Vec<T>` for `&[T]`, a `Ref<_>` for another actor)"),
        ),
        Type::ImplTrait(t) => cx.error_spanned_by(t, format!("{why}; `impl Trait` is not allowed here: name a concrete type")),
        Type::Path(p) => {
            for seg in &p.path.segments {
                if let syn::PathArguments::AngleBracketed(args) = &seg.arguments {
                    for a in &args.args {
                        if let syn::GenericArgument::Type(inner) = a {
                            check_owned(cx, inner, why);
                        }
                    }
                }
            }
        }
        Type::Tuple(t) => t.elems.iter().for_each(|e| check_owned(cx, e, why)),
        Type::Array(a) => check_owned(cx, &a.elem, why),
        Type::Slice(s) => check_owned(cx, &s.elem, why),
        Type::Paren(p) => check_owned(cx, &p.elem, why),
        _ => {}
    }
}

fn check_field_options(cx: &Ctxt, s: &ActorStruct) {
    for f in &s.fields {
        if let (Some(default), Some(_)) = (&f.options.default, &f.options.transient) {
            cx.error_spanned_by(
                default,
                "a transient field is not a constructor argument: give its initial value with `#[actor(transient = expr)]` instead of `default`",
            );
        }
    }
}

fn check_versions(cx: &Ctxt, s: &ActorStruct) {
    let o = &s.options;
    let Some((version, _)) = o.version else {
        if let Some(first) = o.upgrades.first() {
            cx.syn_error(syn::Error::new(
                first.key_span,
                "upgrade steps need the actor's current version: add `version = N` (N greater than every `from`)",
            ));
        }
        return;
    };
    let mut seen: HashMap<u32, ()> = HashMap::new();
    for u in &o.upgrades {
        if seen.insert(u.from, ()).is_some() {
            cx.syn_error(syn::Error::new(
                u.from_span,
                format!("two upgrade steps from version {}: each older version has exactly one step (to version {})", u.from, u.from + 1),
            ));
        }
        if u.from == 0 {
            cx.syn_error(syn::Error::new(u.from_span, "versions start at 1"));
        } else if u.from >= version {
            let older = match version {
                1 => "it has no older versions".to_string(),
                2 => "its only older version is 1".to_string(),
                v => format!("its older versions are 1 to {}", v - 1),
            };
            cx.syn_error(syn::Error::new(
                u.from_span,
                format!(
                    "no upgrade step can start at version {}: this actor is at version {version} and {older}; \
                     a step upgrades portraits of an older version to the next one. \
                     To change the fields of version {version}, raise `version` to {} and add `upgrade(from = {version}, ...)`",
                    u.from,
                    version + 1,
                ),
            ));
        }
    }
}

fn check_names(cx: &Ctxt, s: &ActorStruct) {
    if let Some(name) = &s.options.name
        && name.value().trim().is_empty()
    {
        cx.error_spanned_by(name, "an actor's registry name cannot be empty");
    }
    let mut seen = HashMap::new();
    let own = s.options.name.as_ref().map(|n| n.value());
    for alias in &s.options.aliases {
        let v = alias.value();
        if own.as_deref() == Some(v.as_str()) || seen.insert(v, ()).is_some() {
            cx.error_spanned_by(
                alias,
                "this alias repeats the actor's name or another alias",
            );
        }
    }
}

fn check_no_impl_options(cx: &Ctxt, i: &ActorImpl) {
    if let Some(args) = &i.stray_args {
        cx.error_spanned_by(
            args,
            "options go on the struct (`#[define_actor(name = \"...\")] struct ...`); the impl block takes only `crate = \"...\"`",
        );
    }
}

fn check_inherent_impl(cx: &Ctxt, i: &ActorImpl) {
    if let Some((_, path, _)) = &i.item.trait_ {
        cx.error_spanned_by(
            path,
            "#[define_actor] goes on the actor's own `impl Name { ... }` block, not on a trait impl",
        );
    }
    check_not_generic(cx, &i.item.generics);
    if !matches!(&i.self_ty, Type::Path(p) if p.qself.is_none()) {
        cx.error_spanned_by(&i.self_ty, "expected the actor's type name");
    }
}

fn check_receiver(cx: &Ctxt, m: &crate::ast::Method) {
    if m.receiver == Receiver::ByValue {
        cx.error_spanned_by(
            &m.receiver_tokens,
            "a message takes `&self` (it reads the actor) or `&mut self` (it changes it); \
             `self` by value would consume the actor",
        );
    }
}

fn check_plain_signature(cx: &Ctxt, m: &crate::ast::Method) {
    if let Some(a) = &m.sig.asyncness {
        cx.error_spanned_by(
            a,
            "messages are not async: a turn never blocks, and a message cannot hold `&self` across an `.await`. \
             Return a `Promise` for work that finishes later: `gobs_runtime::task(async move { .. })` runs \
             straight-line code across promises, each stretch between `.await`s a turn of its own",
        );
    }
    if !m.sig.generics.params.is_empty() {
        cx.error_spanned_by(
            &m.sig.generics,
            "message methods cannot be generic: a message may cross vats and be called by name, so its types must be concrete",
        );
    }
    if m.sig.variadic.is_some() || m.sig.abi.is_some() {
        cx.error_spanned_by(&m.sig, "message methods are plain Rust methods");
    }
}

//! The macro's options: on the struct (`#[define_actor(...)]`), on fields and methods
//! (`#[actor(...)]`).

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Expr, Lit, LitInt, LitStr, Path};

use crate::ctxt::Ctxt;

const STRUCT_KEYS: &str = "name, aliases, version, upgrade, on_restore, crate";

/// One `upgrade(from = N, with = path)` step.
pub struct Upgrade {
    /// The `upgrade` key, for errors about the step as a whole.
    pub key_span: Span,
    pub from: u32,
    pub from_span: Span,
    pub with: Path,
}

/// `#[define_actor(...)]` on a struct.
#[derive(Default)]
pub struct ActorOptions {
    pub name: Option<LitStr>,
    pub aliases: Vec<LitStr>,
    pub version: Option<(u32, Span)>,
    pub upgrades: Vec<Upgrade>,
    pub on_restore: Option<Path>,
    /// `crate = "path"`: where the runtime is, for crates that re-export it.
    pub krate: Option<Path>,
    /// Set if `aliases` was given (even empty), to catch duplicates.
    aliases_span: Option<Span>,
}

impl ActorOptions {
    pub fn parse(cx: &Ctxt, args: TokenStream) -> Self {
        let mut options = ActorOptions::default();
        if args.is_empty() {
            return options;
        }
        // Each option's mistakes are recorded and parsing goes on, so that one bad option
        // does not hide the others (a `version` after a misspelled key would otherwise be
        // lost, and its `upgrade` steps reported as lacking one).
        let parser = syn::meta::parser(|meta| {
            let key = meta.path.clone();
            if key.is_ident("name") {
                match string_value(&meta)? {
                    Ok(lit) => {
                        if options.name.is_some() {
                            cx.error_spanned_by(&key, "duplicate `name` option");
                        }
                        options.name = Some(lit);
                    }
                    Err(e) => cx.syn_error(e),
                }
            } else if key.is_ident("aliases") {
                let value: Expr = meta.value()?.parse()?;
                if options.aliases_span.is_some() {
                    cx.error_spanned_by(&key, "duplicate `aliases` option");
                }
                options.aliases_span = Some(key.span());
                let Expr::Array(array) = value else {
                    cx.error_spanned_by(
                        value,
                        "`aliases` takes a list of string literals: `aliases = [\"old::path::Name\"]`",
                    );
                    return Ok(());
                };
                for elem in array.elems {
                    match elem {
                        Expr::Lit(syn::ExprLit {
                            lit: Lit::Str(s), ..
                        }) => options.aliases.push(s),
                        other => cx.error_spanned_by(
                            other,
                            "aliases are string literals: `aliases = [\"old::path::Name\"]`",
                        ),
                    }
                }
            } else if key.is_ident("version") {
                let value: Expr = meta.value()?.parse()?;
                let version = match &value {
                    Expr::Lit(syn::ExprLit {
                        lit: Lit::Int(lit), ..
                    }) => lit.base10_parse::<u32>().ok().map(|v| (v, lit.span())),
                    _ => None,
                };
                let Some((v, span)) = version else {
                    cx.error_spanned_by(value, "`version` takes a whole number: `version = 2`");
                    return Ok(());
                };
                if v == 0 {
                    cx.error_spanned_by(&value, "versions start at 1");
                }
                if options.version.is_some() {
                    cx.error_spanned_by(&key, "duplicate `version` option");
                }
                options.version = Some((v, span));
            } else if key.is_ident("upgrade") {
                options.upgrades.extend(parse_upgrade(cx, &meta)?);
            } else if key.is_ident("crate") {
                match crate_path(cx, &meta)? {
                    Some(path) if options.krate.is_some() => {
                        cx.error_spanned_by(&key, "duplicate `crate` option");
                        options.krate = Some(path);
                    }
                    path => options.krate = options.krate.take().or(path),
                }
            } else if key.is_ident("on_restore") {
                let value: Expr = meta.value()?.parse()?;
                let Expr::Path(syn::ExprPath { path, .. }) = value else {
                    cx.error_spanned_by(
                        value,
                        "`on_restore` takes the path of a `fn(&mut Self)`: `on_restore = reconnect`",
                    );
                    return Ok(());
                };
                if options.on_restore.is_some() {
                    cx.error_spanned_by(&key, "duplicate `on_restore` option");
                }
                options.on_restore = Some(path);
            } else {
                cx.error_spanned_by(
                    &key,
                    format!(
                        "unknown define_actor option `{}`; expected one of: {STRUCT_KEYS}",
                        path_text(&key)
                    ),
                );
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = syn::parse::Parser::parse2(parser, args) {
            cx.syn_error(e);
        }
        options
    }
}

/// `crate = "path"`, the path parsed; `None` (error recorded) if it is not one.
fn crate_path(cx: &Ctxt, meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Option<Path>> {
    Ok(match string_value(meta)? {
        Ok(lit) => match lit.parse::<Path>() {
            Ok(path) => Some(path),
            Err(_) => {
                cx.error_spanned_by(
                    &lit,
                    "`crate` takes the path the runtime is re-exported at, like `crate = \"my_crate::gobs\"`",
                );
                None
            }
        },
        Err(e) => {
            cx.syn_error(e);
            None
        }
    })
}

/// The impl block's arguments: `crate = "path"` (the only one it takes), and the rest
/// for the "options go on the struct" error.
pub fn impl_args(cx: &Ctxt, args: TokenStream) -> (Option<Path>, Option<TokenStream>) {
    if args.is_empty() {
        return (None, None);
    }
    let mut krate = None;
    let mut stray = false;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate = crate_path(cx, &meta)?;
        } else {
            stray = true;
            skip_value(&meta)?;
        }
        Ok(())
    });
    if syn::parse::Parser::parse2(parser, args.clone()).is_err() {
        stray = true;
    }
    (krate, stray.then_some(args))
}

/// Consumes an unknown option's `= value` or `(...)`, so parsing can go on after it.
fn skip_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _content;
        syn::parenthesized!(_content in meta.input);
    }
    Ok(())
}

/// One `upgrade(from = N, with = path)`; `None` (with the error recorded) if it is wrong.
fn parse_upgrade(cx: &Ctxt, meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Option<Upgrade>> {
    let mut from = None;
    let mut with = None;
    let mut unknown = false;
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("from") {
            let lit: LitInt = inner.value()?.parse()?;
            from = Some((lit.base10_parse::<u32>()?, lit.span()));
        } else if inner.path.is_ident("with") {
            with = Some(inner.value()?.parse::<Path>()?);
        } else {
            cx.error_spanned_by(
                &inner.path,
                format!(
                    "unknown upgrade key `{}`; write `upgrade(from = 1, with = path::to::fn)`",
                    path_text(&inner.path)
                ),
            );
            unknown = true;
            skip_value(&inner)?;
        }
        Ok(())
    })?;
    match (from, with) {
        (Some((from, from_span)), Some(with)) => Ok(Some(Upgrade {
            key_span: meta.path.span(),
            from,
            from_span,
            with,
        })),
        // The unknown key was probably meant as the missing one: one error is enough.
        _ if unknown => Ok(None),
        _ => {
            cx.error_spanned_by(
                &meta.path,
                "an upgrade step needs both keys: `upgrade(from = 1, with = path::to::fn)`",
            );
            Ok(None)
        }
    }
}

/// `key = "literal"`: the outer error is a syntax error (stop), the inner one a value of
/// the wrong kind (record it and go on).
fn string_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<syn::Result<LitStr>> {
    let value = meta.value()?;
    let expr: Expr = value.parse()?;
    Ok(match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{}` takes a string literal, like `name = \"my_crate::Counter\"`",
                path_text(&meta.path)
            ),
        )),
    })
}

pub fn path_text(path: &Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// `#[actor(...)]` on a field.
#[derive(Default)]
pub struct FieldOptions {
    /// `default = expr`: an optional constructor argument.
    pub default: Option<Expr>,
    pub default_span: Option<Span>,
    /// `transient` (Some(None)) or `transient = expr` (Some(Some(expr))): not saved.
    pub transient: Option<Option<Expr>>,
    pub transient_span: Option<Span>,
}

/// `#[actor(...)]` on a method.
#[derive(Default)]
pub struct MethodOptions {
    /// `local`: not callable by name (its arguments need not be serializable).
    pub local: bool,
}

/// Takes the `#[actor(...)]` attributes out of `attrs`, parsing them with `f`.
pub fn take_actor_attrs(
    cx: &Ctxt,
    attrs: &mut Vec<syn::Attribute>,
    mut f: impl FnMut(syn::meta::ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        if attr.path().is_ident("actor") {
            if let Err(e) = attr.parse_nested_meta(&mut f) {
                cx.syn_error(e);
            }
        } else {
            kept.push(attr);
        }
    }
    *attrs = kept;
}

impl FieldOptions {
    pub fn take(cx: &Ctxt, attrs: &mut Vec<syn::Attribute>) -> Self {
        let mut o = FieldOptions::default();
        take_actor_attrs(cx, attrs, |meta| {
            if meta.path.is_ident("default") {
                let expr: Expr = meta.value()?.parse()?;
                if o.default.is_some() {
                    cx.error_spanned_by(&meta.path, "duplicate `default` option");
                }
                o.default = Some(expr);
                o.default_span = Some(meta.path.span());
            } else if meta.path.is_ident("transient") {
                if o.transient.is_some() {
                    cx.error_spanned_by(&meta.path, "duplicate `transient` option");
                }
                o.transient_span = Some(meta.path.span());
                o.transient = Some(if meta.input.peek(syn::Token![=]) {
                    Some(meta.value()?.parse()?)
                } else {
                    None
                });
            } else {
                cx.error_spanned_by(
                    &meta.path,
                    format!(
                        "unknown field option `{}`; expected `default = expr`, `transient` or `transient = expr`",
                        path_text(&meta.path)
                    ),
                );
                skip_value(&meta)?;
            }
            Ok(())
        });
        o
    }
}

impl MethodOptions {
    pub fn take(cx: &Ctxt, attrs: &mut Vec<syn::Attribute>) -> Self {
        let mut o = MethodOptions::default();
        take_actor_attrs(cx, attrs, |meta| {
            if meta.path.is_ident("local") {
                if o.local {
                    cx.error_spanned_by(&meta.path, "duplicate `local` option");
                }
                o.local = true;
            } else {
                cx.error_spanned_by(
                    &meta.path,
                    format!(
                        "unknown method option `{}`; expected `local`",
                        path_text(&meta.path)
                    ),
                );
                skip_value(&meta)?;
            }
            Ok(())
        });
        o
    }
}

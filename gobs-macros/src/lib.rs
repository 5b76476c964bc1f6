//! `#[define_actor]`: turns a plain Rust type into a persistent gobs actor.
//!
//! Use it through `gobs_runtime::define_actor`; this crate holds no runtime logic.
//! Stages, one module each: `attr` reads options, `ast` builds a typed model, `check`
//! validates it (every error at once, each on its own span), `expand` writes the code
//! (`expand/actor_struct.rs` for the struct, `expand/actor_impl.rs` for its impl). On
//! error the user's item is still emitted beside the errors, so one mistake gives one
//! message.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;

use proc_macro::TokenStream;

/// Makes a struct a persistent actor (on the struct) and its methods messages (on its
/// `impl` block). See `gobs_runtime::define_actor` for the full documentation.
#[proc_macro_attribute]
pub fn define_actor(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::define_actor(args.into(), item.into()).into()
}

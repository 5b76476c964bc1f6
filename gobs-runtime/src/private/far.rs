//! Sends to objects elsewhere (see `crate::far`). A by-name method's proxy encodes its
//! arguments and decodes its answer with serde where the types allow it, picked by
//! autoref specialization (`(&&FarArgs(..)).far_encode()`: the impl on `&FarArgs` needs
//! `Serialize`, the one on `FarArgs` is the fallback), so that an actor whose `pub`
//! methods take or answer types without serde still compiles; sending such a method to
//! a far object breaks its promise with an error naming the type.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::promise::Promise;

pub use crate::reference::FarObject;

/// A far send's encoded arguments, or why they cannot be encoded.
pub type FarEncoded = Result<(Vec<u8>, Vec<crate::carry::Carried>), String>;

/// Decodes a far send's answer as the method's result type (or says why it cannot).
pub type FarDecoder<R> = fn(Vec<u8>, Vec<crate::carry::Carried>) -> Result<R, String>;

/// A by-name method's arguments (a tuple), on their way to a far object.
pub struct FarArgs<'a, A>(pub &'a A);

pub trait FarEncode {
    fn far_encode(&self) -> FarEncoded;
}

impl<A: Serialize> FarEncode for &FarArgs<'_, A> {
    fn far_encode(&self) -> FarEncoded {
        crate::carry::encode_carrying(self.0)
            .map_err(|e| format!("its arguments cannot be encoded: {e}"))
    }
}

pub trait FarEncodeFallback {
    fn far_encode(&self) -> FarEncoded;
}

impl<A> FarEncodeFallback for FarArgs<'_, A> {
    fn far_encode(&self) -> FarEncoded {
        Err(format!(
            "its arguments `{}` cannot be encoded for the network: derive serde's `Serialize` \
             for them",
            std::any::type_name::<A>()
        ))
    }
}

/// A by-name method's result type, for picking its decoder.
pub struct FarAnswer<R>(std::marker::PhantomData<fn() -> R>);

impl<R> FarAnswer<R> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        FarAnswer(std::marker::PhantomData)
    }
}

pub trait FarDecode<R> {
    fn far_decoder(&self) -> FarDecoder<R>;
}

impl<R: DeserializeOwned> FarDecode<R> for &FarAnswer<R> {
    fn far_decoder(&self) -> FarDecoder<R> {
        |bytes, refs| {
            crate::far::decode_answer::<R>(&bytes, refs)
                .map_err(|e| format!("does not decode as `{}`: {e}", std::any::type_name::<R>()))
        }
    }
}

pub trait FarDecodeFallback<R> {
    fn far_decoder(&self) -> FarDecoder<R>;
}

impl<R> FarDecodeFallback<R> for FarAnswer<R> {
    fn far_decoder(&self) -> FarDecoder<R> {
        |_, _| {
            Err(format!(
                "cannot be decoded from the network: its type `{}` has no serde \
                 `Deserialize`; derive it",
                std::any::type_name::<R>()
            ))
        }
    }
}

/// Sends by-name method `method` to a far object: what a generated proxy does for a
/// [`SendTarget::Far`](crate::promise::SendTarget::Far) target.
pub fn send_far<R: Send + 'static>(
    far: &dyn FarObject,
    method: &'static str,
    args: FarEncoded,
    decode: FarDecoder<R>,
) -> Promise<R> {
    let (bytes, refs) = match args {
        Ok(encoded) => encoded,
        Err(e) => {
            return Promise::broken(Error::Dispatch {
                actor: far.describe(),
                detail: format!("`{method}` cannot be sent to it: {e}"),
            });
        }
    };
    let target = far.describe();
    let (reply, far_answer) = far.send_by_name_pipelined(method, bytes, refs);
    reply
        .then_direct(move |answer| {
            let (bytes, refs) = answer?;
            decode(bytes, refs).map_err(|e| Error::Dispatch {
                actor: target,
                detail: format!("the answer to `{method}` {e}"),
            })
        })
        .with_far_answer(far_answer)
}

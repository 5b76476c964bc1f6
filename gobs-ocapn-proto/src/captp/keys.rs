//! CapTP's cryptography: per-session Ed25519 keys, their gcrypt-style Syrup forms, and the
//! spec's Public Identifier (SideID) and Session ID.
//!
//! A public key travels as `[public-key [ecc [curve Ed25519] [flags eddsa] [q <32 bytes>]]]`
//! and a signature as `[sig-val [eddsa [r <32 bytes>] [s <32 bytes>]]]` (lists of symbols,
//! as the spec and Goblins write them).

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::CaptpError;
use crate::syrup::{self, Value};

/// A session's key pair, fresh for every session.
pub struct KeyPair {
    signing: SigningKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({:?})", self.public())
    }
}

impl KeyPair {
    /// A new key pair from the operating system's CSPRNG.
    pub fn generate() -> Result<KeyPair, CaptpError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| CaptpError::Random(e.to_string()))?;
        Ok(KeyPair::from_seed(&seed))
    }

    /// The key pair of a 32-byte seed (for tests and stored identities).
    pub fn from_seed(seed: &[u8; 32]) -> KeyPair {
        KeyPair {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// Signs the canonical Syrup encoding of `value`, giving the signature's Syrup form.
    pub fn sign_value(&self, value: &Value) -> Value {
        signature_value(&self.signing.sign(&syrup::encode(value)))
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(")?;
        for b in &self.0.as_bytes()[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

fn sym(s: &str) -> Value {
    Value::symbol(s)
}

fn pair(name: &str, v: Value) -> Value {
    Value::List(vec![sym(name), v])
}

impl PublicKey {
    /// The key's Syrup form.
    pub fn to_value(&self) -> Value {
        Value::List(vec![
            sym("public-key"),
            Value::List(vec![
                sym("ecc"),
                pair("curve", sym("Ed25519")),
                pair("flags", sym("eddsa")),
                pair("q", Value::Bytes(self.0.as_bytes().to_vec())),
            ]),
        ])
    }

    /// Reads a key from its Syrup form.
    pub fn from_value(v: &Value) -> Result<PublicKey, CaptpError> {
        let bad = || {
            CaptpError::Malformed(
                "public key is not [public-key [ecc [curve Ed25519] [flags eddsa] [q <32 bytes>]]]"
                    .into(),
            )
        };
        let outer = v.as_list().ok_or_else(bad)?;
        let [tag, ecc] = outer else { return Err(bad()) };
        if tag.as_symbol() != Some("public-key") {
            return Err(bad());
        }
        let ecc = ecc.as_list().ok_or_else(bad)?;
        let [e, curve, flags, q] = ecc else {
            return Err(bad());
        };
        if e.as_symbol() != Some("ecc")
            || curve != &pair("curve", sym("Ed25519"))
            || flags != &pair("flags", sym("eddsa"))
        {
            return Err(bad());
        }
        let q = q.as_list().ok_or_else(bad)?;
        let [qtag, qbytes] = q else { return Err(bad()) };
        if qtag.as_symbol() != Some("q") {
            return Err(bad());
        }
        let bytes: [u8; 32] = qbytes
            .as_bytes()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| CaptpError::Malformed("public key is not a valid Ed25519 point".into()))
    }

    /// Checks `signature` (its Syrup form) over the canonical encoding of `value`.
    pub fn verify_value(&self, value: &Value, signature: &Value) -> Result<(), CaptpError> {
        let sig = signature_from_value(signature)?;
        self.0
            .verify(&syrup::encode(value), &sig)
            .map_err(|_| CaptpError::BadSignature)
    }

    /// The spec's Public Identifier: SHA-256(SHA-256(syrup(public key))).
    pub fn side_id(&self) -> [u8; 32] {
        let once = Sha256::digest(syrup::encode(&self.to_value()));
        Sha256::digest(once).into()
    }
}

/// The spec's Session ID of the session between two keys (order does not matter).
pub fn session_id(a: &PublicKey, b: &PublicKey) -> [u8; 32] {
    let mut ids = [a.side_id(), b.side_id()];
    ids.sort();
    let mut h = Sha256::new();
    h.update(b"prot0");
    h.update(ids[0]);
    h.update(ids[1]);
    let once = h.finalize();
    Sha256::digest(once).into()
}

fn signature_value(sig: &Signature) -> Value {
    Value::List(vec![
        sym("sig-val"),
        Value::List(vec![
            sym("eddsa"),
            pair("r", Value::Bytes(sig.r_bytes().to_vec())),
            pair("s", Value::Bytes(sig.s_bytes().to_vec())),
        ]),
    ])
}

fn signature_from_value(v: &Value) -> Result<Signature, CaptpError> {
    let bad = || {
        CaptpError::Malformed(
            "signature is not [sig-val [eddsa [r <32 bytes>] [s <32 bytes>]]]".into(),
        )
    };
    let outer = v.as_list().ok_or_else(bad)?;
    let [tag, eddsa] = outer else {
        return Err(bad());
    };
    if tag.as_symbol() != Some("sig-val") {
        return Err(bad());
    }
    let inner = eddsa.as_list().ok_or_else(bad)?;
    let [e, r, s] = inner else { return Err(bad()) };
    if e.as_symbol() != Some("eddsa") {
        return Err(bad());
    }
    let part = |v: &Value, name: &str| -> Result<[u8; 32], CaptpError> {
        let l = v.as_list().ok_or_else(bad)?;
        let [t, b] = l else { return Err(bad()) };
        if t.as_symbol() != Some(name) {
            return Err(bad());
        }
        b.as_bytes().and_then(|b| b.try_into().ok()).ok_or_else(bad)
    };
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(&part(r, "r")?);
    bytes[32..].copy_from_slice(&part(s, "s")?);
    Ok(Signature::from_bytes(&bytes))
}

//! `gobs-app state vats|actors|portrait|graph|unreachable|history`: what the store holds,
//! read with [`gobs_runtime::inspect`] (no lock, no write: it works beside a daemon).

use std::path::Path;

use gobs_runtime::inspect::StoreImage;
use gobs_runtime::store::VatRecord;
use serde::Serialize;

use crate::error::AppError;

/// One vat, as `state vats` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VatInfo {
    /// Its name.
    pub name: String,
    /// `saved`, `listed` (named by another vat, nothing saved yet) or `damaged`.
    pub status: &'static str,
    /// Why it is damaged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damage: Option<String>,
    /// Its actors.
    pub actors: usize,
    /// Their saved arguments, in bytes.
    pub bytes: usize,
}

/// Reads the store of the state directory `state_dir`.
pub fn image(state_dir: &Path) -> Result<StoreImage, AppError> {
    let vats = super::vats_dir(state_dir);
    if !vats.is_dir() {
        return Err(AppError::State(format!(
            "{} holds no store ({} does not exist)",
            state_dir.display(),
            vats.display()
        )));
    }
    StoreImage::read(&vats).map_err(|e| {
        let text = e.to_string();
        let hint = super::damage_hint(
            state_dir,
            &gobs_runtime::Error::Store {
                vat: "(registry)".to_string(),
                source: std::sync::Arc::new(e),
            },
        );
        AppError::State(format!("cannot read the store: {text}{hint}"))
    })
}

/// The vats of `image`.
pub fn vats(image: &StoreImage) -> Vec<VatInfo> {
    image
        .vats
        .iter()
        .map(|(name, record)| {
            let (status, damage, actors, bytes) = match record {
                VatRecord::Saved(g) => (
                    "saved",
                    None,
                    g.actors.len(),
                    g.actors.values().map(|p| p.args.len()).sum(),
                ),
                VatRecord::Listed => ("listed", None, 0, 0),
                VatRecord::Damaged(why) => ("damaged", Some(why.clone()), 0, 0),
            };
            VatInfo {
                name: name.clone(),
                status,
                damage,
                actors,
                bytes,
            }
        })
        .collect()
}

/// Actor `id` of vat `vat`: its portrait, with its arguments decoded to JSON.
pub fn portrait(image: &StoreImage, vat: &str, id: u64) -> Result<serde_json::Value, AppError> {
    let p = image.portrait(vat, id).ok_or_else(|| {
        let known = match image.graph(vat) {
            Some(g) => format!(
                "vat \"{vat}\" holds actors {}",
                g.actors
                    .keys()
                    .map(|id| id.get().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => {
                format!("the store has no saved vat \"{vat}\" (`gobs-app state vats` lists them)")
            }
        };
        AppError::State(format!("no actor {id} in vat \"{vat}\": {known}"))
    })?;
    let args = gobs_runtime::inspect::decode_args(&p.args)
        .map_or_else(|e| serde_json::json!({ "undecodable": e }), |v| to_json(&v));
    Ok(serde_json::json!({
        "vat": vat,
        "id": id,
        "type": p.name,
        "version": p.version,
        "bytes": p.args.len(),
        "args": args,
    }))
}

/// MessagePack as JSON: binaries and extensions as `{"bin": hex}` and
/// `{"ext": type, "data": hex}`, maps with keys that are not strings as lists of pairs.
fn to_json(v: &rmpv::Value) -> serde_json::Value {
    use rmpv::Value as V;
    use serde_json::Value as J;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    match v {
        V::Nil => J::Null,
        V::Boolean(b) => J::Bool(*b),
        V::Integer(i) => i
            .as_u64()
            .map(J::from)
            .or_else(|| i.as_i64().map(J::from))
            .unwrap_or(J::Null),
        V::F32(f) => J::from(f64::from(*f)),
        V::F64(f) => J::from(*f),
        V::String(s) => match s.as_str() {
            Some(s) => J::from(s),
            None => serde_json::json!({ "bin": hex(s.as_bytes()) }),
        },
        V::Binary(b) => serde_json::json!({ "bin": hex(b) }),
        V::Array(items) => J::Array(items.iter().map(to_json).collect()),
        V::Map(pairs) if pairs.iter().all(|(k, _)| k.is_str()) => J::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), to_json(v)))
                .collect(),
        ),
        V::Map(pairs) => J::Array(
            pairs
                .iter()
                .map(|(k, v)| J::Array(vec![to_json(k), to_json(v)]))
                .collect(),
        ),
        V::Ext(t, data) => serde_json::json!({ "ext": t, "data": hex(data) }),
    }
}

//! Copying files and trees onto and off machines (`gobs-app put-file` / `get-file`): the
//! values every layer passes along: a file's bytes ([`FileContent`], base64 on the control
//! socket), its permission bits ([`FileMode`], octal on the command line), the answers
//! ([`FileCopied`], [`RemoteFile`]), and the checks made before anything is sent
//! ([`check_size`], [`check_remote_path`]).
//!
//! A copy of any size travels as a stream ([`archive`]): read and written in chunks on
//! every hop, with flow control, each file's sha256 checked where it is written, which is
//! all or nothing ([`pack`], [`unpack`]). Only older peers carry a file whole in one
//! message, at most [`MAX_FILE`] bytes of it: an older hob-client (the boss falls back to
//! its `put-file`/`get-file`) and an older command line (its request's content, its answer's
//! bytes).

pub mod archive;
pub mod chunks;
pub mod pack;
#[cfg(test)]
mod round_trip_tests;
pub mod unpack;

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::shown;

/// Largest file carried whole in one message: to and from an older hob-client, and in the
/// requests and answers of an older command line. A streamed copy has no limit.
pub const MAX_FILE: usize = crate::hob_net::wire::MAX_FILE;

/// Longest remote path, in bytes (Linux's `PATH_MAX`).
pub const MAX_REMOTE_PATH: usize = 4096;

/// A file's bytes. On the control socket they are one base64 string, so a file of
/// [`MAX_FILE`] bytes takes 4/3 of that in a frame.
///
/// ```
/// use gobs_app::files::FileContent;
/// let json = serde_json::to_string(&FileContent(vec![0, 255])).unwrap();
/// assert_eq!(json, r#""AP8=""#);
/// assert_eq!(serde_json::from_str::<FileContent>(&json).unwrap().0, [0, 255]);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FileContent(pub Vec<u8>);

impl fmt::Debug for FileContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileContent({} bytes)", self.0.len())
    }
}

impl Serialize for FileContent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for FileContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        // The length is checked before decoding, so a huge string allocates nothing more.
        if text.len() > BASE64.encode_len(MAX_FILE) {
            return Err(serde::de::Error::custom(format!(
                "a file's content is at most {MAX_FILE} bytes ({} in base64); this one is {} \
                 base64 characters",
                BASE64.encode_len(MAX_FILE),
                text.len()
            )));
        }
        BASE64
            .decode(text.as_bytes())
            .map(FileContent)
            .map_err(|e| serde::de::Error::custom(format!("a file's content is base64: {e}")))
    }
}

/// Permission bits of a file (at most `0o7777`). The command line writes them in octal
/// (`644`, `0644`, `0o644`), JSON as a number.
///
/// ```
/// use gobs_app::files::FileMode;
/// assert_eq!("0644".parse::<FileMode>().unwrap(), FileMode(0o644));
/// assert_eq!(FileMode(0o755).to_string(), "0755");
/// assert!("999".parse::<FileMode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct FileMode(pub u32);

impl FileMode {
    /// What a file gets when nobody said: `0644`.
    pub const DEFAULT: FileMode = FileMode(0o644);

    /// The permission bits of a file's `st_mode` (the file type dropped).
    pub fn of(st_mode: u32) -> FileMode {
        FileMode(st_mode & 0o7777)
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl FromStr for FileMode {
    type Err = String;
    fn from_str(s: &str) -> Result<FileMode, String> {
        let digits = s.strip_prefix("0o").unwrap_or(s);
        u32::from_str_radix(digits, 8)
            .ok()
            .filter(|_| !digits.is_empty() && !digits.starts_with(['+', '-']))
            .ok_or_else(|| {
                format!(
                    "mode {} is not octal permission bits; write it like 644 or 0755",
                    shown(s)
                )
            })
            .and_then(FileMode::try_from)
    }
}

impl TryFrom<u32> for FileMode {
    type Error = String;
    fn try_from(bits: u32) -> Result<FileMode, String> {
        if bits > 0o7777 {
            Err(format!(
                "mode {bits:o} (octal) has more than permission bits; they go up to 7777"
            ))
        } else {
            Ok(FileMode(bits))
        }
    }
}

impl From<FileMode> for u32 {
    fn from(mode: FileMode) -> u32 {
        mode.0
    }
}

/// What `put-file` answers: the file is on the machine, whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCopied {
    /// The machine it went to.
    pub machine: String,
    /// Where it is on the machine.
    pub path: String,
    /// Its size, bytes (a tree: all its files').
    pub size: u64,
    /// Its permission bits.
    pub mode: FileMode,
    /// Regular files copied (1 for a file; a tree's count).
    #[serde(default = "one")]
    pub files: u64,
    /// The sha256 of a file's bytes (hex) as checked on the machine; none for a tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

fn one() -> u64 {
    1
}

/// What `get-file` answers: a file read off a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteFile {
    /// The machine it came from.
    pub machine: String,
    /// Where it is on the machine.
    pub path: String,
    /// Its bytes, when the answer carries them (a request that did not stream them:
    /// an older command line's or `--json`'s of a small file).
    #[serde(default)]
    pub content: FileContent,
    /// Its size, bytes (a tree: all its files'), as the machine sent it.
    #[serde(default)]
    pub size: u64,
    /// Regular files sent.
    #[serde(default = "one")]
    pub files: u64,
}

/// Refuses a file of `size` bytes, larger than [`MAX_FILE`], where it must travel whole
/// (an older gobs-app on the other side), saying both figures and the fix; `what` names it
/// ("local file ./a.bin").
///
/// ```
/// use gobs_app::files::{MAX_FILE, check_size};
/// assert!(check_size("x", MAX_FILE as u64).is_ok());
/// let err = check_size("local file a.bin", MAX_FILE as u64 + 1).unwrap_err();
/// assert!(err.contains("524289 bytes") && err.contains("at most 524288"), "{err}");
/// ```
pub fn check_size(what: &str, size: u64) -> Result<(), String> {
    if size > MAX_FILE as u64 {
        return Err(format!(
            "{what} is {size} bytes; an older gobs-app on the other side of this copy takes \
             files of at most {MAX_FILE} bytes ({} KiB) whole: upgrade it (a machine's \
             hob-client: create the machine again) to copy files of any size",
            MAX_FILE / 1024
        ));
    }
    Ok(())
}

/// Checks a path on machine `machine`: absolute (the hob-client's working directory is
/// nobody's business), at most [`MAX_REMOTE_PATH`] bytes, no NUL.
///
/// ```
/// use gobs_app::files::check_remote_path;
/// assert!(check_remote_path("web-1", "/etc/motd").is_ok());
/// assert!(check_remote_path("web-1", "motd").unwrap_err().contains("absolute"));
/// ```
pub fn check_remote_path(machine: &str, path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "the path on machine {machine}, {}, is not absolute; write it from the root, like \
             /tmp/{}",
            shown(path),
            path.rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("file")
        ));
    }
    if path.len() > MAX_REMOTE_PATH || path.contains('\0') {
        return Err(format!(
            "the path on machine {machine}, {}, is not a usable path (at most {MAX_REMOTE_PATH} \
             bytes, no NUL)",
            shown(path)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn modes_read_octal_and_refuse_what_is_not_permission_bits() {
        for (text, bits) in [
            ("644", 0o644),
            ("0755", 0o755),
            ("0o600", 0o600),
            ("7777", 0o7777),
        ] {
            assert_eq!(text.parse::<FileMode>().unwrap(), FileMode(bits), "{text}");
        }
        for bad in ["", "8", "-1", "+7", "10000", "rw-r--r--", "0o"] {
            let err = bad.parse::<FileMode>().unwrap_err();
            assert!(err.contains("mode"), "{bad}: {err}");
        }
        assert!(serde_json::from_str::<FileMode>("4096").is_err());
        assert_eq!(serde_json::to_string(&FileMode(0o644)).unwrap(), "420");
    }

    #[test]
    fn content_is_base64_and_bounded_before_decoding() {
        let all: Vec<u8> = (0..=255).collect();
        let json = serde_json::to_string(&FileContent(all.clone())).unwrap();
        assert_eq!(serde_json::from_str::<FileContent>(&json).unwrap().0, all);
        let err = serde_json::from_str::<FileContent>("\"not base64!\"").unwrap_err();
        assert!(err.to_string().contains("base64"), "{err}");
        let huge = format!("\"{}\"", "A".repeat(BASE64.encode_len(MAX_FILE) + 4));
        let err = serde_json::from_str::<FileContent>(&huge).unwrap_err();
        assert!(err.to_string().contains("at most 524288 bytes"), "{err}");
        let full = FileContent(vec![7; MAX_FILE]);
        let back: FileContent =
            serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
        assert_eq!(back, full);
    }

    #[test]
    fn remote_paths_must_be_absolute_and_sane() {
        assert!(check_remote_path("m", "/a/b").is_ok());
        let err = check_remote_path("m", "a/b.txt").unwrap_err();
        assert!(
            err.contains("machine m") && err.contains("/tmp/b.txt"),
            "{err}"
        );
        assert!(check_remote_path("m", "/a\0b").is_err());
        assert!(check_remote_path("m", &format!("/{}", "x".repeat(5000))).is_err());
    }
}

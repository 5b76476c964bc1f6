//! `put-file`: a file copied onto a machine, written there whole or not at all.
//!
//! On the hob wire: `put-file PATH BYTES MODE` (an absolute path, at most [`MAX_FILE`]
//! bytes, permission bits up to `0o7777`) → `true`. The boss refuses a relative path or a
//! larger file before anything is sent.

use std::path::PathBuf;

use gobs_ocapn::captp::Term;
use gobs_ocapn::syrup::Value;
use serde::{Deserialize, Serialize};

use super::machine::MachineOp;
use crate::files::{FileContent, FileCopied, FileMode, MAX_FILE, check_remote_path, check_size};
use crate::hob_net::wire::{as_string, text};
use crate::model::{BackendError, MachineName};

// The command line's help for `put-file` is its entry's in the list of operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct PutFile {
    /// The machine's name
    #[arg(index = 1)]
    pub name: MachineName,
    /// Where the file goes on the machine (an absolute path)
    #[arg(index = 3, value_name = "REMOTE_PATH")]
    pub path: String,
    /// Its permission bits, in octal (e.g. 644) [default: the local file's]
    #[arg(long, value_name = "OCTAL")]
    pub mode: Option<FileMode>,
    /// The file's bytes (read from LOCAL_PATH by the command before it sends anything)
    #[arg(skip)]
    pub content: FileContent,
    /// The file to copy
    #[arg(index = 2, value_name = "LOCAL_PATH")]
    #[serde(skip)]
    pub local: PathBuf,
}

impl PutFile {
    /// The permission bits the file gets: the request's, else [`FileMode::DEFAULT`].
    fn mode(&self) -> FileMode {
        self.mode.unwrap_or(FileMode::DEFAULT)
    }
}

impl MachineOp for PutFile {
    const NAME: &'static str = "put-file";
    const ON_FILES: bool = true;
    type Args = (String, Vec<u8>, u32);
    type Reply = ();
    type Answer = FileCopied;

    fn machine(&self) -> &MachineName {
        &self.name
    }

    fn check(&self) -> Result<(), BackendError> {
        let (name, path) = (self.name.as_str(), &self.path);
        check_remote_path(name, path).map_err(BackendError::invalid)?;
        let size = self.content.0.len() as u64;
        check_size(&format!("the file for {path} on machine {name}"), size)
            .map_err(BackendError::invalid)
    }

    fn args(&self, _default_limit: std::time::Duration) -> Vec<Term> {
        vec![
            text(&self.path),
            Term::Data(Value::Bytes(self.content.0.clone())),
            Term::Data(Value::from(i64::from(self.mode().0))),
        ]
    }

    fn read_args(args: &[Term]) -> Result<(String, Vec<u8>, u32), String> {
        let usage = "put-file takes a path, the bytes and a mode (e.g. 420 for 0644)";
        let [path, bytes, mode] = args else {
            return Err(usage.into());
        };
        let path = as_string(path).ok_or(usage)?;
        let bytes = match bytes.to_value() {
            Some(Value::Bytes(b)) => b,
            _ => return Err(usage.into()),
        };
        let mode = mode
            .to_value()
            .and_then(|v| v.as_int())
            .and_then(|m| u32::try_from(m).ok())
            .filter(|m| *m <= 0o7777)
            .ok_or(usage)?;
        if bytes.len() > MAX_FILE {
            return Err(format!(
                "put-file carries at most {MAX_FILE} bytes; {path} would be {}",
                bytes.len()
            ));
        }
        Ok((path, bytes, mode))
    }

    fn reply_term((): &()) -> Term {
        Term::Data(Value::Bool(true))
    }

    /// Whatever the machine answers, the file is written: the answer carries nothing.
    fn read_reply(_answer: &Term) -> Result<(), String> {
        Ok(())
    }

    fn answer(&self, (): ()) -> FileCopied {
        FileCopied {
            machine: self.name.to_string(),
            path: self.path.clone(),
            size: self.content.0.len() as u64,
            mode: self.mode(),
        }
    }

    fn failed(&self) -> String {
        format!("cannot copy to {} on machine {}", self.path, self.name)
    }

    fn when_lost(&self) -> String {
        let (name, path) = (&self.name, &self.path);
        format!(
            "gobs-app cannot know whether {path} was written on machine {name}; \
             `gobs-app get-file {name} {path}` shows what is there, and putting the file again \
             replaces it"
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;
    use crate::hob_net::wire::method;

    fn put(path: &str, content: Vec<u8>, mode: u32) -> PutFile {
        PutFile {
            name: "m1".parse().unwrap(),
            path: path.into(),
            mode: Some(FileMode(mode)),
            content: FileContent(content),
            local: PathBuf::new(),
        }
    }

    fn sent(op: &PutFile) -> Result<(String, Vec<u8>, u32), String> {
        let (name, args) = method(crate::ops::MachineCall::message(op, Duration::ZERO)).unwrap();
        assert_eq!(name, "put-file");
        PutFile::read_args(&args)
    }

    #[test]
    fn arguments_round_trip_and_are_bounded() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(
            sent(&put("/tmp/x", all.clone(), 0o640)).unwrap(),
            ("/tmp/x".to_string(), all, 0o640)
        );
        let err = sent(&put("/tmp/x", vec![0; MAX_FILE + 1], 0o600)).unwrap_err();
        assert!(err.contains("at most 524288 bytes"), "{err}");
        assert!(
            sent(&put("/tmp/x", vec![], 0o10000))
                .unwrap_err()
                .contains("mode")
        );
    }

    #[test]
    fn the_boss_refuses_relative_paths_and_large_files_before_sending() {
        assert!(put("/tmp/x", vec![1], 0o600).check().is_ok());
        let err = put("tmp/x", vec![1], 0o600).check().unwrap_err();
        assert!(err.message.contains("not absolute"), "{err}");
        let err = put("/tmp/x", vec![0; MAX_FILE + 1], 0o600)
            .check()
            .unwrap_err();
        assert!(err.message.contains("at most 524288"), "{err}");
    }

    #[test]
    fn a_mode_not_given_is_the_default_on_the_wire_and_in_the_answer() {
        let op = PutFile {
            mode: None,
            ..put("/tmp/x", b"hi".to_vec(), 0)
        };
        assert_eq!(sent(&op).unwrap().2, FileMode::DEFAULT.0);
        let copied = op.answer(());
        assert_eq!((copied.size, copied.mode), (2, FileMode::DEFAULT));
    }
}

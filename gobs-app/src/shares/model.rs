//! Shares as the command line and the control socket see them: what a grant allows
//! ([`Right`]), a grant's row ([`ShareInfo`]), one recorded use ([`ShareUse`]) and what
//! `share` and `shares` answer.

use serde::{Deserialize, Serialize};

/// One thing a grant may allow on its machine.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Right {
    /// `run`: run commands.
    Run,
    /// `get-file`: copy files off the machine.
    GetFile,
    /// `put-file`: copy files onto the machine.
    PutFile,
    /// `status`: read the machine's record (its state, provider, bindings).
    Status,
}

impl Right {
    /// Its name, as `--allow` takes it and the operation is called.
    pub fn name(self) -> &'static str {
        match self {
            Right::Run => "run",
            Right::GetFile => "get-file",
            Right::PutFile => "put-file",
            Right::Status => "status",
        }
    }
}

impl std::fmt::Display for Right {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Rights as a grant keeps them: sorted, each once.
pub fn normalised(mut rights: Vec<Right>) -> Vec<Right> {
    rights.sort();
    rights.dedup();
    rights
}

/// The rights, comma-separated (`run,get-file`).
pub fn rights_text(rights: &[Right]) -> String {
    rights
        .iter()
        .map(|r| r.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// One grant, as `gobs-app shares` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareInfo {
    /// Its id (what `gobs-app revoke` takes).
    pub id: String,
    /// The machine it reaches.
    pub machine: String,
    /// What it allows there.
    pub rights: Vec<Right>,
    /// The note it was given (empty if none).
    pub note: String,
    /// When it was made (seconds since the Unix epoch).
    pub created_at: u64,
    /// When it stops working, if it does by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// When it was last used (allowed or refused), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_use: Option<u64>,
    /// How many uses it allowed.
    pub uses: u64,
}

/// One use of a grant: who (the grant), what, when, and whether it was allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareUse {
    /// The grant used.
    pub grant: String,
    /// Its machine.
    pub machine: String,
    /// The operation asked for (`run`, `put-file` …).
    pub op: String,
    /// When (seconds since the Unix epoch).
    pub at: u64,
    /// `None` if it was allowed; else why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// What `gobs-app share` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareAnswer {
    /// The new grant.
    pub share: ShareInfo,
    /// Its sturdyref: the capability to hand over.
    pub uri: String,
}

/// What `gobs-app shares` answers: the grants, and with `--log` their recorded uses
/// (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareList {
    /// Every grant made (revoked and expired ones too).
    pub grants: Vec<ShareInfo>,
    /// The recorded uses, if asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<Vec<ShareUse>>,
}

/// Now, for the grants (seconds since the Unix epoch).
pub fn now() -> u64 {
    crate::hosts::model::now_unix()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use clap::ValueEnum;

    #[test]
    fn rights_read_as_the_operations_are_named_and_keep_one_order() {
        for right in Right::value_variants() {
            assert_eq!(Right::from_str(right.name(), false).unwrap(), *right);
            let json = serde_json::to_string(right).unwrap();
            assert_eq!(json, format!("\"{}\"", right.name()));
        }
        let rights = normalised(vec![Right::PutFile, Right::Run, Right::PutFile]);
        assert_eq!(rights_text(&rights), "run,put-file");
    }
}

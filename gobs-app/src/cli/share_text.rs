//! The words `share`, `shares` and `revoke` answer with, for people (`--json` prints the
//! answers as they are).

use crate::cli::columns::{rfc3339, table};
use crate::shares::model::{ShareAnswer, ShareInfo, ShareList, rights_text};

/// `share`'s answer: the URI, and how to use and revoke it.
pub fn shared(answer: &ShareAnswer) -> String {
    let s = &answer.share;
    let until = s.expires_at.map_or_else(
        || "until revoked".to_string(),
        |e| format!("until {}", rfc3339(e)),
    );
    format!(
        "shared machine {} as share {} ({}, {until}); whoever holds this URI can use it \
         (keep it secret):\n  {}\nuse it with: gobs-app --connect '{}' run -- CMD\nrevoke it \
         with: gobs-app revoke {}\n",
        s.machine,
        s.id,
        rights_text(&s.rights),
        answer.uri,
        answer.uri,
        s.id
    )
}

/// `shares`: a table of the grants, or with `--log` of the uses.
pub fn list(list: &ShareList) -> String {
    if let Some(uses) = &list.uses {
        if uses.is_empty() {
            return "no share was used yet\n".to_string();
        }
        let rows = uses.iter().map(|u| {
            vec![
                rfc3339(u.at),
                u.grant.clone(),
                u.machine.clone(),
                u.op.clone(),
                u.refused
                    .as_ref()
                    .map_or_else(|| "allowed".to_string(), |why| format!("refused: {why}")),
            ]
        });
        return table(&["WHEN", "SHARE", "MACHINE", "OP", "OUTCOME"], rows);
    }
    if list.grants.is_empty() {
        return "no shares; make one with `gobs-app share MACHINE --allow run`\n".to_string();
    }
    let rows = list.grants.iter().map(|g| {
        let expires = match (g.revoked_at, g.expires_at) {
            (Some(at), _) => format!("revoked {}", rfc3339(at)),
            (None, Some(at)) => rfc3339(at),
            (None, None) => "never".to_string(),
        };
        vec![
            g.id.clone(),
            g.machine.clone(),
            rights_text(&g.rights),
            expires,
            g.last_use.map_or_else(|| "-".to_string(), rfc3339),
            g.uses.to_string(),
            if g.note.is_empty() {
                "-".into()
            } else {
                g.note.clone()
            },
        ]
    });
    table(
        &[
            "ID", "MACHINE", "RIGHTS", "EXPIRES", "LAST USE", "USES", "NOTE",
        ],
        rows,
    )
}

/// `revoke`'s answer.
pub fn revoked(share: &ShareInfo) -> String {
    format!(
        "revoked share {} of machine {}: its URI is refused from now on\n",
        share.id, share.machine
    )
}

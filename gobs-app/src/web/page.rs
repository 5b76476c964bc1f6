//! The dashboard's HTML, rendered on the server (maud escapes every value): the machines
//! by state and provider, each with its history from the event log, the recent events, and
//! the create and destroy actions. The script is small and inline: live updates come as
//! server-sent events, each of which re-fetches the machines' part of the page.

use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::events::Event;
use crate::model::{MachineInfo, ProviderInfo};

/// Recent events the page lists.
pub const RECENT: usize = 100;

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse}td,th{padding:.25em .75em;border-bottom:1px solid #ddd;\
text-align:left;vertical-align:top}.state{font-weight:bold}.failed{color:#b00}\
.running{color:#070}.unreachable{color:#a60}#log{font-family:monospace;font-size:.9em}\
details ol{font-family:monospace;font-size:.85em;margin:.25em 0}";

const SCRIPT: &str = r#"
const csrf = document.querySelector('meta[name=gobs-csrf]').content;
const status = document.getElementById('status');
async function refresh() {
  const r = await fetch('/machines');
  if (r.ok) document.getElementById('machines').innerHTML = await r.text();
}
async function act(url, body) {
  status.textContent = 'working…';
  const r = await fetch(url, {method: 'POST', body: JSON.stringify(body || {}),
    headers: {'X-Gobs-Csrf': csrf, 'Content-Type': 'application/json'}});
  status.textContent = r.ok ? 'done' : await r.text();
  refresh();
}
document.addEventListener('click', e => {
  const b = e.target.closest('button[data-destroy]');
  if (b) act('/machines/' + encodeURIComponent(b.dataset.destroy) + '/destroy');
});
document.getElementById('create').addEventListener('submit', e => {
  e.preventDefault();
  const f = e.target.elements;
  act('/machines', {name: f.machine.value, provider: f.provider.value || null});
});
const log = document.getElementById('log');
const live = document.getElementById('live');
const source = new EventSource('/events');
source.onopen = () => { live.textContent = 'live'; };
source.onerror = () => { live.textContent = 'reconnecting…'; };
source.onmessage = m => {
  const e = JSON.parse(m.data);
  const li = document.createElement('li');
  li.textContent = e.text;
  log.prepend(li);
  refresh();
};
"#;

/// The whole page.
pub fn index(
    machines: &[MachineInfo],
    providers: &[ProviderInfo],
    events: &[Event],
    csrf: &str,
) -> String {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="gobs-csrf" content=(csrf);
                title { "gobs machines" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "gobs machines " small #live { "connecting…" } }
                form #create {
                    "Create a machine: "
                    input name="machine" placeholder="name" required pattern="[A-Za-z0-9][A-Za-z0-9._-]{0,62}";
                    " provider "
                    select name="provider" {
                        @for p in providers {
                            option value=(p.name) selected[p.default] { (p.name) " (" (p.kind) ")" }
                        }
                    }
                    " "
                    button type="submit" { "Create" }
                    " "
                    span #status {}
                }
                div #machines { (machines_part(machines, events)) }
                h2 { "Recent events" }
                ol #log reversed {
                    @for e in events.iter().rev().take(RECENT) { li { (e.to_string()) } }
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    markup.into_string()
}

/// The machines' part: counts by state and provider, and the table with each machine's
/// history.
pub fn machines_fragment(machines: &[MachineInfo], events: &[Event]) -> String {
    machines_part(machines, events).into_string()
}

fn machines_part(machines: &[MachineInfo], events: &[Event]) -> Markup {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for m in machines {
        *counts
            .entry((m.status.to_string(), m.provider.clone()))
            .or_default() += 1;
    }
    html! {
        h2 { "Machines (" (machines.len()) ")" }
        @if machines.is_empty() {
            p #empty { "No machines." }
        } @else {
            p #counts {
                @for ((state, provider), n) in &counts {
                    span.count data-state=(state) data-provider=(provider) {
                        (n) " " (state) " (" (provider) ") "
                    }
                }
            }
            table {
                thead { tr { th { "Name" } th { "Provider" } th { "State" } th { "Created" } th { "History" } th {} } }
                tbody {
                    @for m in machines {
                        @let state = m.status.to_string();
                        tr data-machine=(m.name) {
                            td.name { (m.name) }
                            td.provider { (m.provider) }
                            td.state.(state) { (state) @if let Some(error) = &m.error { br; small.error { (error) } } }
                            td { (humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(m.created_at))) }
                            td {
                                details {
                                    summary { "events" }
                                    ol {
                                        @for e in events.iter().filter(|e| e.machine.as_deref() == Some(m.name.as_str())) {
                                            li { (e.to_string()) }
                                        }
                                    }
                                }
                            }
                            td { button type="button" data-destroy=(m.name) { "Destroy" } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MachineStatus;

    #[test]
    fn values_are_escaped() {
        let m = MachineInfo {
            name: "a".into(),
            provider: "dummy".into(),
            status: MachineStatus::Failed,
            created_at: 0,
            bindings: vec![],
            error: Some("<script>alert(1)</script>".into()),
            host: None,
        };
        let page = index(&[m], &[], &[], "c\"srf");
        assert!(page.contains("&lt;script&gt;alert(1)"), "{page}");
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("content=\"c&quot;srf\""));
    }
}

//! [`Service`]: what a [`Request`] does, wherever it runs (in the daemon or in an embedded
//! command). It checks the request, fills in the configured default provider, calls the
//! [`Backend`] and turns the result into a [`Response`], so both modes answer alike.

use crate::backend::{Backend, BackendError};
use crate::config::Config;
use crate::daemon::protocol::{Request, Response};

/// Longest machine name.
pub const MAX_MACHINE_NAME: usize = 63;

/// A backend plus the request rules that do not depend on it.
pub struct Service {
    backend: Box<dyn Backend + Send + Sync>,
    default_provider: String,
}

impl Service {
    /// Wraps `backend`, which was opened with `config`.
    pub fn new(backend: Box<dyn Backend + Send + Sync>, config: &Config) -> Service {
        Service {
            backend,
            default_provider: config.default_provider.clone(),
        }
    }

    /// Answers one request.
    pub fn handle(&self, request: Request) -> Response {
        tracing::debug!(?request, "handling request");
        let result = self.dispatch(request);
        if let Err(e) = &result {
            tracing::debug!(kind = e.kind.as_str(), "request failed: {e}");
        }
        result.unwrap_or_else(Response::Error)
    }

    fn dispatch(&self, request: Request) -> Result<Response, BackendError> {
        Ok(match request {
            Request::CreateMachine { name, provider } => {
                check_machine_name(&name)?;
                let provider = provider.unwrap_or_else(|| self.default_provider.clone());
                Response::Machine(self.backend.create_machine(&name, &provider)?)
            }
            Request::ListMachines => Response::Machines(self.backend.list_machines()?),
            Request::Machine { name } => {
                check_machine_name(&name)?;
                Response::Machine(self.backend.machine(&name)?)
            }
            Request::Run { name, command } => {
                check_machine_name(&name)?;
                if command.is_empty() {
                    return Err(BackendError::invalid(
                        "no command to run; write it after `--`: gobs-app run NAME -- CMD [ARGS...]",
                    ));
                }
                Response::RunOutput(self.backend.run(&name, &command)?)
            }
            Request::DestroyMachine { name } => {
                check_machine_name(&name)?;
                Response::Machine(self.backend.destroy_machine(&name)?)
            }
            Request::Providers => {
                let mut providers = self.backend.providers()?;
                for p in &mut providers {
                    p.default = p.name == self.default_provider;
                }
                Response::Providers(providers)
            }
        })
    }

    /// Closes the backend (see [`Backend::close`]).
    pub fn close(&mut self) -> Result<(), BackendError> {
        self.backend.close()
    }
}

/// Machine names become directory names and command arguments, so they are kept plain:
/// 1 to 63 ASCII letters, digits, `.`, `-` or `_`, starting with a letter or digit.
///
/// ```
/// use gobs_app::backend::service::check_machine_name;
/// assert!(check_machine_name("web-1").is_ok());
/// assert!(check_machine_name("../etc").is_err());
/// ```
pub fn check_machine_name(name: &str) -> Result<(), BackendError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && name.len() <= MAX_MACHINE_NAME;
    if ok {
        Ok(())
    } else {
        Err(BackendError::invalid(format!(
            "invalid machine name {name:?}: use 1 to {MAX_MACHINE_NAME} ASCII letters, digits, \
             '.', '-' or '_', starting with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::backend::ErrorKind;
    use crate::backend::testing::FakeBackend;

    fn service() -> Service {
        Service::new(Box::new(FakeBackend::default()), &Config::default())
    }

    fn error_kind(response: Response) -> ErrorKind {
        match response {
            Response::Error(e) => e.kind,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn create_uses_the_default_provider() {
        let s = service();
        let Response::Machine(m) = s.handle(Request::CreateMachine {
            name: "web-1".into(),
            provider: None,
        }) else {
            panic!()
        };
        assert_eq!(m.provider, "dummy");
        let Response::Machine(m) = s.handle(Request::CreateMachine {
            name: "web-2".into(),
            provider: Some("local".into()),
        }) else {
            panic!()
        };
        assert_eq!(m.provider, "local");
    }

    #[test]
    fn bad_names_never_reach_the_backend() {
        let s = service();
        for name in ["", "-x", "a/b", "..", "a b", &"x".repeat(64)] {
            let r = s.handle(Request::CreateMachine {
                name: name.to_string(),
                provider: None,
            });
            assert_eq!(error_kind(r), ErrorKind::InvalidRequest, "{name:?}");
        }
        let Response::Machines(list) = s.handle(Request::ListMachines) else {
            panic!()
        };
        assert!(list.is_empty());
    }

    #[test]
    fn run_needs_a_command() {
        let s = service();
        s.handle(Request::CreateMachine {
            name: "a".into(),
            provider: None,
        });
        let r = s.handle(Request::Run {
            name: "a".into(),
            command: vec![],
        });
        assert_eq!(error_kind(r), ErrorKind::InvalidRequest);
    }

    #[test]
    fn providers_mark_the_default() {
        let Response::Providers(list) = service().handle(Request::Providers) else {
            panic!()
        };
        let defaults: Vec<_> = list.iter().filter(|p| p.default).map(|p| &p.name).collect();
        assert_eq!(defaults, ["dummy"]);
    }

    #[test]
    fn backend_errors_become_error_responses() {
        let s = service();
        let r = s.handle(Request::Machine {
            name: "nope".into(),
        });
        assert_eq!(error_kind(r), ErrorKind::NotFound);
        let r = s.handle(Request::CreateMachine {
            name: "a".into(),
            provider: Some("aws".into()),
        });
        assert_eq!(error_kind(r), ErrorKind::UnknownProvider);
    }
}

//! Who may use the dashboard: whoever holds its access token, which the daemon makes at
//! start and `gobs-app web` prints (the control socket is the owner's alone, so only the
//! owner can learn it). There is no unauthenticated page, on loopback or elsewhere.
//!
//! The token arrives once in the login address and is then kept in a cookie that is
//! `HttpOnly` (scripts cannot read it) and `SameSite=Strict` (other sites' pages do not
//! send it). Actions (create, destroy) also need the page's CSRF token in a header, which a
//! cross-site form cannot set, and an `Origin` equal to the dashboard's own. Every request
//! must name the dashboard's own address in `Host`, so a DNS-rebinding page cannot talk to
//! it under another name.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The cookie that carries the token.
pub const COOKIE: &str = "gobs_dashboard";
/// The header that carries the CSRF token on actions.
pub const CSRF_HEADER: &str = "x-gobs-csrf";

/// The dashboard's secrets and the `Host` names it answers to.
#[derive(Debug, Clone)]
pub struct Access {
    token: String,
    csrf: String,
    hosts: Vec<String>,
}

/// 32 random bytes as lowercase base32 (52 characters).
fn secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(data_encoding::BASE32_NOPAD
        .encode(&bytes)
        .to_ascii_lowercase())
}

/// Compares without stopping at the first difference (no timing hint of a prefix).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// A request refused: its status and why, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401, 403 or 421.
    pub status: StatusCode,
    /// Why, and what to do.
    pub message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, format!("{}\n", self.message)).into_response()
    }
}

fn refused(status: StatusCode, message: &str) -> Refusal {
    Refusal {
        status,
        message: message.to_string(),
    }
}

impl Access {
    /// New secrets, for a dashboard listening on `addr`.
    pub fn new(addr: std::net::SocketAddr) -> Result<Access, getrandom::Error> {
        let mut hosts = vec![addr.to_string()];
        if addr.ip().is_loopback() {
            hosts.push(format!("localhost:{}", addr.port()));
        }
        Ok(Access {
            token: secret()?,
            csrf: secret()?,
            hosts,
        })
    }

    /// The access token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CSRF token the page carries.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether `given` is the access token.
    pub fn is_token(&self, given: &str) -> bool {
        same(given, &self.token)
    }

    /// The `Set-Cookie` value that keeps the token in the browser.
    pub fn cookie(&self) -> String {
        format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", self.token)
    }

    /// Refuses a request whose `Host` is not the dashboard's address.
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if self.hosts.iter().any(|h| h == host) {
            Ok(())
        } else {
            Err(refused(
                StatusCode::MISDIRECTED_REQUEST,
                &format!(
                    "this dashboard answers only to {}; open the address `gobs-app web` prints",
                    self.hosts.join(" or ")
                ),
            ))
        }
    }

    /// Refuses a request without the token (cookie, or `Authorization: Bearer`).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        self.check_host(headers)?;
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .map(|(_, v)| v);
        match bearer.or(cookie) {
            Some(given) if self.is_token(given) => Ok(()),
            _ => Err(refused(
                StatusCode::UNAUTHORIZED,
                "this dashboard needs its access token: run `gobs-app web` where the daemon \
                 runs, and open the address it prints",
            )),
        }
    }

    /// Refuses an action (a request that changes something) that is not the token
    /// holder's own page asking: it needs the token, the CSRF header, and the
    /// dashboard's own `Origin`.
    pub fn check_action(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        self.check(headers)?;
        let csrf = headers.get(CSRF_HEADER).and_then(|h| h.to_str().ok());
        if !csrf.is_some_and(|c| same(c, &self.csrf)) {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "refused: an action needs the dashboard page's CSRF token (header X-Gobs-Csrf)",
            ));
        }
        let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
        let own = origin
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(|host| self.hosts.iter().any(|h| h == host));
        if own {
            Ok(())
        } else {
            Err(refused(
                StatusCode::FORBIDDEN,
                &format!(
                    "refused: an action must come from the dashboard's own page (Origin {})",
                    origin.unwrap_or("missing")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn only_the_token_holders_own_page_may_act() {
        let access = Access::new("127.0.0.1:9465".parse().unwrap()).unwrap();
        let cookie = format!("a=b; {COOKIE}={}", access.token());
        let host = ("host", "127.0.0.1:9465");
        assert!(access.check(&headers(&[host])).is_err());
        assert!(
            access
                .check(&headers(&[host, ("cookie", "gobs_dashboard=x")]))
                .is_err()
        );
        assert!(access.check(&headers(&[host, ("cookie", &cookie)])).is_ok());
        let bearer = format!("Bearer {}", access.token());
        assert!(
            access
                .check(&headers(&[
                    ("host", "localhost:9465"),
                    ("authorization", &bearer)
                ]))
                .is_ok()
        );
        // Another name for the address (DNS rebinding) is refused, token or not.
        assert!(
            access
                .check(&headers(&[
                    ("host", "evil.example:9465"),
                    ("cookie", &cookie)
                ]))
                .is_err()
        );
        let csrf = (CSRF_HEADER, access.csrf());
        let origin = ("origin", "http://127.0.0.1:9465");
        let ok = [host, ("cookie", cookie.as_str()), csrf, origin];
        assert!(access.check_action(&headers(&ok)).is_ok());
        assert!(
            access.check_action(&headers(&ok[..3])).is_err(),
            "no Origin"
        );
        assert!(
            access
                .check_action(&headers(&[ok[0], ok[1], ok[3]]))
                .is_err(),
            "no CSRF"
        );
        let evil = [ok[0], ok[1], ok[2], ("origin", "http://evil.example")];
        assert!(access.check_action(&headers(&evil)).is_err());
        assert_ne!(access.token(), access.csrf());
        assert_eq!(access.token().len(), 52);
    }
}

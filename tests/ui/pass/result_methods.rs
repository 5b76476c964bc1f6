//! Methods returning `Result<T, E>`: an `Err` fails (rolls back) the turn; callers get
//! `T` directly, the error as the call's error.
use std::fmt;

use gobs_runtime::{BoxError, Error, Vat, define_actor};

#[derive(Debug)]
pub struct Empty;

impl fmt::Display for Empty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nothing left")
    }
}

impl std::error::Error for Empty {}

#[define_actor]
pub struct Stock {
    left: u32,
}

#[define_actor]
impl Stock {
    /// A custom error type.
    pub fn take(&mut self) -> Result<u32, Empty> {
        self.left = self.left.checked_sub(1).ok_or(Empty)?;
        Ok(self.left)
    }

    /// A `String` error, after changing state (rolled back on `Err`).
    pub fn take_many(&mut self, n: u32) -> Result<u32, String> {
        self.left = self.left.wrapping_sub(n);
        if self.left > 1000 {
            return Err(format!("cannot take {n}"));
        }
        Ok(self.left)
    }

    /// `std::io::Result`, a one-argument `Result` alias.
    pub fn check(&self) -> std::io::Result<()> {
        Ok(())
    }

    /// A boxed error.
    pub fn left(&self) -> Result<u32, BoxError> {
        Ok(self.left)
    }
}

fn main() {
    let vat = Vat::spawn("results").unwrap();
    let stock = vat.spawn_actor(Stock { left: 1 }).unwrap();
    assert_eq!(stock.send().take().wait().unwrap(), 0);
    let err = stock.send().take().wait().unwrap_err();
    assert!(matches!(err, Error::Actor { .. }), "{err}");
    assert!(err.to_string().contains("nothing left"), "{err}");

    // A near call's `Err` is the call's error; passing it on with `?` fails the turn,
    // which rolls back what `take_many` changed.
    let s = stock.clone();
    let err = vat
        .try_run(move || s.call().take_many(5).map(|_| ()))
        .unwrap_err();
    assert!(err.to_string().contains("cannot take 5"), "{err}");
    assert_eq!(stock.send().left().wait().unwrap(), 0);
    stock.send().check().wait().unwrap();
    vat.shutdown();
}

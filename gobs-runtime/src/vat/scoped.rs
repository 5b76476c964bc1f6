//! A per-thread pointer to a value that lives on the stack of whoever set it.
//!
//! [`Scoped::set`] points the cell at a value for as long as a closure runs and puts back
//! what was there before when the closure returns or unwinds; [`Scoped::with`] reads it as
//! an `Option<&T>`. Nesting works: each `set` restores the pointer it replaced.

use std::cell::Cell;
use std::ptr;

pub(crate) struct Scoped<T> {
    inner: Cell<*const T>,
}

impl<T> Scoped<T> {
    pub(crate) const fn new() -> Scoped<T> {
        Scoped {
            inner: Cell::new(ptr::null()),
        }
    }

    /// Points the cell at `value` while `f` runs.
    pub(crate) fn set<R>(&self, value: &T, f: impl FnOnce() -> R) -> R {
        struct Reset<'a, T> {
            cell: &'a Cell<*const T>,
            prev: *const T,
        }
        impl<T> Drop for Reset<'_, T> {
            fn drop(&mut self) {
                self.cell.set(self.prev);
            }
        }
        let prev = self.inner.replace(value as *const T);
        let _reset = Reset {
            cell: &self.inner,
            prev,
        };
        f()
    }

    /// Runs `f` with the value the cell points at, if any.
    pub(crate) fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let p = self.inner.get();
        // SAFETY: a non-null pointer was stored by `set`, whose borrow of the value lasts
        // for the whole closure it runs, and whose `Reset` guard puts the previous pointer
        // back when that closure returns or unwinds. So while the pointer is in the cell,
        // the value is alive and not moved. The reference handed to `f` is shared and
        // cannot outlive this call.
        f(unsafe { p.as_ref() })
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::Scoped;

    fn read(cell: &Scoped<u32>) -> Option<u32> {
        cell.with(|v| v.copied())
    }

    #[test]
    fn a_nested_set_puts_back_the_outer_value() {
        let cell = Scoped::new();
        let (outer, inner) = (1, 2);
        assert_eq!(read(&cell), None);
        cell.set(&outer, || {
            assert_eq!(read(&cell), Some(1));
            cell.set(&inner, || assert_eq!(read(&cell), Some(2)));
            assert_eq!(read(&cell), Some(1));
        });
        assert_eq!(read(&cell), None);
    }

    #[test]
    fn an_unwinding_set_puts_back_the_outer_value() {
        let cell = Scoped::new();
        let outer = 1;
        cell.set(&outer, || {
            let inner = 2;
            let unwound = catch_unwind(AssertUnwindSafe(|| {
                cell.set(&inner, || panic!("the closure panics"));
            }));
            assert!(unwound.is_err());
            // `inner` is still alive here, but the cell must not point at it any more.
            assert_eq!(read(&cell), Some(1));
        });
        assert_eq!(read(&cell), None);
    }
}

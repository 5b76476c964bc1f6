//! The user's own terminal during `run -t` and `shell`: put in raw mode, so every key
//! (Ctrl-C, Ctrl-Z, Ctrl-D included) is a byte for the machine's terminal, and given back as
//! it was on every way out: the run's end, an error, the daemon dying (the guard's drop), a
//! panic (a hook), and a signal that ends this process (SIGTERM, SIGHUP, SIGINT, SIGQUIT
//! are caught, the terminal restored, then the process ends with 128 + the signal). Its
//! size changes (SIGWINCH) are passed to the run.
//!
//! A terminal is needed on standard input and output; without one `-t` is refused (there is
//! no `-tt` to force it: a pipe has no size, no raw mode and no keys to send).

use std::io::{self, IsTerminal};
use std::sync::{Mutex, Once};

use rustix::termios::{OptionalActions, Termios, tcgetattr, tcgetwinsize, tcsetattr};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH};
use signal_hook::iterator::{Handle, Signals};

use crate::tty::{Tty, WinSize};

/// The terminal's settings before raw mode, while it is raw.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// The terminal this process's `run -t` asks for on the machine: `$TERM` and the size of
/// this one. Refused, saying why, without a terminal on standard input and output.
pub fn local_tty(term: Option<String>) -> Result<Tty, String> {
    if !io::stdin().is_terminal() || !io::stdout().is_terminal() {
        return Err(
            "run -t (and shell) needs a terminal on standard input and output, and one of them \
             is a pipe or a file; run it from a terminal, or drop -t to stream the command's \
             output and input through pipes"
                .to_string(),
        );
    }
    let size = size_of(io::stdout()).ok_or_else(|| {
        "cannot read the size of this terminal (TIOCGWINSZ failed); run it from a terminal"
            .to_string()
    })?;
    let tty = Tty {
        term: term
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "xterm".into()),
        size,
    };
    tty.check()?;
    Ok(tty)
}

fn size_of(fd: impl std::os::fd::AsFd) -> Option<WinSize> {
    tcgetwinsize(fd).ok().map(|w| WinSize {
        rows: w.ws_row,
        cols: w.ws_col,
    })
}

/// This process's terminal in raw mode, until dropped.
pub struct RawMode {
    signals: Handle,
}

impl RawMode {
    /// Puts the terminal of standard input in raw mode; `resized` is told each new size.
    pub fn enter(resized: impl Fn(WinSize) + Send + 'static) -> Result<RawMode, String> {
        let stdin = io::stdin();
        let saved =
            tcgetattr(&stdin).map_err(|e| format!("cannot read this terminal's settings: {e}"))?;
        let mut signals = Signals::new([SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT])
            .map_err(|e| format!("cannot watch this terminal's signals: {e}"))?;
        let handle = signals.handle();
        restore_on_panic();
        let mut raw = saved.clone();
        raw.make_raw();
        *SAVED.lock().unwrap_or_else(|p| p.into_inner()) = Some(saved);
        if let Err(e) = tcsetattr(&stdin, OptionalActions::Now, &raw) {
            restore();
            handle.close();
            return Err(format!("cannot put this terminal in raw mode: {e}"));
        }
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if signal == SIGWINCH {
                    if let Some(size) = size_of(io::stdout()) {
                        resized(size);
                    }
                    continue;
                }
                // The run ends with this process: the daemon sees the connection close
                // (or the embedded boss goes) and the command is killed.
                restore();
                std::process::exit(128 + signal);
            }
        });
        Ok(RawMode { signals: handle })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.signals.close();
        restore();
    }
}

/// Gives the terminal its settings from before raw mode back, if it is raw; idempotent.
pub fn restore() {
    let saved = SAVED.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(saved) = saved {
        let _ = tcsetattr(io::stdin(), OptionalActions::Now, &saved);
    }
}

/// A panic restores the terminal before its message is written.
fn restore_on_panic() {
    static HOOKED: Once = Once::new();
    HOOKED.call_once(|| {
        let earlier = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            earlier(info);
        }));
    });
}

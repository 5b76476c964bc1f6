//! What the command line writes to a terminal: a machine's bytes made harmless. A command's
//! output, a file's bytes or an error's words come from the machine, which may be hostile:
//! written raw to a terminal, escape sequences could retitle the window, rewrite what is on
//! the screen, or hide text. So when standard output or standard error is a terminal,
//! control characters are shown escaped (`\x1b`, `\r`, `\u009b`) and newlines and tabs kept
//! (`--json` output stays valid JSON: it has no raw control characters but DEL, C1 and
//! bidirectional ones, and those become JSON escapes)
//! ([`neutralise`], [`Neutral`]); `run --raw` passes them through, and so does `run -t`,
//! where the machine's terminal draws on this one ([`super::raw_terminal`]). When it is not a terminal
//! (a pipe, a file), bytes pass unchanged: `gobs-app run m -- cat f > f` stays a copy.

use std::io::{self, IsTerminal, Write};

/// Which of the command line's outputs are terminals whose bytes must be neutralised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Terminal {
    /// Standard output is a terminal.
    pub stdout: bool,
    /// Standard error is a terminal.
    pub stderr: bool,
}

impl Terminal {
    /// Neither output is neutralised: pipes and files, or `--raw`.
    pub const RAW: Terminal = Terminal {
        stdout: false,
        stderr: false,
    };

    /// Whether this process's standard output and error are terminals.
    pub fn detect() -> Terminal {
        Terminal {
            stdout: io::stdout().is_terminal(),
            stderr: io::stderr().is_terminal(),
        }
    }
}

/// `bytes` as a terminal may show them: newlines, tabs and printable text (UTF-8) kept;
/// other control characters, C1 controls, bidirectional overrides and bytes that are not
/// UTF-8 written as escapes.
///
/// ```
/// use gobs_app::cli::terminal::neutralise;
/// assert_eq!(neutralise(b"\x1b[2Jred\tok\n"), b"\\x1b[2Jred\tok\n");
/// assert_eq!(neutralise("caf\u{e9} \u{9b}".as_bytes()), "caf\u{e9} \\u009b".as_bytes());
/// ```
pub fn neutralise(bytes: &[u8]) -> Vec<u8> {
    let mut shown = Vec::with_capacity(bytes.len());
    let rest = escape_into(bytes, &mut shown);
    escape_bytes(rest, &mut shown);
    shown
}

/// Escapes `bytes` into `shown`; answers the incomplete UTF-8 sequence at its end, if any,
/// not yet written (the next bytes may complete it).
fn escape_into<'a>(mut bytes: &'a [u8], shown: &mut Vec<u8>) -> &'a [u8] {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                escape_text(text, shown);
                return &[];
            }
            Err(e) => {
                let (good, bad) = bytes.split_at(e.valid_up_to());
                if let Ok(text) = std::str::from_utf8(good) {
                    escape_text(text, shown);
                }
                match e.error_len() {
                    Some(n) => {
                        escape_bytes(&bad[..n], shown);
                        bytes = &bad[n..];
                    }
                    None => return bad,
                }
            }
        }
    }
}

fn escape_text(text: &str, shown: &mut Vec<u8>) {
    for c in text.chars() {
        match c {
            '\n' | '\t' => shown.push(c as u8),
            '\r' => shown.extend_from_slice(b"\\r"),
            '\0'..='\x1f' => shown.extend_from_slice(format!("\\x{:02x}", c as u32).as_bytes()),
            // DEL as `\u007f`, like the others below: valid in JSON strings too, so `--json`
            // output stays JSON.
            c if c == '\x7f' || is_hidden_control(c) => {
                shown.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                shown.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// C1 controls (a terminal may take U+009B as CSI) and the characters that reorder or hide
/// text (bidirectional overrides and isolates).
fn is_hidden_control(c: char) -> bool {
    matches!(c,
        '\u{80}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

fn escape_bytes(bytes: &[u8], shown: &mut Vec<u8>) {
    for b in bytes {
        shown.extend_from_slice(format!("\\x{b:02x}").as_bytes());
    }
}

/// A writer that neutralises what goes through it (see [`neutralise`]), or passes it
/// unchanged when `on` is false. A UTF-8 character split between two writes is kept whole;
/// [`Neutral::finish`] writes what is left of an unfinished one, escaped.
pub struct Neutral<'a> {
    inner: &'a mut dyn Write,
    on: bool,
    pending: Vec<u8>,
}

impl<'a> Neutral<'a> {
    /// Wraps `inner`; neutralises only if `on`.
    pub fn new(inner: &'a mut dyn Write, on: bool) -> Neutral<'a> {
        Neutral {
            inner,
            on,
            pending: Vec::new(),
        }
    }

    /// Writes an unfinished character's bytes (escaped) and flushes.
    pub fn finish(mut self) -> io::Result<()> {
        let mut shown = Vec::new();
        escape_bytes(&std::mem::take(&mut self.pending), &mut shown);
        self.inner.write_all(&shown)?;
        self.inner.flush()
    }
}

impl Write for Neutral<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.on {
            return self.inner.write(buf);
        }
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(buf);
        let mut shown = Vec::with_capacity(bytes.len());
        self.pending = escape_into(&bytes, &mut shown).to_vec();
        self.inner.write_all(&shown)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn shown(bytes: &[u8]) -> String {
        String::from_utf8(neutralise(bytes)).unwrap()
    }

    #[test]
    fn text_newlines_and_tabs_pass_unchanged() {
        let text = "line one\n\tindented — ünïcödé 日本語 🙂\n";
        assert_eq!(shown(text.as_bytes()), text);
        assert_eq!(shown(br"a\b"), r"a\b");
    }

    #[test]
    fn escape_sequences_and_control_characters_are_shown_escaped() {
        assert_eq!(shown(b"\x1b]0;pwned\x07"), r"\x1b]0;pwned\x07");
        assert_eq!(shown(b"\x1b[31mred\x1b[0m"), r"\x1b[31mred\x1b[0m");
        assert_eq!(shown(b"safe\rEVIL"), r"safe\rEVIL");
        assert_eq!(shown(b"\0\x08\x7f"), r"\x00\x08\u007f");
        // C1 CSI, and text reversed by a bidirectional override.
        assert_eq!(shown("\u{9b}2J".as_bytes()), r"\u009b2J");
        assert_eq!(shown("a\u{202e}b\u{2066}".as_bytes()), r"a\u202eb\u2066");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_shown_as_bytes() {
        assert_eq!(shown(b"ok\xff\xfe!"), r"ok\xff\xfe!");
        // A truncated character at the end.
        assert_eq!(shown(b"x\xe6\x97"), r"x\xe6\x97");
    }

    #[test]
    fn the_writer_keeps_characters_split_across_writes_whole() {
        let mut out = Vec::new();
        let mut w = Neutral::new(&mut out, true);
        let bytes = "日\x1b".as_bytes();
        w.write_all(&bytes[..1]).unwrap();
        w.write_all(&bytes[1..]).unwrap();
        w.write_all(b"\xe6").unwrap();
        w.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r"日\x1b\xe6");
    }

    #[test]
    fn the_writer_passes_everything_when_off() {
        let mut out = Vec::new();
        let mut w = Neutral::new(&mut out, false);
        w.write_all(b"\x1b[2J\xff").unwrap();
        w.finish().unwrap();
        assert_eq!(out, b"\x1b[2J\xff");
    }
}

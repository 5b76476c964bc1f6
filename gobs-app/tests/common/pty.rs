//! A pseudo-terminal in raw mode, for black-box tests of what the command line writes to a
//! terminal (no "\n" turned into "\r\n" on the way, so the bytes come back as written).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A new pty in raw mode: its master (to read) and its slave (for the child).
pub fn raw_pty() -> (File, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors, owned below; the other arguments may be null.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both are fresh descriptors that nothing else owns.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // SAFETY: a termios filled by tcgetattr on a descriptor this function owns.
    unsafe {
        let mut term: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &mut term), 0);
        libc::cfmakeraw(&mut term);
        assert_eq!(libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &term), 0);
    }
    (File::from(master), slave)
}

/// Everything written to the pty until its slave side is closed by all (the child exited).
pub fn read_until_closed(mut master: File) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // The pty's other end closed: the child exited.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => panic!("reading the pty: {e}"),
        }
    }
    out
}

//! The framing of the daemon's control socket, whatever the frames say. Two kinds of frame
//! travel on it:
//!
//! - **control frames**: one compact JSON object followed by `\n` (JSON escapes newlines
//!   inside strings, so a frame never holds a raw one): requests, answers
//!   ([`super::protocol`]) and a stream's control ([`super::stream`]);
//! - **data frames**: a stream's bytes as they are, without base64 or JSON escaping, on a
//!   connection whose request asked for them ([`Frames::Binary`]) once the daemon said it
//!   takes them ([`Accepted`]):
//!
//! ```text
//! 0x00 | channel: 1 byte | length: 4 bytes, big-endian | the bytes
//! ```
//!
//! A control frame starts with `{`, never with the zero byte, so a reader tells the kinds
//! apart by a frame's first byte. What a channel carries is its request's business (a
//! run's are numbered as file descriptors: 0 standard input, 1 output, 2 error). Every
//! read has a limit per kind of frame, checked before more is buffered: a data frame
//! announcing more than its limit is refused as soon as its header arrives.
//!
//! A client that does not ask for data frames gets none. A daemon that does not know them
//! refuses the request frame's `frames` field as unknown, so a client can tell and ask
//! again without it ([`crate::cli::run_stream`]).

use std::io::{self, BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The first byte of a data frame.
const DATA_MARK: u8 = 0;
/// A data frame's bytes before its payload: the mark, the channel, the length.
const DATA_HEADER: usize = 6;

/// How a request's stream data travels, as the client asked in its request frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Frames {
    /// In control frames, base64 (what every client and daemon understands).
    #[default]
    Json,
    /// In data frames.
    Binary,
}

impl Frames {
    /// Whether this is the default, which is not written out (so an older daemon sees
    /// the request frames it knows).
    pub fn is_json(&self) -> bool {
        *self == Frames::Json
    }
}

/// The daemon's first frame on a streamed request that asked for [`Frames::Binary`]: from
/// here, data frames may travel both ways.
///
/// ```text
/// ← {"type":"streaming","frames":"binary"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Accepted {
    /// The request is served as a stream, its data in frames of this kind.
    Streaming {
        /// The kind of data frames that follow.
        frames: Frames,
    },
}

/// One frame as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A control frame's JSON, newline excluded.
    Control(Vec<u8>),
    /// A data frame.
    Data {
        /// Which of the request's streams it belongs to.
        channel: u8,
        /// Its bytes.
        bytes: Vec<u8>,
    },
}

/// A frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A frame is longer than allowed.
    #[error("frame longer than {0} bytes")]
    TooLarge(usize),
    /// A data frame announces more bytes than allowed.
    #[error(
        "a data frame on channel {channel} announces {len} bytes, more than the {max} a data \
         frame may hold"
    )]
    DataTooLarge {
        /// The frame's channel.
        channel: u8,
        /// The length it announced.
        len: u32,
        /// The reader's limit.
        max: usize,
    },
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The whole frame did not arrive in time.
    #[error("the frame did not arrive in time")]
    Deadline,
    /// The frame is not the JSON expected.
    #[error("malformed frame: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes `value` as one control frame of at most `max` bytes and flushes.
pub fn write_frame(
    mut writer: impl Write,
    value: &impl Serialize,
    max: usize,
) -> Result<(), FrameError> {
    let mut bytes = serde_json::to_vec(value)?;
    if bytes.len() > max {
        return Err(FrameError::TooLarge(max));
    }
    bytes.push(b'\n');
    writer.write_all(&bytes)?;
    writer.flush()?;
    Ok(())
}

/// Writes `bytes` as one data frame of `channel`: its header and bytes together, as one
/// vectored write when the socket takes it all (the bytes are not copied into a frame).
pub fn write_data(mut writer: impl Write, channel: u8, bytes: &[u8]) -> Result<(), FrameError> {
    let len = u32::try_from(bytes.len()).map_err(|_| FrameError::TooLarge(u32::MAX as usize))?;
    let mut header = [DATA_MARK, channel, 0, 0, 0, 0];
    header[2..].copy_from_slice(&len.to_be_bytes());
    let mut parts = [io::IoSlice::new(&header), io::IoSlice::new(bytes)];
    let mut left = &mut parts[..];
    while !left.is_empty() {
        match writer.write_vectored(left) {
            Ok(0) => return Err(FrameError::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => io::IoSlice::advance_slices(&mut left, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads one control frame of at most `max` bytes; `Ok(None)` when the peer closed the
/// connection between frames.
pub fn read_frame<T: DeserializeOwned>(
    mut reader: impl BufRead,
    max: usize,
) -> Result<Option<T>, FrameError> {
    let mut line = Vec::new();
    let limit = max as u64 + 1;
    (&mut reader).take(limit).read_until(b'\n', &mut line)?;
    match line.last() {
        None => Ok(None),
        Some(b'\n') => Ok(Some(serde_json::from_slice(&line[..line.len() - 1])?)),
        Some(_) if line.len() as u64 >= limit => Err(FrameError::TooLarge(max)),
        Some(_) => Err(FrameError::Truncated),
    }
}

/// Reads frames from a socket, each of which must arrive whole before a deadline: a peer
/// trickling bytes cannot hold a connection longer than that, and a frame cannot make the
/// reader buffer more than its limit.
#[derive(Debug)]
pub struct FrameReader<'s> {
    stream: &'s UnixStream,
    pending: Vec<u8>,
    /// How much of `pending` is known to hold no newline: each byte is looked at once,
    /// not once per read.
    scanned: usize,
    /// What one read takes, before it joins `pending`.
    buf: Box<[u8]>,
}

/// Most bytes one read of a [`FrameReader`] takes.
const READ_SIZE: usize = 64 * 1024;

impl<'s> FrameReader<'s> {
    /// A reader of `stream`.
    pub fn new(stream: &'s UnixStream) -> FrameReader<'s> {
        FrameReader {
            stream,
            pending: Vec::new(),
            scanned: 0,
            buf: vec![0; READ_SIZE].into_boxed_slice(),
        }
    }

    /// The next control frame's bytes (newline excluded), at most `max` of them, all
    /// arrived by `deadline`; `Ok(None)` if the peer closed the connection between frames.
    /// A zero byte is read as any other: data frames are not taken here.
    pub fn next(&mut self, deadline: Instant, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
        match self.read(Some(deadline), max, None)? {
            Some(Frame::Control(frame)) => Ok(Some(frame)),
            Some(Frame::Data { .. }) => unreachable!("data frames are read only when asked"),
            None => Ok(None),
        }
    }

    /// The next frame of either kind: a control frame of at most `max_control` bytes or a
    /// data frame of at most `max_data`, all arrived by `deadline` (if any); `Ok(None)` if
    /// the peer closed the connection between frames.
    pub fn next_frame(
        &mut self,
        deadline: Option<Instant>,
        max_control: usize,
        max_data: usize,
    ) -> Result<Option<Frame>, FrameError> {
        self.read(deadline, max_control, Some(max_data))
    }

    fn read(
        &mut self,
        deadline: Option<Instant>,
        max_control: usize,
        max_data: Option<usize>,
    ) -> Result<Option<Frame>, FrameError> {
        loop {
            let room = match max_data {
                Some(max) if self.pending.first() == Some(&DATA_MARK) => {
                    if self.pending.len() >= DATA_HEADER {
                        return self.take_data(deadline, max).map(Some);
                    }
                    READ_SIZE
                }
                _ => {
                    if let Some(frame) = self.take_control(max_control)? {
                        return Ok(Some(Frame::Control(frame)));
                    }
                    (max_control + 1 - self.pending.len()).min(READ_SIZE)
                }
            };
            match read_by(self.stream, &mut self.buf[..room], deadline)? {
                0 if self.pending.is_empty() => return Ok(None),
                0 => return Err(FrameError::Truncated),
                n => self.pending.extend_from_slice(&self.buf[..n]),
            }
        }
    }

    /// The control frame at the start of `pending`, if its newline arrived.
    fn take_control(&mut self, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
        let unscanned = &self.pending[self.scanned..];
        if let Some(end) = memchr::memchr(b'\n', unscanned) {
            let rest = self.pending.split_off(self.scanned + end + 1);
            self.scanned = 0;
            let mut frame = std::mem::replace(&mut self.pending, rest);
            frame.pop();
            if frame.len() > max {
                return Err(FrameError::TooLarge(max));
            }
            return Ok(Some(frame));
        }
        self.scanned = self.pending.len();
        if self.pending.len() > max {
            return Err(FrameError::TooLarge(max));
        }
        Ok(None)
    }

    /// The data frame whose whole header starts `pending`: its length is checked first,
    /// then what of it has not arrived is read straight into its buffer.
    fn take_data(&mut self, deadline: Option<Instant>, max: usize) -> Result<Frame, FrameError> {
        let channel = self.pending[1];
        let mut len = [0; 4];
        len.copy_from_slice(&self.pending[2..DATA_HEADER]);
        let len = u32::from_be_bytes(len);
        if len as usize > max {
            return Err(FrameError::DataTooLarge { channel, len, max });
        }
        let end = DATA_HEADER + len as usize;
        if self.pending.len() >= end {
            let bytes = self.pending[DATA_HEADER..end].to_vec();
            self.pending.drain(..end);
            return Ok(Frame::Data { channel, bytes });
        }
        let mut bytes = vec![0; len as usize];
        let mut have = self.pending.len() - DATA_HEADER;
        bytes[..have].copy_from_slice(&self.pending[DATA_HEADER..]);
        self.pending.clear();
        while have < bytes.len() {
            match read_by(self.stream, &mut bytes[have..], deadline)? {
                0 => return Err(FrameError::Truncated),
                n => have += n,
            }
        }
        Ok(Frame::Data { channel, bytes })
    }
}

/// One read of `stream` into `buf` that ends by `deadline` (if any); 0 at the end of the
/// connection.
fn read_by(
    stream: &UnixStream,
    buf: &mut [u8],
    deadline: Option<Instant>,
) -> Result<usize, FrameError> {
    loop {
        let left = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(FrameError::Deadline);
                }
                Some(left)
            }
            None => None,
        };
        stream.set_read_timeout(left)?;
        match (&*stream).read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(FrameError::Deadline);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    /// A reader's end of a socket whose other end writes `sent`, `piece` bytes a write,
    /// then closes.
    fn feed(sent: Vec<u8>, piece: usize) -> (UnixStream, std::thread::JoinHandle<()>) {
        let (client, server) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            for part in sent.chunks(piece) {
                if (&client).write_all(part).is_err() {
                    return;
                }
            }
        });
        (server, writer)
    }

    #[test]
    fn the_frame_reader_splits_frames_across_and_within_reads() {
        let (client, server) = UnixStream::pair().unwrap();
        let big: Vec<u8> = (0..3 * READ_SIZE + 7)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let mut sent = big.clone();
        sent.extend_from_slice(b"\nsmall\n\nlast\n");
        sent.extend_from_slice(&[b'x'; 20]);
        let writer = std::thread::spawn(move || {
            (&client).write_all(&sent).unwrap();
            client
        });
        let mut reader = FrameReader::new(&server);
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        let mut next = |max| reader.next(deadline, max);
        assert_eq!(next(big.len()).unwrap(), Some(big));
        assert_eq!(next(10).unwrap(), Some(b"small".to_vec()));
        assert_eq!(next(10).unwrap(), Some(vec![]));
        assert_eq!(next(10).unwrap(), Some(b"last".to_vec()));
        assert!(matches!(next(10), Err(FrameError::TooLarge(10))));
        drop(writer.join().unwrap());
    }

    #[test]
    fn data_and_control_frames_come_apart_however_the_reads_split_them() {
        let big: Vec<u8> = (0..2 * READ_SIZE + 11).map(|i| (i % 251) as u8).collect();
        let mut sent = Vec::new();
        write_data(&mut sent, 1, &big).unwrap();
        sent.extend_from_slice(b"{\"a\":1}\n");
        write_data(&mut sent, 0, b"").unwrap();
        write_data(&mut sent, 2, b"\n{x").unwrap();
        sent.extend_from_slice(b"{}\n");
        let expected = [
            Frame::Data {
                channel: 1,
                bytes: big.clone(),
            },
            Frame::Control(b"{\"a\":1}".to_vec()),
            Frame::Data {
                channel: 0,
                bytes: vec![],
            },
            Frame::Data {
                channel: 2,
                bytes: b"\n{x".to_vec(),
            },
            Frame::Control(b"{}".to_vec()),
        ];
        for piece in [1, 5, 7, 4096, READ_SIZE + 3, sent.len()] {
            let (server, writer) = feed(sent.clone(), piece);
            let mut reader = FrameReader::new(&server);
            for frame in &expected {
                let read = reader.next_frame(Some(far()), 64, big.len()).unwrap();
                assert_eq!(read.as_ref(), Some(frame), "{piece} bytes a write");
            }
            assert_eq!(reader.next_frame(Some(far()), 64, big.len()).unwrap(), None);
            writer.join().unwrap();
        }
    }

    #[test]
    fn an_oversized_data_frame_is_refused_at_its_header_with_what_it_announced() {
        // Only the header is sent, and the connection stays open: the refusal cannot wait
        // for (or buffer) the 4 GiB it announces.
        let (client, server) = UnixStream::pair().unwrap();
        (&client)
            .write_all(&[DATA_MARK, 1, 0xff, 0xff, 0xff, 0xff])
            .unwrap();
        let mut reader = FrameReader::new(&server);
        let err = reader.next_frame(Some(far()), 64, 1024).unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::DataTooLarge {
                    channel: 1,
                    len: u32::MAX,
                    max: 1024
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "a data frame on channel 1 announces 4294967295 bytes, more than the 1024 a data \
             frame may hold"
        );
        assert!(
            reader.pending.capacity() <= READ_SIZE,
            "nothing of it was buffered"
        );
        drop(client);
    }

    #[test]
    fn a_data_frame_cut_short_is_truncated_and_a_slow_one_misses_its_deadline() {
        let mut sent = Vec::new();
        write_data(&mut sent, 1, &[7; 100]).unwrap();
        sent.truncate(50);
        let (server, writer) = feed(sent.clone(), 10);
        let mut reader = FrameReader::new(&server);
        let read = reader.next_frame(Some(far()), 64, 100);
        assert!(matches!(read, Err(FrameError::Truncated)), "{read:?}");
        writer.join().unwrap();

        let (client, server) = UnixStream::pair().unwrap();
        (&client).write_all(&sent).unwrap();
        let mut reader = FrameReader::new(&server);
        let soon = Instant::now() + Duration::from_millis(50);
        let read = reader.next_frame(Some(soon), 64, 100);
        assert!(matches!(read, Err(FrameError::Deadline)), "{read:?}");
        drop(client);
    }

    #[test]
    fn a_control_only_reader_takes_a_zero_byte_as_part_of_a_line() {
        let mut sent = Vec::new();
        write_data(&mut sent, 0, b"ab").unwrap();
        sent.push(b'\n');
        let (server, writer) = feed(sent.clone(), sent.len());
        let mut reader = FrameReader::new(&server);
        assert_eq!(
            reader.next(far(), 64).unwrap(),
            Some(sent[..sent.len() - 1].to_vec())
        );
        writer.join().unwrap();
    }

    #[test]
    fn the_accept_frame_and_the_frames_field_read_as_documented() {
        let accepted = Accepted::Streaming {
            frames: Frames::Binary,
        };
        assert_eq!(
            serde_json::to_string(&accepted).unwrap(),
            r#"{"type":"streaming","frames":"binary"}"#
        );
        assert!(Frames::default().is_json());
    }
}

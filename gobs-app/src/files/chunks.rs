//! A copy's stream over the chunk channels a streamed request already has: an
//! [`InputSource`] read as an [`io::Read`] (the writing side of a copy pulls its stream) and
//! an [`OutputSink`] written as an [`io::Write`] (the reading side pushes it, in chunks of at
//! most [`CHUNK`] bytes). Flow control is the channels': a slow other end blocks here.

use std::io::{self, Read, Write};

use crate::providers::local::pump::{InputSource, OutputSink};
use crate::run_io::CHUNK;

/// Reads what an [`InputSource`] gives, chunk by chunk; its end is end of file.
pub struct SourceReader {
    source: Box<dyn InputSource>,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
}

impl SourceReader {
    /// Reads `source`.
    pub fn new(source: Box<dyn InputSource>) -> SourceReader {
        SourceReader {
            source,
            chunk: Vec::new(),
            at: 0,
            ended: false,
        }
    }
}

impl Read for SourceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            match self.source.next().map_err(io::Error::other)? {
                Some(chunk) => (self.chunk, self.at) = (chunk, 0),
                None => self.ended = true,
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Writes to an [`OutputSink`] in chunks of [`CHUNK`] bytes.
pub struct SinkWriter {
    sink: Box<dyn OutputSink>,
    buf: Vec<u8>,
}

impl SinkWriter {
    /// Writes to `sink`.
    pub fn new(sink: Box<dyn OutputSink>) -> SinkWriter {
        SinkWriter {
            sink,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn pass_on(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.sink.write(chunk).map_err(io::Error::other)
    }
}

impl Write for SinkWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = bytes.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&bytes[..n]);
        if self.buf.len() == CHUNK {
            self.pass_on()?;
        }
        Ok(n)
    }

    /// Passes on what is buffered and waits until the other end took everything.
    fn flush(&mut self) -> io::Result<()> {
        self.pass_on()?;
        self.sink.flush().map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use super::*;

    struct Chunks(Vec<Vec<u8>>);
    impl InputSource for Chunks {
        fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
            Ok((!self.0.is_empty()).then(|| self.0.remove(0)))
        }
    }

    struct Kept(Arc<Mutex<Vec<Vec<u8>>>>);
    impl OutputSink for Kept {
        fn write(&mut self, chunk: Vec<u8>) -> Result<(), String> {
            self.0.lock().unwrap().push(chunk);
            Ok(())
        }
    }

    #[test]
    fn chunks_read_as_one_stream_and_writes_go_out_in_chunks_of_at_most_chunk() {
        let source = Chunks(vec![b"ab".to_vec(), vec![], b"cde".to_vec()]);
        let mut all = Vec::new();
        SourceReader::new(Box::new(source))
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, b"abcde");

        let kept = Arc::new(Mutex::new(Vec::new()));
        let mut w = SinkWriter::new(Box::new(Kept(kept.clone())));
        w.write_all(&vec![7u8; CHUNK * 2 + 10]).unwrap();
        w.flush().unwrap();
        let sizes: Vec<usize> = kept.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [CHUNK, CHUNK, 10]);
    }
}

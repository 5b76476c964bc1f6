//! What a raw [`super::Peer`] talks over: a link of the simulated network, or (in other
//! crates' tests) a real socket.

use super::net::{End, LinkId, Net, Step};

/// What one [`Wire::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum WireRead {
    /// More bytes arrived (appended to the buffer).
    Data,
    /// The other end closed the connection and everything it sent has been read.
    Ended,
    /// Nothing arrived, and nothing will: the other end is idle.
    Quiet,
}

/// A byte stream to a node.
pub trait Wire {
    /// Sends bytes as they are.
    fn write(&mut self, bytes: &[u8]);
    /// Waits for more bytes and appends them to `buf`.
    fn read(&mut self, buf: &mut Vec<u8>) -> WireRead;
}

/// A link of a [`Net`], from its raw-peer end. Dropping it closes the connection.
#[derive(Debug)]
pub struct SimWire {
    pub(super) net: Net,
    pub(super) link: LinkId,
}

impl Drop for SimWire {
    fn drop(&mut self) {
        if let Ok(mut w) = self.net.world.try_borrow_mut() {
            w.close(self.link, End::Peer, "closed by the peer");
        }
    }
}

impl Wire for SimWire {
    fn write(&mut self, bytes: &[u8]) {
        self.net
            .world
            .borrow_mut()
            .write(self.link, End::Peer, bytes.to_vec());
    }

    /// Moves frames through the network (moving the clock to their arrival) until some
    /// reach this end.
    fn read(&mut self, buf: &mut Vec<u8>) -> WireRead {
        let mut w = self.net.world.borrow_mut();
        loop {
            let Some(link) = w.links.get_mut(&self.link) else {
                return WireRead::Ended;
            };
            if !link.inbox.is_empty() {
                buf.append(&mut link.inbox);
                return WireRead::Data;
            }
            if link.peer_ended() {
                return WireRead::Ended;
            }
            if w.step(std::time::Duration::MAX) == Step::Quiet {
                return WireRead::Quiet;
            }
        }
    }
}

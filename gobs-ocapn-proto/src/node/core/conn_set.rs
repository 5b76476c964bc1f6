//! The connections with output waiting to be flushed, or with `op:gc-answer`s waiting:
//! every message marks one, and a node usually has a few, so a sorted vector that keeps
//! its room serves where a `BTreeSet` allocated a node for every message. Taken in
//! order, as the `BTreeSet` gave them.

use crate::captp::ConnId;

#[derive(Debug, Default)]
pub(crate) struct ConnSet(Vec<ConnId>);

impl ConnSet {
    pub(crate) fn insert(&mut self, conn: ConnId) {
        if let Err(at) = self.0.binary_search(&conn) {
            self.0.insert(at, conn);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes the lowest, if any.
    pub(crate) fn pop_first(&mut self) -> Option<ConnId> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_out_once_each_in_order() {
        let mut s = ConnSet::default();
        for c in [5, 1, 3, 1, 5] {
            s.insert(ConnId(c));
        }
        let mut out = vec![];
        while let Some(c) = s.pop_first() {
            out.push(c.0);
        }
        assert_eq!(out, [1, 3, 5]);
        assert!(s.is_empty());
    }
}

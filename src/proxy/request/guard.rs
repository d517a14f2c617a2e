//! Counts that a request holds while it runs and gives back however it ends — answered,
//! failed, cut short by the client, or unwound by a panic — because they are dropped, not
//! decremented by hand.

use super::super::node::Node;
use super::super::Gateway;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Counts one client request as in flight until dropped: graceful shutdown waits for the
/// count to reach zero, and `keel_http_in_flight{listener="proxy"}` shows it.
pub(crate) struct InFlight {
    gw: Arc<Gateway>,
}

impl InFlight {
    pub(crate) fn new(gw: &Arc<Gateway>) -> Self {
        gw.in_flight.fetch_add(1, Ordering::AcqRel);
        gw.in_flight_gauge().inc();
        InFlight { gw: gw.clone() }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gw.in_flight_gauge().dec();
        if self.gw.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.gw.idle.notify_waiters();
        }
    }
}

/// Counts an attempt in its node's `in_flight` until dropped (removing a node drains on it).
pub(crate) struct NodeInFlight<'a>(&'a Node);

impl<'a> NodeInFlight<'a> {
    pub(crate) fn new(node: &'a Node) -> Self {
        node.in_flight.fetch_add(1, Ordering::AcqRel);
        NodeInFlight(node)
    }
}

impl Drop for NodeInFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

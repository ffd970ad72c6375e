//! Where the exchange between a client and its server connection stands.
//!
//! The client actor reports each message header it forwards (both directions) and this
//! tracker answers the questions that matter: may the server go back to the pool, and if the
//! client vanished now, what would it take to salvage the server connection?

use crate::protocol::backend::TxStatus;
use crate::protocol::tag::{backend as be, frontend as fe};

/// State of one server connection's conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Query, Sync and FunctionCall messages sent whose ReadyForQuery has not arrived.
    pub pending_ready: u32,
    /// Extended-protocol messages sent since the last Sync.
    pub unsynced: bool,
    /// The server is in COPY FROM STDIN and expects CopyData/CopyDone/CopyFail.
    pub copy_in: bool,
    /// The server is sending COPY TO STDOUT data.
    pub copy_out: bool,
    /// Transaction status from the last ReadyForQuery.
    pub tx: TxStatus,
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange {
            pending_ready: 0,
            unsynced: false,
            copy_in: false,
            copy_out: false,
            tx: TxStatus::Idle,
        }
    }
}

/// What must happen to a server connection whose client went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SalvagePlan {
    /// A query is running: send a CancelRequest first.
    pub cancel: bool,
    /// The server waits for COPY data: send CopyFail.
    pub copy_fail: bool,
    /// Extended-protocol messages without a Sync: send Sync.
    pub sync: bool,
    /// ReadyForQuery messages to read before the connection is quiet.
    pub drain: u32,
    /// A transaction may be open afterwards: send ROLLBACK.
    pub rollback: bool,
}

impl Exchange {
    /// A frontend message with `tag` was forwarded to the server.
    pub fn frontend(&mut self, tag: u8) {
        match tag {
            fe::QUERY | fe::FUNCTION_CALL => self.pending_ready += 1,
            fe::SYNC => {
                self.pending_ready += 1;
                self.unsynced = false;
            }
            fe::PARSE | fe::BIND | fe::DESCRIBE | fe::EXECUTE | fe::CLOSE | fe::FLUSH => {
                self.unsynced = true
            }
            fe::COPY_DONE | fe::COPY_FAIL => self.copy_in = false,
            _ => {}
        }
    }

    /// A backend message with `tag` arrived; `ready` is the ReadyForQuery status if it is one.
    pub fn backend(&mut self, tag: u8, ready: Option<TxStatus>) {
        match tag {
            be::READY_FOR_QUERY => {
                self.pending_ready = self.pending_ready.saturating_sub(1);
                if let Some(status) = ready {
                    self.tx = status;
                }
                self.copy_in = false;
                self.copy_out = false;
            }
            be::COPY_IN_RESPONSE => self.copy_in = true,
            be::COPY_OUT_RESPONSE => self.copy_out = true,
            be::COPY_DONE => self.copy_out = false,
            _ => {}
        }
    }

    /// Nothing is in flight: every request has been answered.
    pub fn is_quiet(&self) -> bool {
        self.pending_ready == 0 && !self.unsynced && !self.copy_in
    }

    /// Quiet and outside a transaction: the connection may serve another client.
    pub fn is_idle(&self) -> bool {
        self.is_quiet() && self.tx == TxStatus::Idle
    }

    /// What salvaging this connection takes (the caller checks the stream is at a message
    /// boundary first; a half-sent message cannot be salvaged).
    pub fn salvage_plan(&self) -> SalvagePlan {
        let running = self.pending_ready > 0 && !self.copy_in;
        SalvagePlan {
            cancel: running,
            copy_fail: self.copy_in,
            sync: self.unsynced,
            drain: self.pending_ready + u32::from(self.unsynced),
            rollback: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_query_round_trip_is_idle_after_ready() {
        let mut x = Exchange::default();
        x.frontend(b'Q');
        assert!(!x.is_idle());
        x.backend(b'T', None);
        x.backend(b'D', None);
        x.backend(b'C', None);
        x.backend(b'Z', Some(TxStatus::Idle));
        assert!(x.is_idle());
    }

    #[test]
    fn pipelined_syncs_need_every_ready() {
        let mut x = Exchange::default();
        for t in [b'P', b'B', b'E', b'S', b'B', b'E', b'S'] {
            x.frontend(t);
        }
        x.backend(b'Z', Some(TxStatus::Idle));
        assert!(!x.is_idle(), "one ReadyForQuery still due");
        x.backend(b'Z', Some(TxStatus::Idle));
        assert!(x.is_idle());
    }

    #[test]
    fn unsynced_messages_keep_the_server() {
        let mut x = Exchange::default();
        x.frontend(b'P');
        x.frontend(b'H');
        assert!(!x.is_quiet());
        assert_eq!(x.salvage_plan().drain, 1);
        assert!(x.salvage_plan().sync);
    }

    #[test]
    fn open_transaction_is_quiet_but_not_idle() {
        let mut x = Exchange::default();
        x.frontend(b'Q');
        x.backend(b'Z', Some(TxStatus::InTransaction));
        assert!(x.is_quiet());
        assert!(!x.is_idle());
        let plan = x.salvage_plan();
        assert!(!plan.cancel && plan.rollback && plan.drain == 0);
    }

    #[test]
    fn copy_in_plan_fails_the_copy_without_cancel() {
        let mut x = Exchange::default();
        x.frontend(b'Q');
        x.backend(b'G', None);
        x.frontend(b'd');
        let plan = x.salvage_plan();
        assert!(plan.copy_fail && !plan.cancel);
        assert_eq!(plan.drain, 1);
        x.frontend(b'c');
        x.backend(b'C', None);
        x.backend(b'Z', Some(TxStatus::Idle));
        assert!(x.is_idle());
    }
}

//! Batches made on a helper thread and used on the caller's, in order, each handed
//! back empty for the helper to fill again.
//!
//! Two stages run a step ahead of their consumer this way: the spool's final merge
//! (record bytes) and the message stream (decoded messages). Handing the batches
//! back keeps memory fixed and, because the helper refills the same buffers, keeps
//! each allocation on the thread that made it (glibc's malloc serves memory freed
//! on another thread with fresh pages again and again; see `hipchat/history.rs`).
//! std's channels and threads are all it takes.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use crate::error::{Error, ErrorKind, Result};

/// The consumer's end of a helper thread that fills batches of type `B`.
pub struct Handoff<B> {
    batches: Option<Receiver<Result<B>>>,
    spares: Sender<B>,
    helper: Option<JoinHandle<()>>,
}

/// The helper's end: where it takes empty batches and hands full ones.
pub struct Producer<B> {
    batches: SyncSender<Result<B>>,
    spares: Receiver<B>,
}

impl<B: Default> Producer<B> {
    /// A batch to fill: one the consumer is done with, or a new one.
    pub fn spare(&self) -> B {
        self.spares.try_recv().unwrap_or_default()
    }

    /// Hands over a batch (or an error, after the batches before it); false when
    /// the consumer has hung up and the helper should stop.
    pub fn send(&self, batch: Result<B>) -> bool {
        self.batches.send(batch).is_ok()
    }
}

impl<B: Default + Send + 'static> Handoff<B> {
    /// Starts `fill` on a helper thread named `name`; at most `queue` full batches
    /// wait for the consumer.
    pub fn start(name: &str, queue: usize, fill: impl FnOnce(Producer<B>) + Send + 'static) -> Result<Self> {
        let (batch_tx, batches) = sync_channel(queue);
        let (spares, spare_rx) = channel();
        let producer = Producer { batches: batch_tx, spares: spare_rx };
        let helper = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || fill(producer))
            .map_err(|e| Error::new(ErrorKind::Other, format!("cannot start the {name} thread: {e}")))?;
        Ok(Handoff { batches: Some(batches), spares, helper: Some(helper) })
    }

    /// The next batch, handing `used` back for reuse; `None` once the helper has
    /// ended (and after an error, which comes once, after the batches before it).
    pub fn next(&mut self, used: B) -> Result<Option<B>> {
        let _ = self.spares.send(used);
        let Some(batches) = &self.batches else { return Ok(None) };
        match batches.recv() {
            Ok(Ok(batch)) => Ok(Some(batch)),
            Ok(Err(e)) => {
                self.batches = None;
                Err(e)
            }
            Err(_) => {
                self.batches = None;
                Ok(None)
            }
        }
    }
}

impl<B> Drop for Handoff<B> {
    /// Hangs up (the helper stops at its next handover) and waits for it.
    fn drop(&mut self) {
        self.batches = None;
        if let Some(helper) = self.helper.take() {
            let _ = helper.join();
        }
    }
}

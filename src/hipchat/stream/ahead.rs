//! The message stream on a thread of its own, a batch of messages ahead of the
//! writer.
//!
//! A writer's thread used to pull every message out of the stream itself: decode
//! the spool record, compare it with the copies seen at its time, look up its
//! attachment. That was a quarter of a Mattermost write pass (perf, 460k messages),
//! done one after the other with the formatting, while the other cores waited. Here
//! a helper thread does it and hands over messages in pooled batches, so the writer
//! only formats and each core has one stage of the pass.
//!
//! The messages cross in place: the helper swaps each one out of the stream's group
//! into a batch slot and the writer only reads it. Batches come back to the helper,
//! whose stream decodes the next records into the same memory, so a message is
//! allocated and freed on one thread only (glibc's malloc serves memory freed on
//! another thread with fresh pages again and again; see `hipchat/history.rs`).
//!
//! The report stays the writer's: the helper records what it would have told the
//! report as [`Event`]s, each placed before the message it came with, and the
//! writer applies them in that order. The report is the same, skip for skip, as
//! when the stream ran inline.

use super::{Event, Unique};
use crate::error::{Error, ErrorKind, Result};
use crate::model::Message;
use crate::report::Report;
use crate::storage::handoff::{Handoff, Producer};

/// Messages per batch at most.
const BATCH_MESSAGES: usize = 256;
/// Bytes of text per batch at most (long texts make short batches).
const BATCH_TEXT_BYTES: usize = 256 * 1024;
/// Batches that may wait for the writer.
const QUEUE: usize = 2;
/// A recycled slot whose text buffer grew past this gives it back, so slots that
/// once held a long message do not keep its memory for the rest of the run.
const KEPT_TEXT_CAPACITY: usize = 16 * 1024;

/// Messages in their first `len` slots, the events to apply before each (by the
/// index of the message they precede; `len` for those after the last), and
/// whether the stream ends with this batch.
#[derive(Default)]
struct Batch {
    /// Boxed like the stream's group, so handing a message over swaps pointers.
    #[allow(clippy::vec_box)] // boxed on purpose: see above
    messages: Vec<Box<Message>>,
    len: usize,
    events: Vec<(usize, Option<Event>)>,
    text_bytes: usize,
    last: bool,
}

impl Batch {
    /// Empties the batch for refilling; its slots stay for reuse.
    fn recycle(&mut self) {
        for m in &mut self.messages[..self.len] {
            if m.text.capacity() > KEPT_TEXT_CAPACITY {
                m.text = String::new();
            }
        }
        (self.len, self.text_bytes, self.last) = (0, 0, false);
        self.events.clear();
    }

    fn is_full(&self) -> bool {
        self.len == BATCH_MESSAGES || self.text_bytes >= BATCH_TEXT_BYTES
    }

    /// Moves `slot`'s message into the batch, leaving a used message in its place
    /// for the stream to decode into.
    fn take(&mut self, slot: &mut Box<Message>) {
        if self.len == self.messages.len() {
            self.messages.push(Box::new(crate::storage::spool::blank_message()));
        }
        std::mem::swap(&mut self.messages[self.len], slot);
        self.text_bytes += self.messages[self.len].text.len();
        self.len += 1;
    }
}

/// The writer's end: batches in, messages and report events out, in order.
pub(super) struct StreamAhead {
    handoff: Handoff<Batch>,
    current: Batch,
    /// The next message of `current` to hand out, and its next event to apply.
    next: usize,
    next_event: usize,
}

impl StreamAhead {
    /// Starts the stream on a helper thread.
    pub fn start(unique: Box<Unique>) -> Result<Self> {
        let handoff = Handoff::start("hcconv-stream", QUEUE, move |producer| serve(unique, producer))?;
        Ok(StreamAhead { handoff, current: Batch::default(), next: 0, next_event: 0 })
    }

    /// The next message, after applying to `report` what the stream found before
    /// it; `None` after the last. An error comes after the messages before it.
    pub fn next(&mut self, report: &mut Report) -> Result<Option<&Message>> {
        loop {
            while let Some((at, event)) = self.current.events.get_mut(self.next_event) {
                if *at != self.next {
                    break;
                }
                if let Some(event) = event.take() {
                    event.apply(report);
                }
                self.next_event += 1;
            }
            if self.next < self.current.len {
                self.next += 1;
                return Ok(Some(&self.current.messages[self.next - 1]));
            }
            if self.current.last {
                return Ok(None);
            }
            let used = std::mem::take(&mut self.current);
            (self.next, self.next_event) = (0, 0);
            match self.handoff.next(used)? {
                Some(batch) => self.current = batch,
                // The helper ended without sending the last batch: it panicked.
                None => return Err(Error::new(ErrorKind::Other, "the message stream's thread stopped before the last message")),
            }
        }
    }
}

/// The helper: fills batches until the stream ends, fails, or the writer hangs up.
fn serve(mut unique: Box<Unique>, producer: Producer<Batch>) {
    let mut events = Vec::new();
    loop {
        let mut batch = producer.spare();
        batch.recycle();
        let mut failure = None;
        while !batch.is_full() {
            let found = unique.next(&mut events);
            let at = batch.len;
            batch.events.extend(events.drain(..).map(|e| (at, Some(e))));
            match found {
                Ok(Some(i)) => batch.take(&mut unique.group[i]),
                Ok(None) => {
                    batch.last = true;
                    break;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let last = batch.last;
        if !producer.send(Ok(batch)) {
            return;
        }
        if let Some(e) = failure {
            producer.send(Err(e));
            return;
        }
        if last {
            return;
        }
    }
}

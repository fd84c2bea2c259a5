//! Strictly increasing timestamps within one conversation.
//!
//! Mattermost merges two posts with the same channel, millisecond and text, and Qiscus
//! needs an unambiguous order; Hipchat's microseconds collapse when rounded to the
//! target's milliseconds. Bumping a tie by one millisecond keeps every message and
//! the order the stream already established.

/// Hands out times that never repeat or go back within a conversation.
#[derive(Debug, Default, Clone)]
pub struct StrictClock {
    last: Option<i64>,
    /// How many times were moved forward to stay unique.
    pub shifted: u64,
}

impl StrictClock {
    /// A clock for a new conversation.
    pub fn new() -> Self {
        Self::default()
    }

    /// `at`, or one more than the previous time if that is not later.
    pub fn next(&mut self, at: i64) -> i64 {
        let t = match self.last {
            Some(prev) if at <= prev => {
                self.shifted += 1;
                prev + 1
            }
            _ => at,
        };
        self.last = Some(t);
        t
    }

    /// Forgets the previous time (start of another conversation).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_are_bumped_in_order() {
        let mut c = StrictClock::new();
        assert_eq!([c.next(5), c.next(5), c.next(5), c.next(9), c.next(7)], [5, 6, 7, 9, 10]);
        assert_eq!(c.shifted, 3);
        c.reset();
        assert_eq!(c.next(1), 1);
    }
}

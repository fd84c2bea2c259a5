//! The filters migration runbooks need: a date window, a set of rooms, and whole
//! parts left out (private messages, attachment files). Whatever a filter leaves out
//! is reported as skipped with [`SkipReason::Filtered`], never silently dropped.

use chrono::{NaiveDate, NaiveTime};

use crate::error::{Error, Result};
use crate::hipchat::MessageFilter;
use crate::hipchat::Export;
use crate::hipchat::time::parse_timestamp;
use crate::model::{Conversation, Message, Timestamp};
use crate::report::{Entity, Report, SkipReason};

/// What to leave out of a conversion.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Keep messages at or after this instant.
    pub since: Option<Timestamp>,
    /// Keep messages before this instant.
    pub until: Option<Timestamp>,
    /// Keep only these rooms (ids or names, case-insensitive); empty keeps all.
    pub rooms: Vec<String>,
    /// Leave private messages out.
    pub no_private: bool,
    /// Leave attachment files out (messages stay, with their text).
    pub no_files: bool,
}

/// Reads `--since`/`--until`: `YYYY-MM-DD` (UTC midnight; for `until`, the end of
/// that day) or an RFC 3339 instant.
pub fn parse_date(raw: &str, end_of_day: bool) -> Result<Timestamp> {
    if let Ok(day) = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d") {
        let day = if end_of_day { day.succ_opt().unwrap_or(day) } else { day };
        return Ok(Timestamp(day.and_time(NaiveTime::MIN).and_utc().timestamp_micros()));
    }
    parse_timestamp(raw).ok_or_else(|| Error::usage(format!("'{raw}' is not a date: use YYYY-MM-DD or an RFC 3339 time such as 2018-04-02T15:00:00Z")))
}

impl Filters {
    /// True when nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.since.is_none() && self.until.is_none() && self.rooms.is_empty() && !self.no_private && !self.no_files
    }

    /// Removes unselected rooms from the catalog (reporting them) and hands the
    /// message-level part to the stream. A `--rooms` entry that matches no room is a
    /// usage error, so a typo never yields an empty migration.
    pub fn apply(&self, export: &mut Export, report: &mut Report) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        if !self.rooms.is_empty() {
            let cat = &mut export.catalog;
            for sel in &self.rooms {
                let matched: Vec<String> = cat.rooms.values().filter(|r| selects(sel, r.id, &r.name)).map(|r| format!("{} ({:?})", r.id, r.name)).collect();
                if matched.is_empty() {
                    return Err(Error::usage(format!("--rooms: no room has the id or name '{sel}'")));
                }
                if matched.len() > 1 {
                    report.warn(format!("--rooms: '{sel}' selects {} rooms: {}; give ids to pick one", matched.len(), matched.join(", ")));
                }
            }
            let dropped: Vec<_> = cat.rooms.values().filter(|r| !self.rooms.iter().any(|s| selects(s, r.id, &r.name))).map(|r| (r.id, r.is_placeholder)).collect();
            for (id, placeholder) in dropped {
                if !placeholder {
                    report.skip(Entity::Room, id.to_string(), SkipReason::Filtered, "not selected by --rooms");
                }
                cat.rooms.remove(&id);
                cat.room_posters.remove(&id);
            }
        }
        if self.no_private {
            export.catalog.conversations.clear();
        }
        let kept: std::collections::BTreeSet<u64> = export.catalog.rooms.keys().copied().collect();
        let filters = self.clone();
        let rejects = Box::new(move |m: &Message| filters.rejects(m, &|id| kept.contains(&id)));
        export.messages.set_filter(MessageFilter { rejects, no_files: self.no_files });
        Ok(())
    }

    /// Why `m` is left out, or `None` to keep it.
    pub fn rejects(&self, m: &Message, rooms_kept: &dyn Fn(u64) -> bool) -> Option<&'static str> {
        if self.since.is_some_and(|t| m.time < t) {
            return Some("before --since");
        }
        if self.until.is_some_and(|t| m.time >= t) {
            return Some("at or after --until");
        }
        match m.conversation {
            Conversation::Direct { .. } if self.no_private => Some("--no-private"),
            Conversation::Room(id) if !self.rooms.is_empty() && !rooms_kept(id) => Some("room not selected by --rooms"),
            _ => None,
        }
    }
}

fn selects(selector: &str, id: u64, name: &str) -> bool {
    selector.trim().parse::<u64>().is_ok_and(|n| n == id) || selector.trim().eq_ignore_ascii_case(name.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("2018-04-02", false).unwrap().to_rfc3339(), "2018-04-02T00:00:00.000000Z");
        assert_eq!(parse_date("2018-04-02", true).unwrap().to_rfc3339(), "2018-04-03T00:00:00.000000Z");
        assert_eq!(parse_date("2018-04-02T15:00:00+02:00", false).unwrap().to_rfc3339(), "2018-04-02T13:00:00.000000Z");
        assert!(parse_date("April", false).is_err());
    }

    #[test]
    fn room_selectors() {
        assert!(selects("3", 3, "x"));
        assert!(selects("dev ops", 2, "Dev Ops"));
        assert!(!selects("dev", 2, "Dev Ops"));
    }
}

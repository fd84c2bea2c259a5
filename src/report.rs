//! The run report: what came in, what went out, what was skipped and why.
//!
//! Every reader and writer records into one [`Report`], so "counts in = counts out +
//! counts skipped" can be checked for every entity, and `--report FILE` gives runbooks
//! the same numbers as JSON. A skip always carries a typed [`SkipReason`].

mod listed;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

pub use listed::{Listed, IN_MEMORY, MAX_LISTED};

/// The kinds of things an export holds, as counted in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// A user from users.json (or a placeholder for an unknown sender).
    User,
    /// A room from rooms.json.
    Room,
    /// A room or private message.
    Message,
    /// A file attached to a message.
    Attachment,
    /// A custom emoticon.
    Emoticon,
    /// A user's avatar image.
    Avatar,
    /// An archive entry (a file inside the tar or folder).
    Entry,
}

impl Entity {
    /// Every entity, so a report names each one even when the export has none.
    pub const ALL: [Entity; 7] = [Entity::User, Entity::Room, Entity::Message, Entity::Attachment, Entity::Emoticon, Entity::Avatar, Entity::Entry];
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).ok();
        f.pad(s.as_ref().and_then(|v| v.as_str()).unwrap_or("?"))
    }
}

/// Why something was not converted. Shared by the reader and every writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The same message appears twice (same id and content), e.g. in both PM histories.
    Duplicate,
    /// Deleted in Hipchat (has the `deleted` object, empty text).
    Deleted,
    /// A message whose timestamp cannot be parsed, so it cannot be placed in time.
    BadTimestamp,
    /// A history element that is not a message object at all.
    Malformed,
    /// A history file whose JSON is damaged (only with `--skip-damaged`).
    DamagedFile,
    /// The file the JSON names is not in the export.
    MissingFile,
    /// A tar entry that is a symlink, hard link, device or other non-regular file.
    LinkOrSpecialEntry,
    /// A tar entry whose path is absolute or climbs out with `..`.
    UnsafePath,
    /// An entry the format does not describe (kept out, counted).
    UnrecognisedEntry,
    /// An entry larger than `--max-entry-size`.
    TooLarge,
    /// A message kind the target cannot hold.
    UnsupportedKind,
    /// Left out by a filter flag (`--since`, `--rooms`, `--no-private`, …).
    Filtered,
    /// A room deleted in Hipchat, left out by `--skip-deleted-rooms`.
    DeletedRoom,
    /// An emoticon name that the target reserves (e.g. a system emoji).
    ReservedName,
    /// An image that is over the target's size limit in every size.
    ImageTooLarge,
    /// Not valid for the target for another reason (the detail says which).
    Invalid,
}

/// One skipped item.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Skip {
    /// What was skipped.
    pub entity: Entity,
    /// Its id or path in the export.
    pub id: String,
    /// Why.
    pub reason: SkipReason,
    /// More detail for people.
    pub detail: String,
}

/// A name that had to change on the way to the target (a clash, an invalid name).
#[derive(Clone, Debug, Serialize)]
pub struct Rename {
    /// What was renamed.
    pub entity: Entity,
    /// Its Hipchat id.
    pub id: String,
    /// The name it would have had.
    pub from: String,
    /// The name it got.
    pub to: String,
    /// Why.
    pub reason: String,
}

/// Input, written and skipped numbers for one entity.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Found in the export.
    pub input: u64,
    /// Converted into the target.
    pub written: u64,
    /// Skipped, each with a reason in `skipped`.
    pub skipped: u64,
}

/// The report of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// `hcconv`.
    pub tool: &'static str,
    /// Crate version.
    pub version: &'static str,
    /// Per entity counts.
    pub counts: BTreeMap<Entity, Counts>,
    /// Skip counts per entity and reason.
    pub skip_reasons: BTreeMap<Entity, BTreeMap<SkipReason, u64>>,
    /// Skipped items (first [`MAX_LISTED`]; beyond [`IN_MEMORY`] kept on disk).
    pub skipped: Listed<Skip>,
    /// Renames.
    pub renames: Vec<Rename>,
    /// Warnings: things converted, but not exactly as they were (first
    /// [`MAX_LISTED`]; beyond [`IN_MEMORY`] kept on disk).
    pub warnings: Listed<String>,
    /// Warnings not listed because of the cap.
    pub warnings_not_listed: u64,
    /// Skips not listed because of the cap.
    pub skipped_not_listed: u64,
    /// Free-form numbers a writer or the reader adds (e.g. `posts_written`).
    pub extra: BTreeMap<String, u64>,
    /// Wall-clock seconds per phase of the run (`read`, `write`, `total`), so a
    /// runbook can see where a long migration spent its time. The one part of the
    /// report that differs between two runs of the same conversion.
    pub timings: BTreeMap<&'static str, f64>,
}

/// A report entry made on a helper thread, applied to the [`Report`] on the main
/// thread in the order it was made (so the report reads as if made inline).
#[derive(Debug)]
pub enum Event {
    /// `n` items of an entity found in the export.
    Input(Entity, u64),
    /// One skipped item.
    Skip { entity: Entity, id: String, reason: SkipReason, detail: String },
    /// A history file counted as read when it was handed over, found damaged
    /// (`--skip-damaged`): it moves from written to skipped.
    Damaged { path: String, detail: String },
    /// A warning.
    Warn(String),
}

impl Report {
    /// Applies an event made on a helper thread.
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Input(entity, n) => self.input_n(entity, n),
            Event::Skip { entity, id, reason, detail } => self.skip(entity, id, reason, detail),
            Event::Damaged { path, detail } => {
                let entries = self.counts.entry(Entity::Entry).or_default();
                entries.written = entries.written.saturating_sub(1);
                self.skip(Entity::Entry, path, SkipReason::DamagedFile, detail);
            }
            Event::Warn(text) => self.warn(text),
        }
    }

    /// An empty report stamped with the tool's name and version.
    pub fn new() -> Self {
        let counts = Entity::ALL.into_iter().map(|e| (e, Counts::default())).collect();
        Report { tool: "hcconv", version: env!("CARGO_PKG_VERSION"), counts, ..Default::default() }
    }

    /// Counts one item of `entity` found in the export.
    pub fn input(&mut self, entity: Entity) {
        self.counts.entry(entity).or_default().input += 1;
    }

    /// Counts `n` items of `entity` found in the export.
    pub fn input_n(&mut self, entity: Entity, n: u64) {
        self.counts.entry(entity).or_default().input += n;
    }

    /// Counts one item of `entity` converted.
    pub fn written(&mut self, entity: Entity) {
        self.counts.entry(entity).or_default().written += 1;
    }

    /// Records one skipped item with its reason.
    pub fn skip(&mut self, entity: Entity, id: impl Into<String>, reason: SkipReason, detail: impl Into<String>) {
        self.counts.entry(entity).or_default().skipped += 1;
        *self.skip_reasons.entry(entity).or_default().entry(reason).or_default() += 1;
        if !self.skipped.push(Skip { entity, id: id.into(), reason, detail: detail.into() }) {
            self.skipped_not_listed += 1;
        }
    }

    /// Records a rename.
    pub fn rename(&mut self, entity: Entity, id: impl Into<String>, from: impl Into<String>, to: impl Into<String>, reason: impl Into<String>) {
        self.renames.push(Rename { entity, id: id.into(), from: from.into(), to: to.into(), reason: reason.into() });
    }

    /// Records a warning.
    pub fn warn(&mut self, message: impl Into<String>) {
        if !self.warnings.push(message.into()) {
            self.warnings_not_listed += 1;
        }
    }

    /// Adds `n` to a free-form counter.
    pub fn add_extra(&mut self, key: &str, n: u64) {
        // Writers call this per message: no key copy once the counter exists.
        match self.extra.get_mut(key) {
            Some(count) => *count += n,
            None => {
                self.extra.insert(key.to_string(), n);
            }
        }
    }

    /// Records how long a phase took, in seconds rounded to the millisecond.
    pub fn time_phase(&mut self, phase: &'static str, took: std::time::Duration) {
        self.timings.insert(phase, (took.as_secs_f64() * 1000.0).round() / 1000.0);
    }

    /// The counts of one entity (zeros if never touched).
    pub fn counts_of(&self, entity: Entity) -> Counts {
        self.counts.get(&entity).copied().unwrap_or_default()
    }

    /// How many items of `entity` were skipped for `reason`.
    pub fn skipped_for(&self, entity: Entity, reason: SkipReason) -> u64 {
        self.skip_reasons.get(&entity).and_then(|m| m.get(&reason)).copied().unwrap_or(0)
    }

    /// Entities whose input differs from written + skipped: must be empty after a
    /// finished conversion, and tests check that it is.
    pub fn unbalanced(&self) -> Vec<(Entity, Counts)> {
        self.counts
            .iter()
            .filter(|(_, c)| c.input != c.written + c.skipped)
            .map(|(e, c)| (*e, *c))
            .collect()
    }

    /// A few human lines: per-entity counts and skip reasons.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (entity, c) in &self.counts {
            out.push_str(&format!("{entity:<11} in {:>9}  written {:>9}  skipped {:>9}", c.input, c.written, c.skipped));
            if let Some(reasons) = self.skip_reasons.get(entity) {
                let r: Vec<String> = reasons.iter().map(|(k, n)| format!("{}: {n}", reason_name(*k))).collect();
                out.push_str(&format!("  ({})", r.join(", ")));
            }
            out.push('\n');
        }
        if !self.renames.is_empty() {
            out.push_str(&format!("renamed     {}\n", self.renames.len()));
        }
        for (key, n) in &self.extra {
            out.push_str(&format!("{key}: {n}\n"));
        }
        let warnings = self.warnings.len() as u64 + self.warnings_not_listed;
        if warnings > 0 {
            out.push_str(&format!("warnings    {warnings}\n"));
        }
        out
    }
}

/// The report as `--report` writes it: the report and the run's outcome
/// (`status`, `output`, `error`, `exit_code`, given as `outcome`), keys in
/// alphabetical order at every level (the file's format since it was first written
/// from a `serde_json::Value`). The skip and warning lists stream from where they
/// are kept, one entry at a time, so writing never holds the whole report.
pub struct ReportFile<'a> {
    /// The report.
    pub report: &'a Report,
    /// Further top-level keys.
    pub outcome: BTreeMap<&'static str, Value>,
}

impl ReportFile<'_> {
    /// Every top-level key with its value; the two lists are left for [`Serialize`].
    /// A field added to [`Report`] must be added here (a unit test compares the two).
    fn small_fields(&self) -> serde_json::Result<BTreeMap<&'static str, Value>> {
        let r = self.report;
        let mut fields = self.outcome.clone();
        for (key, value) in [
            ("tool", serde_json::to_value(r.tool)?),
            ("version", serde_json::to_value(r.version)?),
            ("counts", serde_json::to_value(&r.counts)?),
            ("skip_reasons", serde_json::to_value(&r.skip_reasons)?),
            ("skipped", Value::Null),
            ("renames", serde_json::to_value(&r.renames)?),
            ("warnings", Value::Null),
            ("warnings_not_listed", serde_json::to_value(r.warnings_not_listed)?),
            ("skipped_not_listed", serde_json::to_value(r.skipped_not_listed)?),
            ("extra", serde_json::to_value(&r.extra)?),
            ("timings", serde_json::to_value(&r.timings)?),
        ] {
            fields.insert(key, value);
        }
        Ok(fields)
    }

    /// Writes the report as pretty JSON and a final newline.
    pub fn write(&self, out: impl io::Write) -> io::Result<()> {
        let mut out = io::BufWriter::new(out);
        serde_json::to_writer_pretty(&mut out, self)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

impl Serialize for ReportFile<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = self.small_fields().map_err(serde::ser::Error::custom)?;
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for (key, value) in &fields {
            match *key {
                "skipped" => map.serialize_entry(key, &AsValues(&self.report.skipped))?,
                "warnings" => map.serialize_entry(key, &AsValues(&self.report.warnings))?,
                _ => map.serialize_entry(key, value)?,
            }
        }
        map.end()
    }
}

/// A list whose entries are written as `serde_json::Value`s (their keys sorted).
struct AsValues<'a, T>(&'a Listed<T>);

impl<T: Serialize + serde::de::DeserializeOwned + Clone> Serialize for AsValues<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for item in self.0.iter() {
            let item = item.map_err(serde::ser::Error::custom)?;
            seq.serialize_element(&serde_json::to_value(&item).map_err(serde::ser::Error::custom)?)?;
        }
        seq.end()
    }
}

/// The snake_case name of a reason, as in the JSON report.
pub fn reason_name(reason: SkipReason) -> String {
    serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report with spilled lists writes exactly what the whole report made into one
    /// `serde_json::Value` (the original way) writes, so the file format is unchanged
    /// and no field of [`Report`] is forgotten.
    #[test]
    fn report_file_is_the_report_as_one_value() {
        let mut r = Report::new();
        for i in 0..(IN_MEMORY + 50) {
            r.input(Entity::Message);
            r.skip(Entity::Message, format!("room 1 id {i}"), SkipReason::Duplicate, "second copy (in users/1/history.json)");
            r.warn(format!("warning {i}"));
        }
        r.rename(Entity::User, "5", "bob", "bob2", "clash");
        r.add_extra("posts", 3);
        r.time_phase("read", std::time::Duration::from_micros(1_234_567));
        let outcome = BTreeMap::from([("status", Value::from("ok")), ("output", Value::from("out")), ("error", Value::Null), ("exit_code", Value::from(0))]);
        let mut expected = serde_json::to_value(&r).unwrap();
        let keys: Vec<String> = expected.as_object().unwrap().keys().cloned().collect();
        for (k, v) in &outcome {
            expected.as_object_mut().unwrap().insert(k.to_string(), v.clone());
        }
        let file = ReportFile { report: &r, outcome };
        assert_eq!(file.small_fields().unwrap().len(), keys.len() + 4, "a field of Report is missing from ReportFile::small_fields: {keys:?}");
        let mut written = Vec::new();
        file.write(&mut written).unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), serde_json::to_string_pretty(&expected).unwrap() + "\n");
    }
}

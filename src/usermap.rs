//! `--user-map FILE`: the operator's new usernames and e-mail addresses.
//!
//! Real migrations change e-mail domains and adopt LDAP usernames that differ from
//! Hipchat's mention names. The CSV has one row per user: the Hipchat user id or
//! current e-mail, the new username, the new e-mail (either may be empty to keep the
//! derived one). A header row is allowed. A row that matches no user is an error, so
//! a typo never silently leaves someone unmapped.

use std::path::Path;

use crate::convert::email::{is_valid_email, EmailRule};
use crate::error::{Error, Result};
use crate::model::Catalog;
use crate::report::{Entity, Report};

/// One row of the map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapRow {
    /// Hipchat user id or e-mail address.
    pub key: String,
    /// New username, if given.
    pub username: Option<String>,
    /// New e-mail, if given.
    pub email: Option<String>,
}

/// Reads the CSV at `path`.
pub fn read_map(path: &Path) -> Result<Vec<MapRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_path(path)
        .map_err(|e| Error::usage(format!("--user-map {}: cannot read: {e}", path.display())))?;
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Error::usage(format!("--user-map {}: {e}", path.display())))?;
        let field = |n: usize| record.get(n).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let Some(key) = field(0) else { continue };
        let is_header = i == 0 && key.parse::<u64>().is_err() && !key.contains('@');
        if is_header {
            continue;
        }
        let email = field(2);
        if let Some(e) = email.as_deref().filter(|e| !is_valid_email(e, EmailRule::Typed)) {
            return Err(Error::usage(format!("--user-map {} row {}: {e:?} is not an e-mail address", path.display(), i + 1)));
        }
        rows.push(MapRow { key, username: field(1), email });
    }
    Ok(rows)
}


/// Applies `rows` to the catalog's users, recording each change as a rename. A
/// target without usernames (`usernames_used` false: Pixtoome, Qiscus) ignores the
/// username column, with one warning, rather than listing renames that change nothing.
pub fn apply(rows: &[MapRow], catalog: &mut Catalog, usernames_used: bool, report: &mut Report) -> Result<()> {
    let ignored: Vec<MapRow>;
    let rows = if usernames_used {
        rows
    } else {
        if rows.iter().any(|r| r.username.is_some()) {
            report.warn("--user-map: this target has no usernames; the username column was ignored");
        }
        ignored = rows.iter().map(|r| MapRow { username: None, ..r.clone() }).collect();
        &ignored
    };
    check_conflicts(rows, catalog)?;
    for row in rows {
        let Some(id) = target(row, catalog) else {
            return Err(Error::usage(format!("--user-map: '{}' is neither the id nor the e-mail of a user in the export", row.key)));
        };
        let user = catalog.users.get_mut(&id).expect("found above");
        if let Some(name) = &row.username {
            report.rename(Entity::User, id.to_string(), user.mention_name.clone(), name.clone(), "--user-map username");
            user.username = Some(name.clone());
        }
        if let Some(email) = &row.email {
            report.rename(Entity::User, id.to_string(), user.email.clone().unwrap_or_default(), email.clone(), "--user-map e-mail");
            user.email = Some(email.clone());
        }
    }
    Ok(())
}

/// The user a row names, if any.
fn target(row: &MapRow, catalog: &Catalog) -> Option<u64> {
    let by_id = row.key.parse::<u64>().ok().filter(|id| catalog.users.contains_key(id));
    by_id.or_else(|| catalog.users.values().find(|u| u.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&row.key))).map(|u| u.id))
}

/// Refuses a map whose rows contradict each other or take another user's username
/// or e-mail: the writers would otherwise settle the clash by user id order, giving
/// one person's address or name to someone else without a word.
fn check_conflicts(rows: &[MapRow], catalog: &Catalog) -> Result<()> {
    use std::collections::BTreeMap;
    let mut rows_of: BTreeMap<u64, &MapRow> = BTreeMap::new();
    for row in rows {
        let Some(id) = target(row, catalog) else { continue };
        if let Some(earlier) = rows_of.insert(id, row) {
            return Err(Error::usage(format!("--user-map: rows '{}' and '{}' both map user {id}", earlier.key, row.key)));
        }
    }
    let final_email = |id: u64, u: &crate::model::User| rows_of.get(&id).and_then(|r| r.email.clone()).or_else(|| u.email.clone());
    let final_name = |id: u64, u: &crate::model::User| rows_of.get(&id).and_then(|r| r.username.clone()).unwrap_or_else(|| u.mention_name.clone());
    let mut emails: BTreeMap<String, u64> = BTreeMap::new();
    let mut names: BTreeMap<String, u64> = BTreeMap::new();
    for (id, user) in &catalog.users {
        let (id, mapped) = (*id, rows_of.get(id));
        if let Some(email) = final_email(id, user).filter(|e| !e.trim().is_empty())
            && let Some(other) = emails.insert(email.to_lowercase(), id)
                && (mapped.is_some_and(|r| r.email.is_some()) || rows_of.get(&other).is_some_and(|r| r.email.is_some())) {
                    return Err(Error::usage(format!("--user-map: users {other} and {id} would both have the e-mail address {email}")));
                }
        let name = final_name(id, user);
        if !name.is_empty()
            && let Some(other) = names.insert(name.to_lowercase(), id)
                && (mapped.is_some_and(|r| r.username.is_some()) || rows_of.get(&other).is_some_and(|r| r.username.is_some())) {
                    return Err(Error::usage(format!("--user-map: users {other} and {id} would both have the username {name}")));
                }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::User;

    fn user(id: u64, email: &str) -> User {
        User::regular(id, &format!("U{id}"), &format!("u{id}"), Some(email))
    }

    #[test]
    fn reads_and_applies_by_id_or_email() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.csv");
        std::fs::write(&path, "hipchat,username,email\n1,ann.smith,ann@new.example\n\"Bob@Old.example\",,bob@new.example\n# comment\n").unwrap();
        let rows = read_map(&path).unwrap();
        assert_eq!(rows.len(), 2);
        let mut cat = Catalog::default();
        cat.users.insert(1, user(1, "ann@old.example"));
        cat.users.insert(2, user(2, "bob@old.example"));
        let mut report = Report::new();
        apply(&rows, &mut cat, true, &mut report).unwrap();
        assert_eq!(cat.users[&1].username.as_deref(), Some("ann.smith"));
        assert_eq!(cat.users[&1].email.as_deref(), Some("ann@new.example"));
        assert_eq!(cat.users[&2].username, None);
        assert_eq!(cat.users[&2].email.as_deref(), Some("bob@new.example"));
        assert_eq!(report.renames.len(), 3);
        // A target without usernames takes the addresses only, and says so.
        let mut cat = Catalog::default();
        cat.users.insert(1, user(1, "ann@old.example"));
        cat.users.insert(2, user(2, "bob@old.example"));
        let mut report = Report::new();
        apply(&rows, &mut cat, false, &mut report).unwrap();
        assert_eq!((cat.users[&1].username.as_deref(), cat.users[&1].email.as_deref()), (None, Some("ann@new.example")));
        assert_eq!(report.renames.len(), 2);
        assert_eq!(report.warnings.iter().map(Result::unwrap).filter(|w| w.contains("username column was ignored")).count(), 1);
    }

    #[test]
    fn a_new_address_that_is_not_one_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.csv");
        for bad in ["not-an-email", "a b@x.example", "a@localhost", "@x.example", "a@x.example."] {
            std::fs::write(&path, format!("1,,{bad}\n")).unwrap();
            let err = read_map(&path).unwrap_err();
            assert_eq!(err.kind().exit_code(), 2, "{bad}");
            assert!(err.message().contains("row 1"), "{}", err.message());
        }
        std::fs::write(&path, "1,,a.b+c@sub.example.org\n").unwrap();
        assert!(read_map(&path).is_ok());
    }

    #[test]
    fn conflicting_rows_are_usage_errors() {
        let mut cat = Catalog::default();
        cat.users.insert(1, user(1, "a@x.example"));
        cat.users.insert(2, user(2, "b@x.example"));
        let row = |key: &str, username: Option<&str>, email: Option<&str>| MapRow { key: key.into(), username: username.map(Into::into), email: email.map(Into::into) };
        for rows in [
            vec![row("1", None, Some("b@x.example"))],
            vec![row("2", None, Some("A@x.example"))],
            vec![row("1", None, Some("n@x.example")), row("2", None, Some("N@x.example"))],
            vec![row("1", Some("same"), None), row("2", Some("Same"), None)],
            vec![row("2", Some("u1"), None)],
            vec![row("1", Some("p"), None), row("a@x.example", Some("q"), None)],
        ] {
            let err = apply(&rows, &mut cat.clone(), true, &mut Report::new()).unwrap_err();
            assert_eq!(err.kind().exit_code(), 2, "{rows:?}");
        }
        // Swapping two addresses is fine.
        let swap = vec![row("1", None, Some("b@x.example")), row("2", None, Some("a@x.example"))];
        apply(&swap, &mut cat.clone(), true, &mut Report::new()).unwrap();
    }

    #[test]
    fn unmatched_rows_are_usage_errors() {
        let mut cat = Catalog::default();
        cat.users.insert(1, user(1, "a@x"));
        let rows = vec![MapRow { key: "nobody@x".into(), username: Some("n".into()), email: None }];
        let err = apply(&rows, &mut cat, true, &mut Report::new()).unwrap_err();
        assert_eq!(err.kind().exit_code(), 2);
    }
}

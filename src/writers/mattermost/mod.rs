//! The Mattermost writer: a bulk-import JSONL (`import.jsonl`) plus the files it
//! references under `data/`, as a folder or one zip, for `mmctl import`.
//!
//! Lines follow the importer's order (version, emoji, team, channel, user, post,
//! direct_channel, direct_post): the server imports runs of same-type lines one
//! after another, so anything a line names is defined by an earlier run. All names
//! are decided first ([`directory`]); posts then stream through ([`posts`]) with
//! only per-conversation state. FORMATS.md section 1 lists the rules each line
//! obeys; `tests/mattermost_writer.rs` checks them line by line.

mod after_import;
mod directory;
mod lines;
mod naming;
mod posts;
mod sink;
mod system_emoji;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use crate::error::{Error, Result};
use crate::hipchat::Export;
use crate::model::{Catalog, User, UserId};
use crate::report::{Entity, Report};

use super::WriterOptions;
use directory::{ChannelPlan, Directory, UserPlan};
use lines::*;
use naming::{is_valid_team_name, split_person_name, DISPLAY_NAME_MAX_RUNES, POSITION_MAX_RUNES};
use posts::PostWriter;
use sink::Sink;

/// Default team name (valid, and no reserved prefix).
pub const DEFAULT_TEAM: &str = "hipchat";
/// Default team display name.
pub const DEFAULT_TEAM_DISPLAY_NAME: &str = "Hipchat";
/// Default split length: what old servers and `mmctl import validate` accept.
pub const DEFAULT_MAX_POST_RUNES: usize = 4000;
/// Longest post current servers accept (`PostMessageMaxRunesV2`).
pub const MAX_POST_RUNES: usize = 16383;
/// The script `--mattermost-profile-images script` writes beside `import.jsonl`.
pub const AFTER_IMPORT_SCRIPT: &str = "after-import.sh";

/// Mattermost-specific flags.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Mattermost options")]
pub struct MattermostOptions {
    /// Write OUT as one zip file (import.jsonl at its root, data/ beside it) for mmctl import upload; OUT is used as given (the default name ends in .zip).
    #[arg(long)]
    pub zip: bool,
    /// Team to import into: 2-64 characters of a-z, 0-9 and '-', starting and ending
    /// with a letter or digit, not starting with a reserved word (admin, api, help, post, …)
    /// [default: hipchat].
    #[arg(long = "team", value_name = "NAME")]
    pub team: Option<String>,
    /// Display name of the team (1-64 characters) [default: Hipchat].
    #[arg(long = "team-display-name", value_name = "NAME")]
    pub team_display_name: Option<String>,
    /// Split messages longer than N characters into consecutive posts (1-16383;
    /// 4000 suits every server and mmctl import validate; private messages are always
    /// split at 4000 at most) [default: 4000].
    #[arg(long = "max-post-runes", value_name = "N")]
    pub max_post_runes: Option<usize>,
    /// Where users' profile pictures go: in the import file (`bulk`, Mattermost
    /// 11.x), or set afterwards by OUT/after-import.sh through the REST API, which
    /// also archives the archived channels (`script`, for servers of the 7.x line).
    #[arg(long = "mattermost-profile-images", value_enum, default_value = "bulk", value_name = "HOW")]
    pub profile_images: ProfileImages,
}

/// How profile pictures reach the server.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProfileImages {
    /// `profile_image` on each user line (read from the zip by current servers).
    #[default]
    Bulk,
    /// No `profile_image`; the images ship under `data/` and `after-import.sh` sets
    /// them, and archives archived channels, once the import has run (7.x servers
    /// fail on a zip's profile images and ignore `deleted_at`).
    Script,
}

/// The options after validation.
struct Settings {
    team: String,
    team_display_name: String,
    max_post_runes: usize,
}

impl MattermostOptions {
    /// Checks the flags (usage error, exit 2, when one is out of range).
    fn settings(&self) -> Result<Settings> {
        let team = self.team.clone().unwrap_or_else(|| DEFAULT_TEAM.into());
        if !is_valid_team_name(&team) {
            return Err(Error::usage(format!("--team {team:?}: a team name is 2-64 characters of a-z, 0-9 and '-', starts and ends with a letter or digit, and does not start with admin, api, boards, channel, claim, error, files, help, landing, login, mfa, oauth, playbooks, plug, plugins, post or signup")));
        }
        let team_display_name = self.team_display_name.clone().unwrap_or_else(|| DEFAULT_TEAM_DISPLAY_NAME.into());
        let runes = team_display_name.chars().count();
        if runes == 0 || runes > DISPLAY_NAME_MAX_RUNES || team_display_name.trim().is_empty() {
            return Err(Error::usage(format!("--team-display-name must have 1-{DISPLAY_NAME_MAX_RUNES} characters")));
        }
        let max_post_runes = self.max_post_runes.unwrap_or(DEFAULT_MAX_POST_RUNES);
        if !(1..=MAX_POST_RUNES).contains(&max_post_runes) {
            return Err(Error::usage(format!("--max-post-runes {max_post_runes}: must be between 1 and {MAX_POST_RUNES}")));
        }
        Ok(Settings { team, team_display_name, max_post_runes })
    }
}

/// Checks the Mattermost flags before the (long) read of the export.
pub fn validate(opts: &WriterOptions) -> Result<()> {
    opts.mattermost.settings().map(|_| ())
}

/// Writes the Mattermost bulk import at `out` (a folder, or with `--zip` a file).
pub fn write(export: &mut Export, out: &Path, opts: &WriterOptions, report: &mut Report) -> Result<()> {
    let settings = opts.mattermost.settings()?;
    let dir = Directory::build(&export.catalog, &export.files, &settings.team, opts.skip_deleted_rooms, report);
    let files = Arc::clone(&export.files);
    let mut sink = if opts.mattermost.zip { Sink::zip(out, &export.scratch, files)? } else { Sink::folder(out, &export.scratch, files)? };
    let deactivated_at = export.stats.last_message.map_or(1, |t| t.millis().max(1));
    sink.raw_line(&VersionLine { kind: "version", version: 1, info: VersionInfo { generator: "hcconv", version: env!("CARGO_PKG_VERSION") } })?;
    write_emoji(&dir, &mut sink, report)?;
    write_team(&settings, &mut sink)?;
    write_channels(&export.catalog, &dir, deactivated_at, &mut sink, report)?;
    let images = write_users(export, &dir, deactivated_at, opts.mattermost.profile_images, &mut sink, report)?;
    if opts.mattermost.profile_images == ProfileImages::Script {
        let archived: Vec<String> = dir.channels.values().filter(|c| c.archived).map(|c| c.name.clone()).collect();
        sink.add_generated(AFTER_IMPORT_SCRIPT, after_import::script(&dir.team, &images, &archived))?;
    }
    warn_about_team_limits(&export.catalog, &dir, report);
    let mut posts = PostWriter::new(&dir, &export.catalog.conversations, settings.max_post_runes);
    while let Some(m) = export.messages.next(report)? {
        posts.message(m, &mut sink, report)?;
    }
    posts.finish(&mut sink)?;
    report.add_extra("mattermost_lines", sink.lines());
    sink.finish()
}

fn write_emoji(dir: &Directory, sink: &mut Sink, report: &mut Report) -> Result<()> {
    for e in &dir.emoji {
        let image = sink.add_file(&e.image)?;
        sink.line("emoji", &EmojiLine { name: e.name.clone(), image })?;
        report.written(Entity::Emoticon);
    }
    Ok(())
}

fn write_team(settings: &Settings, sink: &mut Sink) -> Result<()> {
    let line = TeamLine {
        name: settings.team.clone(),
        display_name: settings.team_display_name.clone(),
        kind: "O",
        description: "Imported from Hipchat by hcconv".into(),
        allow_open_invite: true,
    };
    sink.line("team", &line)
}

fn write_channels(catalog: &Catalog, dir: &Directory, deactivated_at: i64, sink: &mut Sink, report: &mut Report) -> Result<()> {
    for plan in dir.channels.values() {
        sink.line("channel", &channel_line(&dir.team, plan, deactivated_at))?;
        if plan.is_placeholder {
            report.add_extra("mattermost_placeholder_channels", 1);
        } else {
            report.written(Entity::Room);
        }
    }
    debug_assert!(dir.channels.len() + dir.skipped_rooms.len() == catalog.rooms.len());
    Ok(())
}

fn channel_line(team: &str, plan: &ChannelPlan, deactivated_at: i64) -> ChannelLine {
    ChannelLine {
        team: team.to_string(),
        name: plan.name.clone(),
        display_name: plan.display_name.clone(),
        kind: if plan.private { "P" } else { "O" },
        header: plan.header.clone(),
        purpose: plan.purpose.clone(),
        deleted_at: plan.archived.then_some(deactivated_at),
    }
}

/// Channel memberships per user: members, participants, autojoins, posters and the
/// owner as members; room admins as channel admins. Users × rooms is the largest
/// table a conversion holds (an export has a room per thousand messages or so), so
/// it holds numbers, (channel in `dir.channels` order, admin), not channel names;
/// [`channel_names`] turns one user's into names when their line is written.
fn memberships(catalog: &Catalog, dir: &Directory) -> BTreeMap<UserId, Vec<(u32, bool)>> {
    let mut map: BTreeMap<UserId, Vec<(u32, bool)>> = BTreeMap::new();
    for (channel, (rid, _)) in dir.channels.iter().enumerate() {
        let channel = u32::try_from(channel).expect("fewer than 2^32 channels");
        let room = &catalog.rooms[rid];
        let posters = catalog.room_posters.get(rid).into_iter().flatten();
        let members = room.members.iter().chain(&room.participants).chain(&room.autojoined_by).chain(posters).chain(room.owner.as_ref());
        for uid in members.filter(|u| catalog.users.contains_key(u)) {
            map.entry(*uid).or_default().push((channel, false));
        }
        for uid in room.admins.iter().filter(|u| catalog.users.contains_key(u)) {
            map.entry(*uid).or_default().push((channel, true));
        }
    }
    for channels in map.values_mut() {
        channels.sort_unstable();
        channels.dedup();
        channels.shrink_to_fit();
    }
    map
}

/// One user's memberships by channel name (a channel is admin when any entry says so).
fn channel_names(plans: &[&ChannelPlan], channels: &[(u32, bool)]) -> BTreeMap<String, bool> {
    let mut named = BTreeMap::new();
    for (channel, admin) in channels {
        *named.entry(plans[*channel as usize].name.clone()).or_insert(false) |= *admin;
    }
    named
}

/// Writes the user lines; returns `(username, image path)` of the pictures left for
/// `after-import.sh` (none unless `images` is `script`).
fn write_users(export: &Export, dir: &Directory, deactivated_at: i64, images: ProfileImages, sink: &mut Sink, report: &mut Report) -> Result<Vec<(String, String)>> {
    let mut for_script = Vec::new();
    let catalog = &export.catalog;
    let memberships = memberships(catalog, dir);
    let plans: Vec<&ChannelPlan> = dir.channels.values().collect();
    for user in catalog.users.values() {
        let plan = &dir.users[&user.id];
        let channels = channel_names(&plans, memberships.get(&user.id).map_or(&[], Vec::as_slice));
        let mut profile_image = avatar(user, export, sink, report)?;
        if images == ProfileImages::Script {
            for_script.extend(profile_image.take().map(|path| (plan.username.clone(), path)));
        }
        sink.line("user", &user_line(user, plan, &channels, &dir.team, profile_image, deactivated_at))?;
        if user.is_placeholder {
            report.add_extra("mattermost_placeholder_users", 1);
        } else {
            report.written(Entity::User);
        }
    }
    for (name, plan) in &dir.integrations {
        sink.line("user", &service_user_line(plan, name, &dir.team, deactivated_at))?;
        report.add_extra("mattermost_integration_users", 1);
    }
    sink.line("user", &service_user_line(&dir.fallback, "Hipchat import", &dir.team, deactivated_at))?;
    report.add_extra("mattermost_service_users", 1);
    Ok(for_script)
}

/// Mattermost's defaults for `TeamSettings.MaxUsersPerTeam` and `MaxChannelsPerTeam`:
/// the import puts every user and channel in the one team and stops (`max_accounts`,
/// channel limit) past the configured numbers.
const DEFAULT_MAX_USERS_PER_TEAM: usize = 50;
const DEFAULT_MAX_CHANNELS_PER_TEAM: usize = 2000;

/// Names the server settings an import this size needs raised from their defaults.
fn warn_about_team_limits(catalog: &Catalog, dir: &Directory, report: &mut Report) {
    let members = catalog.users.len() + dir.integrations.len() + 1;
    if members > DEFAULT_MAX_USERS_PER_TEAM {
        report.warn(format!(
            "the team gets {members} members: set the server's TeamSettings.MaxUsersPerTeam (default {DEFAULT_MAX_USERS_PER_TEAM}) to at least {members} before `mmctl import process`, or the job stops at the user line past it (mmctl config set TeamSettings.MaxUsersPerTeam {members})"
        ));
    }
    let open = dir.channels.values().filter(|c| !c.archived).count();
    if open > DEFAULT_MAX_CHANNELS_PER_TEAM {
        report.warn(format!("the team gets {open} channels that are not archived: set TeamSettings.MaxChannelsPerTeam (default {DEFAULT_MAX_CHANNELS_PER_TEAM}) to at least {open} before importing"));
    }
}

/// The user's avatar as a `data/` path, if its bytes are there to copy.
fn avatar(user: &User, export: &Export, sink: &mut Sink, report: &mut Report) -> Result<Option<String>> {
    let Some(file) = user.avatar.as_ref() else { return Ok(None) };
    if export.files.disk_path(file).is_some_and(|p| p.is_file()) {
        report.written(Entity::Avatar);
        sink.add_file(file).map(Some)
    } else {
        report.skip(Entity::Avatar, user.id.to_string(), crate::report::SkipReason::MissingFile, format!("{}: avatar bytes not available to copy", file.path));
        Ok(None)
    }
}

fn user_line(user: &User, plan: &UserPlan, channels: &BTreeMap<String, bool>, team: &str, profile_image: Option<String>, deactivated_at: i64) -> UserLine {
    let guest = user.is_guest();
    let (first_name, last_name) = split_person_name(&user.name);
    let channel_role = |admin: bool| match (guest, admin) {
        (true, _) => "channel_guest",
        (false, true) => "channel_admin channel_user",
        (false, false) => "channel_user",
    };
    let channels = channels.iter().map(|(name, admin)| ChannelMembership { name: name.clone(), roles: channel_role(*admin) }).collect();
    let (roles, team_roles) = match (guest, user.is_admin()) {
        (true, _) => ("system_guest", "team_guest"),
        (false, true) => ("system_admin system_user", "team_admin team_user"),
        (false, false) => ("system_user", "team_user"),
    };
    UserLine {
        username: plan.username.clone(),
        email: plan.email.clone(),
        first_name,
        last_name,
        position: crate::convert::names::truncate_chars(user.title.trim(), POSITION_MAX_RUNES).to_string(),
        roles,
        delete_at: (user.is_deleted || user.is_placeholder).then_some(deactivated_at),
        profile_image,
        teams: vec![TeamMembership { name: team.to_string(), roles: team_roles, channels }],
    }
}

/// A deactivated account that authors posts of an integration (or of nobody).
fn service_user_line(plan: &UserPlan, display: &str, team: &str, deactivated_at: i64) -> UserLine {
    let (first_name, last_name) = split_person_name(display);
    UserLine {
        username: plan.username.clone(),
        email: plan.email.clone(),
        first_name,
        last_name,
        position: "Hipchat integration".into(),
        roles: "system_user",
        delete_at: Some(deactivated_at),
        profile_image: None,
        teams: vec![TeamMembership { name: team.to_string(), roles: "team_user", channels: Vec::new() }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::files::FileStore;

    #[test]
    fn a_team_past_the_default_limits_is_warned_about() {
        let users = |n: u64| {
            let mut catalog = Catalog::default();
            for id in 1..=n {
                catalog.users.insert(id, User::regular(id, &format!("User {id}"), &format!("u{id}"), Some(&format!("u{id}@example.com"))));
            }
            catalog
        };
        for (n, warned) in [(49, false), (50, true)] {
            let catalog = users(n);
            let mut report = Report::new();
            let dir = Directory::build(&catalog, &FileStore::measured(), "hipchat", false, &mut report);
            warn_about_team_limits(&catalog, &dir, &mut report);
            let hits: Vec<String> = report.warnings.iter().map(Result::unwrap).filter(|w| w.contains("MaxUsersPerTeam")).collect();
            assert_eq!(hits.len(), usize::from(warned), "{n} users (+ the service user): {hits:?}");
        }
    }
}

//! `after-import.sh`, for servers of the Mattermost 7.x line: what their bulk
//! import cannot do, done afterwards through the REST API.
//!
//! Why (Mattermost's own import code, 7.x as vendored in mmctl v7.10.5, run on our
//! output): the job that imports a zip checks each user's `profile_image` on disk
//! relative to the server's working folder, not inside the zip, so the user line
//! fails and the job stops there; and even where it passes, the image read from
//! the zip cannot be decoded, so no picture is set. Channel lines' `deleted_at` is
//! not in that version's channel type, so archived rooms arrive unarchived. With
//! `--mattermost-profile-images script` the user lines carry no `profile_image`
//! (the images still ship under `data/`) and this script sets each picture
//! (`POST /api/v4/users/{id}/image`) and archives each archived channel
//! (`DELETE /api/v4/channels/{id}`).

/// The script for `team`: `(username, path of the image below data/)` and the
/// names of the channels to archive. Every value is single-quoted.
pub fn script(team: &str, images: &[(String, String)], archived: &[String]) -> String {
    let mut out = String::from(HEADER);
    for (username, path) in images {
        out.push_str(&format!("set_image {} {}\n", quote(username), quote(&format!("data/{path}"))));
    }
    for channel in archived {
        out.push_str(&format!("archive {} {}\n", quote(team), quote(channel)));
    }
    out.push_str("echo \"after-import: done\"\n");
    out
}

/// The script's fixed part. Needs `sh` and `curl`; reads ids with `sed` (a user's
/// and a channel's JSON start with their `id`), so no `jq` is needed.
const HEADER: &str = r#"#!/bin/sh
# Written by hcconv. Run it once the bulk import has finished, on servers of the
# Mattermost 7.x line, from the folder that holds import.jsonl and data/ (unzip the
# zip first):
#   MM_URL=https://chat.example.com MM_TOKEN=<a system admin's access token> sh after-import.sh
# It sets each imported user's profile picture and archives the channels that were
# archived or deleted in Hipchat. Running it twice does no harm.
set -eu
: "${MM_URL:?set MM_URL to the server URL}"
: "${MM_TOKEN:?set MM_TOKEN to a system administrator's personal access token}"
api() { curl -fsS -H "Authorization: Bearer $MM_TOKEN" "$@"; }
id_of() { sed -n 's/^{"id":"\([a-z0-9]*\)".*/\1/p'; }
set_image() {
    id=$(api "$MM_URL/api/v4/users/username/$1" | id_of)
    api -X POST -F "image=@$2" "$MM_URL/api/v4/users/$id/image" >/dev/null
    echo "profile picture set: $1"
}
archive() {
    id=$(api "$MM_URL/api/v4/teams/name/$1/channels/name/$2?include_deleted=true" | id_of)
    if api -X DELETE "$MM_URL/api/v4/channels/$id" >/dev/null 2>&1; then
        echo "archived: $1/$2"
    else
        echo "already archived: $1/$2"
    fi
}
"#;

/// `s` in single quotes for `sh` (a `'` inside becomes `'\''`).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_quoted_and_every_step_is_there() {
        let s = script("hipchat", &[("ann".into(), "users/1/it's me.png".into())], &["dev-ops-2".into()]);
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("set_image 'ann' 'data/users/1/it'\\''s me.png'\n"), "{s}");
        assert!(s.contains("archive 'hipchat' 'dev-ops-2'\n"));
        assert!(s.ends_with("echo \"after-import: done\"\n"));
    }

    /// The script is valid `sh` (checked with `sh -n` where a shell is present).
    #[test]
    fn the_script_parses() {
        let s = script("t", &[("a".into(), "x y.png".into())], &["c".into()]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("after-import.sh");
        std::fs::write(&path, s).unwrap();
        if let Ok(status) = std::process::Command::new("sh").arg("-n").arg(&path).status() {
            assert!(status.success());
        }
    }
}

//! The integration notifications of [`super::ScaleShape::IntegrationHeavy`]: what
//! rooms wired to Jira, Jenkins, GitHub, Bitbucket, Nagios, Confluence or a status
//! page hold, in every form HIPCHAT.md lists. A notification's body is HTML (links,
//! bold and italics, line breaks, lists, named and numeric entities, icons, inline
//! code, now and then a table or a heading) or plain text (alerts, which may hold
//! `<tags>` and `&` as text); it has a card (a JSON string: link, application,
//! image or file style, the description a string or an HTML object) or none; its
//! sender is `{id: 0, name}`, a bare integration name, `{id: "0", ...}` or a person
//! posting through an integration; its format is under `format`, under
//! `message_format` or missing; most are wrapped as `NotificationMessage`, a few
//! come unwrapped (`type: notification`, or a `muc_message` with a colour) or as a
//! `GuestAccessMessage` shaped like a notification.
//!
//! Everything is made from the message's sequence number, so two runs give the
//! same bytes.

use serde_json::{json, Value};

/// Whether room message `seq` is a notification: 7 in 20 (35 %).
pub(super) fn is_notification(seq: u64) -> bool {
    seq % 20 < 7
}

/// A small pseudo-random source seeded by the sequence number.
struct Pick(u64);

impl Pick {
    fn new(seq: u64) -> Pick {
        Pick(seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// A number below `n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }

    fn of<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from_digit(self.below(16) as u32, 16).unwrap_or('0')).collect()
    }
}

const INTEGRATIONS: [&str; 7] = ["JIRA", "Jenkins", "GitHub", "Bitbucket", "Nagios", "Confluence", "Statuspage"];
const WORDS: [&str; 24] = [
    "login", "page", "fails", "after", "upgrade", "cache", "timeout", "on", "checkout", "résumé", "export", "Ünïcode", "report", "slow", "when", "user", "has",
    "\"quoted\"", "names", "&", "<none>", "50%", "naïve", "日本語",
];
const COLOURS: [&str; 6] = ["yellow", "green", "red", "purple", "gray", "random"];

/// A phrase of `n` words, as plain text (it may hold `&`, `<` and quotes).
fn phrase(p: &mut Pick, n: u64) -> String {
    (0..n).map(|_| p.of(&WORDS)).collect::<Vec<_>>().join(" ")
}

/// `text` escaped for HTML, sometimes with numeric references instead of names.
fn escaped(p: &mut Pick, text: &str) -> String {
    let numeric = p.below(4) == 0;
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match (c, numeric) {
            ('&', false) => out.push_str("&amp;"),
            ('&', true) => out.push_str("&#38;"),
            ('<', false) => out.push_str("&lt;"),
            ('<', true) => out.push_str("&#x3C;"),
            ('>', _) => out.push_str("&gt;"),
            ('"', false) => out.push_str("&quot;"),
            ('"', true) => out.push_str("&#34;"),
            _ => out.push(c),
        }
    }
    out
}

/// [`phrase`], escaped for HTML.
fn html_phrase(p: &mut Pick, n: u64) -> String {
    let text = phrase(p, n);
    escaped(p, &text)
}

/// An HTML body, in the style of integration `who`.
fn html_body(p: &mut Pick, who: &str, seq: u64) -> String {
    let n = 100 + seq % 9_000;
    let words = 3 + p.below(6);
    let summary = html_phrase(p, words);
    match who {
        "JIRA" => {
            let (from, to) = [("Open", "In&nbsp;Progress"), ("In Progress", "Done"), ("To Do", "In Review")][p.below(3) as usize];
            format!(
                "<a href=\"https://jira.example.com/browse/PRJ-{n}\">PRJ-{n}</a> <b>{summary}</b> was transitioned from <i>{from}</i> to <i>{to}</i> by <a href=\"https://jira.example.com/secure/ViewProfile.jspa?name=user{}&amp;tab=1\">User {}</a>",
                p.below(800),
                p.below(800)
            )
        }
        "Jenkins" => {
            let (state, icon) = [("passed", "blue"), ("failed", "red"), ("is unstable", "yellow")][p.below(3) as usize];
            let changes: String = (0..1 + p.below(3)).map(|_| format!("<li>{} (<code>{}</code>)</li>", html_phrase(p, 4), p.hex(7))).collect();
            format!(
                "<img src=\"https://ci.example.com/static/{icon}.png\" height=\"16\" width=\"16\"> <b>Build #{n}</b> of <a href=\"https://ci.example.com/job/deploy-api/{n}/\">deploy-api</a> {state} &mdash;&nbsp;{}s<br>Changes:<ul>{changes}</ul>",
                10 + p.below(500)
            )
        }
        "GitHub" => {
            let commits: String = (0..1 + p.below(3)).map(|_| {
                let hash = p.hex(40);
                format!("<br/>\n&bull; <a href=\"https://github.com/acme/api/commit/{hash}\">{}</a> {}", &hash[..7], html_phrase(p, 5))
            }).collect();
            format!("<b>user{}</b> pushed to <a href=\"https://github.com/acme/api/tree/release-{n}\">acme/api/release-{n}</a>:{commits}", p.below(800))
        }
        "Bitbucket" => format!(
            "<a href=\"https://bitbucket.example.com/users/u{}\">User {}</a> opened pull request <a href=\"https://bitbucket.example.com/projects/ACME/repos/web/pull-requests/{n}\">#{n}: {summary}</a><br><em>acme/web</em> &#8594; <strong>master</strong>",
            p.below(800),
            p.below(800)
        ),
        "Nagios" => format!(
            "<b>PROBLEM</b>: <span style=\"color:#d00\">web-{}</span> is <b>DOWN</b> &ndash; PING CRITICAL - Packet loss = 100%, RTA = nan ms&#10;<i>{summary}</i>",
            p.below(64)
        ),
        "Confluence" => format!(
            "<p><a href=\"https://wiki.example.com/display/~user{}\">User {}</a> updated <a href=\"https://wiki.example.com/pages/viewpage.action?pageId={n}\">{summary}</a></p><p><i>&ldquo;{}&hellip;&rdquo;</i></p>",
            p.below(800),
            p.below(800),
            html_phrase(p, 8)
        ),
        _ => {
            let steps: String = (0..2 + p.below(2)).map(|k| format!("<li>{} &#8211; {}</li>", ["Investigating", "Identified", "Monitoring", "Resolved &#x2713;"][k as usize], html_phrase(p, 3))).collect();
            format!("<strong>Incident</strong>  {summary}\n<ol>{steps}</ol>")
        }
    }
}

/// The rare HTML no fast converter would take: tables, headings, quotes, code blocks.
fn rich_html_body(p: &mut Pick, seq: u64) -> String {
    let summary = html_phrase(p, 4);
    match seq % 4 {
        0 => format!("<table><tr><th>Service</th><th>State</th></tr><tr><td>api-{}</td><td><b>degraded</b></td></tr></table>", p.below(9)),
        1 => format!("<h3>Release {}</h3><p>{summary}</p>", seq % 100),
        2 => format!("<blockquote>{summary}</blockquote> &mdash; reviewer"),
        _ => format!("<pre>$ make deploy\n{summary}\nok</pre>"),
    }
}

/// A plain-text body (`format: text`): alerts, which may hold tag-like text and `&`.
fn text_body(p: &mut Pick, who: &str, seq: u64) -> String {
    let n = 100 + seq % 9_000;
    match who {
        "Nagios" => format!("PROBLEM: web-{} is DOWN - PING CRITICAL - Packet loss = 100%, RTA = nan ms", p.below(64)),
        "Jenkins" => format!("Build #{n} of deploy-api passed (2 min {} sec) <https://ci.example.com/job/deploy-api/{n}/>", p.below(60)),
        "GitHub" => format!("[acme/api] {} new commits to master: {} {}", 1 + p.below(4), p.hex(7), phrase(p, 4)),
        _ => format!("@user{} {} <b>not bold</b> & {}", p.below(800) + 1, phrase(p, 4), phrase(p, 2)),
    }
}

/// A card, as the JSON string Hipchat stores: link, application, image or file
/// style; the description a string or an `{value, format}` object.
fn card(p: &mut Pick, who: &str, seq: u64, title: &str) -> String {
    let url = format!("https://{}.example.com/item/{seq}", who.to_lowercase());
    let description = match p.below(3) {
        0 => json!({"value": format!("<b>{}</b> updated", escaped(p, title)), "format": "html"}),
        _ => json!(format!("{}\n{}", phrase(p, 6), phrase(p, 3))),
    };
    let mut card = json!({"style": p.of(&["link", "application", "image", "file"]), "url": url, "id": format!("{:08x}", seq.wrapping_mul(2_654_435_761) as u32),
        "title": title, "description": description, "format": p.of(&["compact", "medium"])});
    match p.below(3) {
        0 => card["attributes"] = json!([{"label": "Status", "value": {"label": "In Progress", "style": "lozenge-current"}}, {"label": "Priority", "value": {"label": "Major"}}]),
        1 => card["icon"] = json!({"url": format!("https://{}.example.com/icon.png", who.to_lowercase())}),
        _ => card["thumbnail"] = json!({"url": "https://img.example.com/t.png", "width": 64, "height": 64}),
    }
    if p.below(4) == 0 {
        card["activity"] = json!({"html": format!("<b>{who}</b> {}", escaped(p, title))});
    }
    card.to_string()
}

/// Room message `seq` as a notification element, sent by the integration of
/// its pick (or by room member `member` through one).
pub(super) fn notification(seq: u64, member: u64, id: String, timestamp: String) -> Value {
    let mut p = Pick::new(seq);
    let who = INTEGRATIONS[p.below(INTEGRATIONS.len() as u64) as usize];
    let sender = match p.below(20) {
        0..=8 => json!({"id": 0, "name": who}),
        9..=15 => json!(who),
        16..=17 => json!({"id": "0", "mention_name": "", "name": who, "version": ""}),
        _ => json!({"id": member, "mention_name": format!("user{member}"), "name": format!("User {member}")}),
    };
    let html = p.below(20) < 12;
    let message = match html {
        true if p.below(30) == 0 => rich_html_body(&mut p, seq),
        true => html_body(&mut p, who, seq),
        false => text_body(&mut p, who, seq),
    };
    let mut body = json!({"id": id, "type": "notification", "sender": sender, "message": message, "timestamp": timestamp, "color": p.of(&COLOURS)});
    match (html, p.below(20)) {
        (_, 0) => {}
        (true, 1) => body["message_format"] = json!("html"),
        (true, _) => body["format"] = json!("html"),
        (false, _) => body["format"] = json!("text"),
    }
    match p.below(10) {
        0..=3 => {
            let title = phrase(&mut p, 3);
            body["card"] = json!(card(&mut p, who, seq, &title));
        }
        4 => body["card"] = Value::Null,
        _ => {}
    }
    if p.below(3) == 0 {
        body["notify"] = json!(p.below(2) == 0);
    }
    match p.below(50) {
        0 => body,
        1 => {
            body["type"] = json!("muc_message");
            body
        }
        2 => json!({"GuestAccessMessage": body}),
        _ => json!({"NotificationMessage": body}),
    }
}

/// The step from a sender to the receiver of their private message `i`: nine in
/// ten go to a partner no other message of theirs goes to (tens of thousands of
/// distinct pairs, as real exports have), one in ten to the user next in line.
pub(super) fn private_step(i: u64, users: u64) -> u64 {
    let half = ((users - 1) / 2).max(1);
    if i % 10 == 9 { 1 } else { 1 + (i * 37) % half }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_made() {
        let elements: Vec<Value> = (0..4000).filter(|s| is_notification(*s)).map(|s| notification(s, 7, format!("id{s}"), "2015-01-01T00:00:00Z 000001".into())).collect();
        let body = |e: &Value| e.get("NotificationMessage").or_else(|| e.get("GuestAccessMessage")).cloned().unwrap_or_else(|| e.clone());
        let bodies: Vec<Value> = elements.iter().map(body).collect();
        let has = |f: &dyn Fn(&Value) -> bool| bodies.iter().any(f);
        assert!(has(&|b| b["format"] == "html" && b["card"].is_string()));
        assert!(has(&|b| b["format"] == "html" && b.get("card").is_none()));
        assert!(has(&|b| b["format"] == "text" && b["card"].is_string()));
        assert!(has(&|b| b["format"] == "text" && b["card"].is_null()));
        assert!(has(&|b| b["message_format"] == "html"));
        assert!(has(&|b| b.get("format").is_none() && b.get("message_format").is_none()));
        assert!(has(&|b| b["sender"]["id"] == 0));
        assert!(has(&|b| b["sender"]["id"] == "0"));
        assert!(has(&|b| b["sender"].is_string()));
        assert!(has(&|b| b["sender"]["id"] == 7));
        assert!(has(&|b| b["type"] == "muc_message"));
        assert!(has(&|b| b["message"].as_str().is_some_and(|m| m.contains("<table>"))));
        assert!(elements.iter().any(|e| e.get("GuestAccessMessage").is_some()));
        assert!(elements.iter().any(|e| e.get("id").is_some()), "some come unwrapped");
        let cards: Vec<Value> = bodies.iter().filter_map(|b| b["card"].as_str()).map(|c| serde_json::from_str(c).unwrap()).collect();
        assert!(cards.iter().any(|c| c["description"].is_object()) && cards.iter().any(|c| c["description"].is_string()));
        let share = (0..1000).filter(|s| is_notification(*s)).count();
        assert!(share >= 300, "{share} in 1000");
    }

    /// The shape's HTML bodies all take the converter's fast path (but the rare
    /// rich ones it leaves to htmd), and give what htmd gives.
    #[test]
    fn the_shapes_html_takes_the_fast_path_and_matches_htmd() {
        let (mut html, mut taken) = (0, 0);
        for seq in (0..20_000).filter(|s| is_notification(*s)) {
            let element = notification(seq, 7, String::new(), String::new());
            let body = element.as_object().and_then(|o| o.values().next()).filter(|v| v.is_object()).unwrap_or(&element);
            if body["format"] != "html" && body["message_format"] != "html" {
                continue;
            }
            let text = body["message"].as_str().unwrap_or_default();
            html += 1;
            if let Some(fast) = crate::convert::html::markdown(text) {
                taken += 1;
                assert_eq!(fast, htmd::convert(text).unwrap().trim(), "{text}");
            } else {
                assert!(["<table>", "<h3>", "<blockquote>", "<pre>"].iter().any(|t| text.contains(t)), "left to htmd: {text}");
            }
        }
        assert!(taken * 100 > html * 95, "{taken} of {html}");
    }

    #[test]
    fn private_steps_reach_many_partners() {
        let users = 800;
        let partners: std::collections::BTreeSet<u64> = (0..200).map(|i| private_step(i, users)).collect();
        assert!(partners.len() > 150, "{}", partners.len());
        assert!(partners.iter().all(|s| (1..=(users - 1) / 2).contains(s)));
    }
}

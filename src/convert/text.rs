//! Message text on its way to a target.
//!
//! The rules HIPCHAT.md draws from earlier importers: text stays byte-exact except
//! for deliberate rewrites; HTML is converted only when the message says it is HTML
//! (never run plain text through an HTML converter: it eats `<username>`); long
//! messages are split, never cut.

use std::collections::HashMap;

use crate::model::{Message, MessageKind};

/// The Markdown note that stands for an attachment without its file: one the
/// export lacks (the reader reports it), or one left out by `--no-files`. The
/// message says so where people read it, and does not blame Hipchat for the second.
/// `italic` is the target's italic marker: `_` for Mattermost, `*` for Zulip, whose
/// Markdown has no `_italic_` and would show the underscores.
pub fn missing_attachment_note(a: &crate::model::Attachment, italic: char) -> String {
    if a.left_out {
        format!("{italic}[attachment {:?} was not migrated]{italic}", a.name)
    } else {
        format!("{italic}[attachment {:?} is missing from the Hipchat export]{italic}", a.name)
    }
}

/// Markdown from a notification's HTML body (links, bold, lists kept): the HTML
/// integrations send goes through [`super::html::markdown`], which gives what
/// `htmd` gives at a fraction of the cost; anything else through `htmd` itself.
pub fn html_to_markdown(html: &str) -> String {
    // htmd walks the parsed tree recursively: a deeply nested body (hostile or
    // broken HTML) would overflow the stack and abort the process.
    if html_nesting_exceeds(html, MAX_HTML_DEPTH) {
        return html_to_plain(html);
    }
    if let Some(md) = super::html::markdown(html) {
        return md;
    }
    match HTMD.convert(html) {
        Ok(md) => md.trim().to_string(),
        Err(_) => html_to_plain(html),
    }
}

/// One converter for the run: `htmd::convert` builds its table of element
/// handlers (a hash map of some 70 tags) on every call, a sixth of a run on an
/// export full of notifications (callgrind). The default options keep no state
/// between calls (links are written inline), so sharing it changes nothing.
static HTMD: std::sync::LazyLock<htmd::HtmlToMarkdown> = std::sync::LazyLock::new(htmd::HtmlToMarkdown::new);

const MAX_HTML_DEPTH: usize = 256;

/// Whether the element nesting of `html` may go deeper than `limit` (an upper
/// bound: closing tags only close an element that is open, as in an HTML parser).
/// Names are compared in place, ignoring ASCII case: no string per tag.
fn html_nesting_exceeds(html: &str, limit: usize) -> bool {
    const VOID: [&str; 14] = ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"];
    let mut open: Vec<&str> = Vec::new();
    let mut rest = html;
    while let Some(lt) = memchr::memchr(b'<', rest.as_bytes()) {
        let after = &rest[lt + 1..];
        let Some(gt) = memchr::memchr(b'>', after.as_bytes()) else { break };
        let tag = &after[..gt];
        rest = &after[gt + 1..];
        let unslashed = tag.trim_start_matches('/');
        let name = &unslashed[..unslashed.bytes().take_while(u8::is_ascii_alphanumeric).count()];
        if name.is_empty() || VOID.iter().any(|v| v.eq_ignore_ascii_case(name)) || tag.ends_with('/') {
            continue;
        }
        if tag.starts_with('/') {
            if let Some(at) = open.iter().rposition(|n| n.eq_ignore_ascii_case(name)) {
                open.truncate(at);
            }
        } else {
            open.push(name);
            if open.len() > limit {
                return true;
            }
        }
    }
    false
}

/// Plain text from HTML: tags dropped (`<br>`, `<p>`, `<li>` become line breaks),
/// links kept as `text (url)`, entities decoded.
/// Hand-rolled (about 60 lines) because the plain-text converters on crates.io
/// re-wrap lines, which would change the text beyond removing markup. Written
/// into one buffer: tag names are compared in place and text decoded straight
/// into the output (a `String` per piece of text and per tag was most of its
/// cost, for Qiscus a tenth of a run on an export full of notifications).
pub fn html_to_plain(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let mut href_stack: Vec<Option<String>> = Vec::new();
    while let Some(lt) = memchr::memchr(b'<', rest.as_bytes()) {
        decode_entities_into(&rest[..lt], &mut out);
        let after = &rest[lt + 1..];
        let Some(gt) = memchr::memchr(b'>', after.as_bytes()) else {
            decode_entities_into(&rest[lt..], &mut out);
            rest = "";
            break;
        };
        let tag = &after[..gt];
        let unslashed = tag.trim_start_matches('/');
        let name = &unslashed[..unslashed.bytes().take_while(u8::is_ascii_alphanumeric).count()];
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        let closing = tag.starts_with('/');
        if is("br") {
            out.push('\n');
        } else if closing && ["p", "div", "tr", "ul", "ol", "table"].iter().any(|n| is(n)) {
            out.push('\n');
        } else if !closing && is("li") {
            out.push_str("\n- ");
        } else if !closing && is("a") {
            href_stack.push(attribute(tag, "href"));
        } else if closing && is("a") {
            if let Some(Some(url)) = href_stack.pop() {
                if !out.ends_with(&url) {
                    out.push_str(" (");
                    out.push_str(&url);
                    out.push(')');
                }
            }
        }
        rest = &after[gt + 1..];
    }
    decode_entities_into(rest, &mut out);
    out.truncate(out.trim_end().len());
    out.drain(..out.len() - out.trim_start().len());
    out
}

/// The value of attribute `name` in a tag's text (its name matched ignoring
/// ASCII case), entities decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let bytes = tag.as_bytes();
    let at = (0..bytes.len()).find(|i| bytes[*i..].len() > name.len() && bytes[*i..*i + name.len()].eq_ignore_ascii_case(name.as_bytes()) && bytes[*i + name.len()] == b'=')? + name.len() + 1;
    let value = &tag[at..];
    let (quote, body) = match value.chars().next()? {
        q @ ('"' | '\'') => (Some(q), &value[1..]),
        _ => (None, value),
    };
    let end = match quote {
        Some(q) => body.find(q).unwrap_or(body.len()),
        None => body.find(char::is_whitespace).unwrap_or(body.len()),
    };
    let mut out = String::new();
    decode_entities_into(&body[..end], &mut out);
    Some(out)
}

/// Decodes `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#39;`, `&nbsp;` and numeric
/// references; anything else is left as it is.
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    decode_entities_into(s, &mut out);
    out
}

/// The character an entity's name (between `&` and `;`) stands for, if
/// [`decode_entities`] decodes it.
fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ if name.starts_with("#x") || name.starts_with("#X") => u32::from_str_radix(&name[2..], 16).ok().and_then(char::from_u32),
        _ if name.starts_with('#') => name[1..].parse().ok().and_then(char::from_u32),
        _ => None,
    }
}

/// [`decode_entities`] appended to `out`.
fn decode_entities_into(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(amp) = memchr::memchr(b'&', rest.as_bytes()) {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let decoded = memchr::memchr(b';', &tail.as_bytes()[..tail.len().min(11)]).and_then(|semi| Some((entity(&tail[1..semi])?, semi + 1)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
}

/// [`split_chars`] for an owned text: one that fits is moved, not copied (the
/// common case, once per message).
pub fn split_chars_owned(text: String, max: usize) -> Vec<String> {
    if text.len() <= max.max(1) || text.chars().count() <= max.max(1) {
        return vec![text];
    }
    split_chars(&text, max)
}

/// Splits `text` into parts of at most `max` characters whose concatenation is
/// exactly `text`. Breaks after the last newline in a part, else after the last
/// whitespace, else at the limit (never inside a character).
pub fn split_chars(text: &str, max: usize) -> Vec<String> {
    split_weighted(text, max, |_| 1)
}

/// [`split_chars`] where each character counts `weight(c)` towards `max` (a
/// target may bound something other than characters, such as the work of
/// rendering a part). A character heavier than `max` still makes a part of its own.
pub fn split_weighted(text: &str, max: usize, weight: impl Fn(char) -> usize) -> Vec<String> {
    let max = max.max(1);
    let heavier_than_max = |t: &str| {
        let mut total = 0;
        t.chars().any(|c| {
            total += weight(c);
            total > max
        })
    };
    if !heavier_than_max(text) {
        return vec![text.to_string()];
    }
    let mut parts = Vec::new();
    let mut rest = text;
    while heavier_than_max(rest) {
        // The longest prefix that weighs at most `max` (at least one character).
        let mut total = 0;
        let limit = rest
            .char_indices()
            .find(|(_, c)| {
                total += weight(*c);
                total > max
            })
            .map_or(rest.len(), |(i, c)| if i == 0 { c.len_utf8() } else { i });
        let window = &rest[..limit];
        let cut = window
            .rfind('\n')
            .map(|i| i + 1)
            .filter(|i| *i > limit / 2)
            .or_else(|| window.rfind(char::is_whitespace).map(|i| i + window[i..].chars().next().map_or(1, char::len_utf8)).filter(|i| *i > limit / 2))
            .unwrap_or(limit);
        parts.push(rest[..cut].to_string());
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}

/// How a target shows formatting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Markdown (Mattermost, Zulip).
    Markdown,
    /// Plain text (Qiscus).
    Plain,
}

/// Hipchat's slash commands, rendered the way Hipchat showed them: `/code` as a
/// code block, `/quote` as a quote, `/me` as an action by `actor`. Other text is
/// returned unchanged.
pub fn slash_command(text: &str, actor: &str, style: Style) -> String {
    let (cmd, body) = match text.split_once([' ', '\n']) {
        Some((c, b)) => (c, b),
        None => (text, ""),
    };
    match (cmd, style) {
        ("/code", Style::Markdown) => {
            let fence = if body.contains("```") { "~~~~" } else { "```" };
            format!("{fence}\n{body}\n{fence}")
        }
        ("/quote", Style::Markdown) => body.lines().map(|l| format!("> {l}")).collect::<Vec<_>>().join("\n"),
        // Italics need no space inside the stars, and a bare `/me` is just the name.
        ("/me", Style::Markdown) => format!("*{}*", format!("{actor} {}", body.trim()).trim()),
        ("/code", Style::Plain) => body.to_string(),
        ("/quote", Style::Plain) => body.lines().map(|l| format!("> {l}")).collect::<Vec<_>>().join("\n"),
        ("/me", Style::Plain) => format!("{actor} {}", body.trim()).trim_end().to_string(),
        _ => text.to_string(),
    }
}

/// [`slash_command`] for a text the caller owns: most texts are no command, and
/// they come back as they are instead of copied (a copy per message, perf 500k).
/// The actor's name is asked for only when the text is a command (Qiscus looks
/// it up).
pub fn slash_command_owned<A: AsRef<str>>(mut text: String, actor: impl FnOnce() -> A, style: Style) -> String {
    slash_command_from(&mut text, 0, actor, style);
    text
}

/// [`slash_command_owned`] in place, for the part of `text` from `start` on (a
/// writer that builds each message in one buffer it keeps).
pub fn slash_command_from<A: AsRef<str>>(text: &mut String, start: usize, actor: impl FnOnce() -> A, style: Style) {
    if text[start..].starts_with('/') {
        let shown = slash_command(&text[start..], actor().as_ref(), style);
        text.truncate(start);
        text.push_str(&shown);
    }
}

/// True for `/code` messages, whose body must not be rewritten.
pub fn is_code(text: &str) -> bool {
    text.starts_with("/code ") || text.starts_with("/code\n")
}

/// Rewrites `@mention_name` and `(emoticon)` tokens with target-specific text.
/// A mention matches its name exactly, else ignoring case (so `@AnnAdmin` and
/// `@annadmin` reach two users whose names differ only in case); names may hold
/// any letters, not only ASCII. Emoticons match ignoring case. Unknown tokens stay
/// as they are.
#[derive(Debug, Default, Clone)]
pub struct TextRewriter {
    /// Registered names and their replacements, in registration order.
    names: Vec<(String, String)>,
    exact: HashMap<String, usize>,
    folded: HashMap<String, usize>,
    emoticons: HashMap<String, String>,
}

impl TextRewriter {
    /// An empty rewriter.
    pub fn new() -> Self {
        Self::default()
    }

    /// `@name` becomes `replacement`. The first mapping for a name wins, exactly
    /// and ignoring case.
    pub fn mention(&mut self, name: &str, replacement: String) {
        if name.is_empty() || self.exact.contains_key(name) {
            return;
        }
        let at = self.names.len();
        self.names.push((name.to_string(), replacement));
        self.exact.insert(name.to_string(), at);
        self.folded.entry(name.to_lowercase()).or_insert(at);
    }

    /// The registered mention `name` stands for: the exact one, else one ignoring case.
    fn mention_for(&self, name: &str) -> Option<&(String, String)> {
        let at = self.exact.get(name).or_else(|| self.folded.get(&name.to_lowercase()))?;
        self.names.get(*at)
    }

    /// `(shortcut)` becomes `replacement`.
    pub fn emoticon(&mut self, shortcut: &str, replacement: String) {
        if !shortcut.is_empty() {
            self.emoticons.entry(shortcut.to_lowercase()).or_insert(replacement);
        }
    }

    /// Applies both rewrites.
    pub fn rewrite(&self, text: &str) -> String {
        self.rewrite_collect(text).0
    }

    /// Applies both rewrites and also returns the mention names (as registered)
    /// that were replaced, in order of appearance: writers that flag mentioned
    /// users (Zulip's `mentioned` bit) need to know whom a text names.
    pub fn rewrite_collect(&self, text: &str) -> (String, Vec<String>) {
        let mut out = String::with_capacity(text.len() + 16);
        let mut mentioned = Vec::new();
        self.rewrite_onto(text, &mut out, &mut mentioned);
        (out, mentioned)
    }

    /// [`TextRewriter::rewrite`] appended to `out`: a writer that keeps one buffer
    /// for every message spares an allocation and a free per message.
    pub fn rewrite_into(&self, text: &str, out: &mut String) {
        self.rewrite_onto(text, out, &mut Vec::new());
    }

    /// Appends the rewritten `text` to `out`, and the names it replaced to `mentioned`.
    fn rewrite_onto(&self, text: &str, out: &mut String, mentioned: &mut Vec<String>) {
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut copied = 0;
        // Only `@` and `(` can start a token: jump from one to the next (most
        // texts have none, and this ran for every message).
        while let Some(skip) = memchr::memchr2(b'@', b'(', &bytes[i..]) {
            i += skip;
            let b = bytes[i];
            let prev_ok = text[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            if b == b'@' && prev_ok && !self.names.is_empty() {
                let len: usize = text[i + 1..].chars().take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-')).map(char::len_utf8).sum();
                let name = text[i + 1..i + 1 + len].trim_end_matches(['.', '-']);
                if let Some((registered, rep)) = (!name.is_empty()).then(|| self.mention_for(name)).flatten() {
                    out.push_str(&text[copied..i]);
                    out.push_str(rep);
                    mentioned.push(registered.clone());
                    i += 1 + name.len();
                    copied = i;
                    continue;
                }
            }
            if b == b'(' && !self.emoticons.is_empty() {
                let len = text[i + 1..].bytes().take_while(u8::is_ascii_alphanumeric).count();
                if len > 0 && len <= 50 && bytes.get(i + 1 + len) == Some(&b')')
                    && let Some(rep) = self.emoticons.get(&text[i + 1..i + 1 + len].to_lowercase()) {
                        out.push_str(&text[copied..i]);
                        out.push_str(rep);
                        i += len + 2;
                        copied = i;
                        continue;
                    }
            }
            i += 1;
        }
        out.push_str(&text[copied..]);
    }
}

/// What a room event looked like in Hipchat, as a sentence: topic changes,
/// archiving and guest access. `None` for kinds that are not events.
pub fn event_text(kind: &MessageKind, actor: &str) -> Option<String> {
    Some(match kind {
        MessageKind::Topic { topic } if topic.is_empty() => format!("{actor} cleared the room topic"),
        MessageKind::Topic { topic } => format!("{actor} changed the room topic to: {topic}"),
        MessageKind::Archive { is_archived: true } => format!("{actor} archived the room"),
        MessageKind::Archive { is_archived: false } => format!("{actor} unarchived the room"),
        MessageKind::GuestAccess { enabled: true, url } if !url.is_empty() => format!("{actor} enabled guest access: {url}"),
        MessageKind::GuestAccess { enabled: true, .. } => format!("{actor} enabled guest access"),
        MessageKind::GuestAccess { enabled: false, .. } => format!("{actor} disabled guest access"),
        _ => return None,
    })
}

/// A notification (integration card) as text: the body (HTML converted only when
/// the format says HTML), then the card's title, URL and description when the body
/// does not already show them.
pub fn notification_text(m: &Message, style: Style) -> String {
    let MessageKind::Notification { format, card, .. } = &m.kind else {
        return m.text.clone();
    };
    let mut body = if format.eq_ignore_ascii_case("html") {
        match style {
            Style::Markdown => html_to_markdown(&m.text),
            Style::Plain => html_to_plain(&m.text),
        }
    } else {
        m.text.clone()
    };
    if let Some(card) = card {
        fn shown(text: &Option<String>) -> Option<&str> {
            text.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        let mut extra = Vec::new();
        match (shown(&card.title), shown(&card.url)) {
            (Some(t), Some(u)) if !body.contains(u) => extra.push(match style {
                Style::Markdown => format!("[{t}]({u})"),
                Style::Plain => format!("{t} ({u})"),
            }),
            (Some(t), _) if !body.contains(t) => extra.push(t.to_string()),
            (None, Some(u)) if !body.contains(u) => extra.push(u.to_string()),
            _ => {}
        }
        if let Some(d) = shown(&card.description).filter(|d| !body.contains(d)) {
            extra.push(d.to_string());
        }
        if !extra.is_empty() {
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(&extra.join("\n"));
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn deeply_nested_html_does_not_overflow() {
        let html = format!("{}deep{}", "<div>".repeat(50_000), "</div>".repeat(50_000));
        assert_eq!(html_to_markdown(&html), "deep");
        let unclosed = format!("{}x", "<b>".repeat(50_000));
        assert_eq!(html_to_markdown(&unclosed), "x");
    }

    /// The nesting bound as it was first written (a `String` per tag), to hold
    /// the allocation-free one to.
    fn nesting_exceeds_as_written(html: &str, limit: usize) -> bool {
        const VOID: [&str; 14] = ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"];
        let mut open: Vec<String> = Vec::new();
        let mut rest = html;
        while let Some(lt) = rest.find('<') {
            let after = &rest[lt + 1..];
            let Some(gt) = after.find('>') else { break };
            let tag = &after[..gt];
            rest = &after[gt + 1..];
            let closing = tag.starts_with('/');
            let name: String = tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
            if name.is_empty() || VOID.contains(&name.as_str()) || tag.ends_with('/') {
                continue;
            }
            if closing {
                if let Some(at) = open.iter().rposition(|n| *n == name) {
                    open.truncate(at);
                }
            } else {
                open.push(name);
                if open.len() > limit {
                    return true;
                }
            }
        }
        false
    }

    /// Plain text from HTML as first written (a `String` per piece), to hold the
    /// one-buffer version to.
    fn html_to_plain_as_written(html: &str) -> String {
        let mut out = String::with_capacity(html.len());
        let mut rest = html;
        let mut href_stack: Vec<Option<String>> = Vec::new();
        while let Some(lt) = rest.find('<') {
            out.push_str(&decode_entities_as_written(&rest[..lt]));
            let after = &rest[lt + 1..];
            let Some(gt) = after.find('>') else {
                out.push_str(&decode_entities_as_written(&rest[lt..]));
                rest = "";
                break;
            };
            let tag = &after[..gt];
            let name: String = tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
            let closing = tag.starts_with('/');
            match (name.as_str(), closing) {
                ("br", _) => out.push('\n'),
                ("p" | "div" | "tr" | "ul" | "ol" | "table", true) => out.push('\n'),
                ("li", false) => out.push_str("\n- "),
                ("a", false) => href_stack.push(attribute_as_written(tag, "href")),
                ("a", true) => {
                    if let Some(Some(url)) = href_stack.pop() {
                        if !out.ends_with(&url) {
                            out.push_str(&format!(" ({url})"));
                        }
                    }
                }
                _ => {}
            }
            rest = &after[gt + 1..];
        }
        out.push_str(&decode_entities(rest));
        out.trim().to_string()
    }

    fn attribute_as_written(tag: &str, name: &str) -> Option<String> {
        let lower = tag.to_ascii_lowercase();
        let at = lower.find(&format!("{name}="))? + name.len() + 1;
        let value = &tag[at..];
        let (quote, body) = match value.chars().next()? {
            q @ ('"' | '\'') => (Some(q), &value[1..]),
            _ => (None, value),
        };
        let end = match quote {
            Some(q) => body.find(q).unwrap_or(body.len()),
            None => body.find(char::is_whitespace).unwrap_or(body.len()),
        };
        Some(decode_entities_as_written(&body[..end]))
    }

    fn decode_entities_as_written(s: &str) -> String {
        if !s.contains('&') {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let tail = &rest[amp..];
            let decoded = tail.find(';').filter(|semi| *semi <= 10).and_then(|semi| Some((entity(&tail[1..semi])?, semi + 1)));
            match decoded {
                Some((c, len)) => {
                    out.push(c);
                    rest = &tail[len..];
                }
                None => {
                    out.push('&');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    proptest! {
        #[test]
        fn plain_text_is_the_one_first_written(pieces in prop::collection::vec(prop::sample::select(vec![
            "<br>", "<BR/>", "</p>", "</P >", "<p>", "</div>", "</tr>", "</ul>", "</ol>", "</table>", "<li>", "<LI class=x>", "</li>", "<a href=\"http://x/a\">", "<A HREF='http://x/b c'>",
            "<a href=http://x/c>", "<a Href=\"&amp;q=1\">", "<a name=x>", "</a>", "</A>", "<a href=\"x", "text", "x.com", "http://x/a", " ", "\n", "&amp;", "&lt;b&gt;", "&#65;", "&#x42;",
            "&#X43;", "&#+65;", "&#x+41;", "&#1114112;", "&nbsp;", "&apos;", "&bogus;", "& x", "&;", "&#;", "&amp", "&verylongname;", "é", "😀", "<", ">", "<b>", "</b>", "<3", "<>",
        ]), 0..24)) {
            let html = pieces.concat();
            prop_assert_eq!(html_to_plain(&html), html_to_plain_as_written(&html), "{}", html);
            prop_assert_eq!(decode_entities(&html), decode_entities_as_written(&html), "{}", html);
        }

        #[test]
        fn the_nesting_bound_is_the_one_first_written(pieces in prop::collection::vec(prop::sample::select(vec!["<b>", "<B>", "</b>", "</B>", "<i>", "</i>", "<br>", "<BR>", "<b/>", "<//b>", "</ b>", "<>", "< >", "<3", "x", "é", ">", "<", "<img src=\"a>b\">", "<div class=x>", "</div>", "<Div>", "<ä>", "</i x>"]), 0..24), limit in 0usize..5) {
            let html = pieces.concat();
            prop_assert_eq!(html_nesting_exceeds(&html, limit), nesting_exceeds_as_written(&html, limit), "{}", html);
        }
    }

    #[test]
    fn a_left_out_attachment_is_not_called_missing() {
        let mut a = crate::model::Attachment { name: "f.txt".into(), declared_path: "x/f.txt".into(), declared_size: None, declared_thumbnail: None, file: None, thumbnail: None, left_out: false };
        assert_eq!(missing_attachment_note(&a, '_'), "_[attachment \"f.txt\" is missing from the Hipchat export]_");
        assert_eq!(missing_attachment_note(&a, '*'), "*[attachment \"f.txt\" is missing from the Hipchat export]*");
        a.left_out = true;
        assert_eq!(missing_attachment_note(&a, '_'), "_[attachment \"f.txt\" was not migrated]_");
    }

    #[test]
    fn html_conversions() {
        let html = "Card <b>Sample</b> &amp; <a href=\"http://x.com/a\">link</a>";
        assert_eq!(html_to_markdown(html), "Card **Sample** & [link](http://x.com/a)");
        assert_eq!(html_to_plain(html), "Card Sample & link (http://x.com/a)");
        assert_eq!(html_to_plain("a<br>b<ul><li>x</li></ul>"), "a\nb\n- x");
        assert_eq!(decode_entities("&lt;tag&gt; &#65;&#x42; &bogus; & x"), "<tag> AB &bogus; & x");
    }

    #[test]
    fn split_is_lossless_and_prefers_line_breaks() {
        let text = format!("{}\n{}", "a".repeat(30), "b".repeat(30));
        let parts = split_chars(&text, 40);
        assert_eq!(parts, vec![format!("{}\n", "a".repeat(30)), "b".repeat(30)]);
        assert_eq!(split_chars("short", 40), vec!["short"]);
        assert_eq!(split_chars("ééééé", 2), vec!["éé", "éé", "é"]);
    }

    proptest! {
        #[test]
        fn split_concatenates_back(text in "\\PC{0,300}", max in 1usize..50) {
            let parts = split_chars(&text, max);
            prop_assert_eq!(parts.concat(), text.clone());
            for p in &parts {
                prop_assert!(p.chars().count() <= max);
                prop_assert!(!p.is_empty() || text.is_empty());
            }
        }

        /// Weighted parts are lossless and weigh at most `max` (or are one
        /// character heavier than it).
        #[test]
        fn weighted_split_concatenates_back(text in "[a-c \n\u{1F600}-\u{1F602}]{0,300}", max in 1usize..60) {
            let weight = |c: char| if c >= '\u{1F600}' { 7 } else { 1 };
            let parts = split_weighted(&text, max, weight);
            prop_assert_eq!(parts.concat(), text.clone());
            for p in &parts {
                let w: usize = p.chars().map(weight).sum();
                prop_assert!(w <= max || p.chars().count() == 1, "{:?} weighs {}", p, w);
                prop_assert!(!p.is_empty() || text.is_empty());
            }
        }
    }

    #[test]
    fn weighted_split_counts_heavy_characters() {
        let text = format!("{}{}", "\u{1F600}".repeat(5), "a".repeat(5));
        let weight = |c: char| if c == '\u{1F600}' { 4 } else { 1 };
        assert_eq!(split_weighted(&text, 8, weight), vec!["\u{1F600}\u{1F600}", "\u{1F600}\u{1F600}", "\u{1F600}aaaa", "a"]);
        assert_eq!(split_weighted("abc", 8, weight), vec!["abc"]);
        assert_eq!(split_weighted(&text, 8, |_| 1), split_chars(&text, 8));
    }

    #[test]
    fn slash_commands() {
        assert_eq!(slash_command("/code fn x() {}", "Ann", Style::Markdown), "```\nfn x() {}\n```");
        assert_eq!(slash_command("/quote a\nb", "Ann", Style::Markdown), "> a\n> b");
        assert_eq!(slash_command("/me waves", "Ann", Style::Markdown), "*Ann waves*");
        assert_eq!(slash_command("/me waves", "Ann", Style::Plain), "Ann waves");
        assert_eq!(slash_command("/me", "Ann", Style::Markdown), "*Ann*");
        assert_eq!(slash_command("/me  waves \n", "Ann", Style::Markdown), "*Ann waves*");
        assert_eq!(slash_command("/me ", "Ann", Style::Plain), "Ann");
        assert_eq!(slash_command("/codex no", "Ann", Style::Markdown), "/codex no");
        for text in ["/me waves", "/quote a", "plain /me", "", "/"] {
            assert_eq!(slash_command_owned(text.to_string(), || "Ann", Style::Plain), slash_command(text, "Ann", Style::Plain), "{text}");
        }
    }

    #[test]
    fn mentions_and_emoticons() {
        let mut r = TextRewriter::new();
        r.mention("OtherUser", "@other.user".into());
        r.emoticon("hcdc", ":hcdc:".into());
        assert_eq!(r.rewrite("hi @otheruser. (hcdc) (nope) mail@OtherUser x"), "hi @other.user. :hcdc: (nope) mail@OtherUser x");
        assert_eq!(r.rewrite("@OtherUser"), "@other.user");
        assert_eq!(r.rewrite("ümlaut @OtherUser ü"), "ümlaut @other.user ü");
        let (text, names) = r.rewrite_collect("@OtherUser and @otheruser, not @nobody");
        assert_eq!(text, "@other.user and @other.user, not @nobody");
        assert_eq!(names, vec!["OtherUser", "OtherUser"]);
    }

    #[test]
    fn mentions_match_exactly_first_and_any_letters() {
        let mut r = TextRewriter::new();
        r.mention("AnnAdmin", "@ann".into());
        r.mention("annadmin", "@jo".into());
        r.mention("ChloéDupont", "@chloe".into());
        let (text, names) = r.rewrite_collect("@AnnAdmin vs @annadmin vs @ANNADMIN, cc @ChloéDupont. é@ChloéDupont");
        assert_eq!(text, "@ann vs @jo vs @ann, cc @chloe. é@ChloéDupont");
        assert_eq!(names, vec!["AnnAdmin", "annadmin", "AnnAdmin", "ChloéDupont"]);
    }

    #[test]
    fn events() {
        assert_eq!(event_text(&MessageKind::Topic { topic: "t".into() }, "Ann").unwrap(), "Ann changed the room topic to: t");
        assert_eq!(event_text(&MessageKind::Archive { is_archived: false }, "Ann").unwrap(), "Ann unarchived the room");
        assert!(event_text(&MessageKind::User, "Ann").is_none());
    }
}

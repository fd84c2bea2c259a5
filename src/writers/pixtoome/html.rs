//! `rendered_content` for Zulip 3.4: the HTML of each message, written by hcconv.
//!
//! Why: 3.4's importer renders a message whose `rendered_content` is null without a
//! message object (`fix_message_rendered_content` calls `markdown_convert` with the
//! realm only), and its Markdown then skips every user mention and wildcard
//! (`UserMentionPattern` needs `zulip_message`): `@**Ann**` would show as bold text
//! that links nobody. A message that arrives with HTML is not rendered; the
//! importer only rewrites the `data-user-id` of its `user-mention` spans to the new
//! ids. So the writer gives every message its HTML, in the exact form 3.4's
//! Markdown gives each construct hcconv writes (checked in the real importer; the
//! tests pin each form); only a notification's Markdown, converted from its HTML
//! card and free-form, is left to the importer.
//!
//! Hipchat text is plain text, so the HTML shows it as Hipchat did: escaped, with
//! paragraphs and line breaks, links made of bare `http(s)://` URLs, and only the
//! markup hcconv itself put into `content` (mentions, `/code` fences, `/quote`
//! lines, `/me`, upload links, the italic note of a missing attachment). Text a
//! Hipchat user typed that Markdown would read (`*stars*`, `# `, lists) stays as
//! typed. `content` keeps the Markdown a user edits; an edit re-renders it natively.
//!
//! Realm emoji: their image URL holds the realm id the import assigns (and the
//! upload backend's prefix), which nothing in the importer rewrites, so no HTML
//! written beforehand can point at the image. A message that names one gets this
//! HTML (emoji as `:name:` text) with `rendered_content_version` 0, below 3.4's
//! Markdown version: the server renders such a message again, with its message
//! object, the first time it is fetched (`MessageDict` → `need_to_render_content`),
//! and that render shows the imported organization's image (checked in the real
//! importer: the file is served at the URL it names).

use std::collections::{HashMap, HashSet};

use super::mentions::Mentioned;

/// What names in `content` point at: users an `@**Full Name**` links to, by
/// lowercased full name as the server's `MentionData.get_user_by_name` finds them,
/// and the realm emoji names.
#[derive(Debug, Default, Clone)]
pub struct LinkTargets {
    by_name: HashMap<String, Target>,
    emoji: HashSet<String>,
}

/// A user a mention links to.
#[derive(Debug, Clone)]
struct Target {
    id: u64,
    full_name: String,
    /// Whether the user can log in: a deactivated user's mention is silent.
    active: bool,
}

impl LinkTargets {
    /// Registers the user `id` named `full_name` (the first registration of a name wins).
    pub fn add_user(&mut self, full_name: &str, id: u64, active: bool) {
        self.by_name.entry(full_name.to_lowercase()).or_insert_with(|| Target { id, full_name: full_name.to_string(), active });
    }

    /// The id of the user `@**name**` links to, and whether that user is active.
    pub fn user(&self, name: &str) -> Option<(u64, bool)> {
        self.get(name).map(|t| (t.id, t.active))
    }

    /// Registers a realm emoji `:name:`.
    pub fn add_emoji(&mut self, name: &str) {
        self.emoji.insert(name.to_string());
    }

    /// Whether `text` names a realm emoji the way Zulip's `EMOJI_REGEX` finds one
    /// (`:name:` with word characters, `-` and `+`).
    fn names_emoji(&self, text: &str) -> bool {
        if self.emoji.is_empty() {
            return false;
        }
        // The pieces strictly between two colons (a piece may count twice where
        // Zulip's regex would take one: a render too many costs nothing).
        let pieces: Vec<&str> = text.split(':').collect();
        pieces.len() > 2 && pieces[1..pieces.len() - 1].iter().any(|p| self.emoji.contains(*p))
    }

    fn get(&self, name: &str) -> Option<&Target> {
        self.by_name.get(&name.to_lowercase())
    }
}

/// How the message's text was made, which decides the blocks it may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Plain text (user messages, events, notes): paragraphs and inline links.
    Plain,
    /// `/code`: a fenced block.
    Code,
    /// `/quote`: `> ` lines.
    Quote,
}

/// 3.4's `Message.rendered_content_version` (`zerver/lib/markdown`'s `version`).
pub const MARKDOWN_VERSION: u32 = 1;

/// A message's `rendered_content` and `rendered_content_version`, and whom it
/// mentions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The HTML.
    pub html: String,
    /// [`MARKDOWN_VERSION`], or 0 where the server must render again (realm emoji).
    pub version: u32,
    /// The users the HTML mentions, not silently, and whether it has a wildcard
    /// (3.4 flags a wildcard even inside a quote).
    pub mentioned: Mentioned,
}

/// The HTML and version for `content`, which hcconv wrote in `shape`.
pub fn rendered(content: &str, shape: Shape, targets: &LinkTargets) -> Rendered {
    let version = if targets.names_emoji(content) { 0 } else { MARKDOWN_VERSION };
    let mut mentioned = Mentioned::default();
    let html = render_into(content, shape, targets, &mut mentioned);
    Rendered { html, version, mentioned }
}

/// The HTML Zulip 3.4 shows for `content`, which hcconv wrote in `shape`.
#[cfg(test)]
pub fn render(content: &str, shape: Shape, mentions: &LinkTargets) -> String {
    render_into(content, shape, mentions, &mut Mentioned::default())
}

/// [`render`], noting the mentions it shows in `found`.
fn render_into(content: &str, shape: Shape, mentions: &LinkTargets, found: &mut Mentioned) -> String {
    // NormalizeWhitespace: `\r\n` and `\r` are line breaks, tabs stops of 4.
    let normalized = if content.contains('\r') { content.replace("\r\n", "\n").replace('\r', "\n").into() } else { std::borrow::Cow::Borrowed(content) };
    let expanded = expand_tabs(&normalized);
    let lines: Vec<&str> = expanded.split('\n').collect();
    let mut doc = Document::default();
    render_blocks(&lines, shape, mentions, &mut doc, false, found);
    doc.finish()
}

/// The message's top-level elements as Python-Markdown serializes them: each block
/// it parsed ends with a newline (its prettified tail), the preview `<div>`s added
/// after parsing end with none, and the whole is stripped.
#[derive(Default)]
struct Document {
    blocks: Vec<(String, bool)>,
    /// Image previews: URLs already previewed, and the previewable URLs met.
    previewed: Vec<String>,
    previewable: usize,
    /// YouTube previews, which 3.4 appends after everything else.
    trailing: Vec<String>,
}

impl Document {
    fn push(&mut self, html: String) {
        self.blocks.push((html, true));
    }

    fn finish(mut self) -> String {
        // More previewable links than 3.4's INLINE_PREVIEW_LIMIT_PER_MESSAGE: none
        // is previewed.
        if self.previewable > PREVIEW_LIMIT {
            self.blocks.retain(|(_, tail)| *tail);
            self.trailing.clear();
        }
        let mut out = String::new();
        for (html, tail) in self.blocks.iter().map(|(h, t)| (h.as_str(), *t)).chain(self.trailing.iter().map(|h| (h.as_str(), false))) {
            out.push_str(html);
            if tail {
                out.push('\n');
            }
        }
        out.trim().to_string()
    }
}

/// `INLINE_PREVIEW_LIMIT_PER_MESSAGE`.
const PREVIEW_LIMIT: usize = 5;

/// Python's `str.expandtabs(4)`, which Python-Markdown's NormalizeWhitespace applies.
fn expand_tabs(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\t') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut column = 0;
    for c in text.chars() {
        match c {
            '\t' => {
                let n = 4 - column % 4;
                out.extend(std::iter::repeat_n(' ', n));
                column += n;
            }
            '\n' | '\r' => {
                out.push(c);
                column = 0;
            }
            _ => {
                out.push(c);
                column += 1;
            }
        }
    }
    out.into()
}

/// Renders `lines` as blocks into `doc`; `quoted` blocks get no previews (3.4 does
/// not preview links inside a quote).
fn render_blocks(lines: &[&str], shape: Shape, mentions: &LinkTargets, doc: &mut Document, quoted: bool, found: &mut Mentioned) {
    let mut paragraph: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if shape == Shape::Code && is_fence(line) {
            flush_paragraph(&mut paragraph, mentions, doc, quoted, found);
            let close = lines[i + 1..].iter().position(|l| l.trim_end() == line.trim_end()).map(|p| i + 1 + p);
            let end = close.unwrap_or(lines.len());
            // The fenced block's placeholder stands between blank lines: 3.4's HTML
            // has three newlines after the block when more follows.
            doc.blocks.push((code_block(&lines[i + 1..end]) + "\n\n", true));
            i = end + 1;
        } else if shape == Shape::Quote && is_quote(line) {
            flush_paragraph(&mut paragraph, mentions, doc, quoted, found);
            // Python-Markdown's quote runs to the block's end: a line without `>`
            // before the next blank line continues it (an upload link, say).
            let end = lines[i..].iter().position(|l| l.trim().is_empty()).map_or(lines.len(), |p| i + p);
            let inner: Vec<&str> = lines[i..end].iter().map(|l| if is_quote(l) { unquote(l) } else { l }).collect();
            let mut quote = Document::default();
            render_blocks(&inner, Shape::Plain, mentions, &mut quote, true, found);
            doc.push(format!("<blockquote>\n{}\n</blockquote>", quote.finish()));
            i = end;
        } else if line.trim().is_empty() {
            flush_paragraph(&mut paragraph, mentions, doc, quoted, found);
            i += 1;
        } else {
            paragraph.push(line);
            i += 1;
        }
    }
    flush_paragraph(&mut paragraph, mentions, doc, quoted, found);
}

fn is_fence(line: &str) -> bool {
    matches!(line.trim_end(), "```" | "~~~~")
}

fn is_quote(line: &str) -> bool {
    line.starts_with('>')
}

fn unquote(line: &str) -> &str {
    let rest = &line[1..];
    rest.strip_prefix(' ').unwrap_or(rest)
}

/// 3.4's fenced block without a language, as its CodeHilite/Pygments makes it:
/// leading and trailing blank lines dropped, the text escaped with quotes too, a
/// final newline.
fn code_block(lines: &[&str]) -> String {
    let first = lines.iter().position(|l| !l.is_empty()).unwrap_or(lines.len());
    let last = lines.iter().rposition(|l| !l.is_empty()).map_or(first, |p| p + 1);
    let mut out = String::from("<div class=\"codehilite\"><pre><span></span><code>");
    for line in &lines[first..last.max(first)] {
        escape_code(line, &mut out);
        out.push('\n');
    }
    if first >= last {
        out.push('\n');
    }
    out.push_str("</code></pre></div>");
    out
}

/// One paragraph: its lines joined by `<br>` (Zulip's nl2br), the leading white
/// space of the block dropped as Python-Markdown's paragraph processor does; then
/// the previews of its image links.
fn flush_paragraph(lines: &mut Vec<&str>, mentions: &LinkTargets, doc: &mut Document, quoted: bool, found: &mut Mentioned) {
    if lines.is_empty() {
        return;
    }
    let text = lines.join("\n");
    lines.clear();
    let text = text.trim_start();
    let mut html = String::from("<p>");
    let mut links = Vec::new();
    let mut elements = 0;
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            html.push_str("<br>\n");
            elements += 1;
        }
        elements += inline(line, mentions, &mut html, &mut links, quoted, found);
    }
    html.push_str("</p>");
    if quoted {
        doc.push(html);
        return;
    }
    let only_link = elements == 1 && links.len() == 1 && links[0].label.is_none() && text.trim_end() == links[0].href;
    let mut previews = Vec::new();
    for link in &links {
        if !previewable(&link.href) || doc.previewed.contains(&link.href) {
            continue;
        }
        doc.previewed.push(link.href.clone());
        doc.previewable += 1;
        if let Some(id) = youtube_id(&link.href) {
            doc.trailing.push(format!("<div class=\"youtube-video message_inline_image\"><a data-id=\"{id}\" href=\"{}\"><img src=\"https://i.ytimg.com/vi/{id}/default.jpg\"></a></div>", attribute(&link.href)));
            continue;
        }
        let title = link.label.as_ref().map(|l| format!(" title=\"{}\"", attribute(l))).unwrap_or_default();
        let href = attribute(&link.href);
        previews.push(format!("<div class=\"message_inline_image\"><a href=\"{href}\"{title}><img src=\"{href}\"></a></div>"));
    }
    // A paragraph that is nothing but an image URL gives way to its preview.
    if !only_link || previews.is_empty() {
        doc.push(html);
    }
    doc.blocks.extend(previews.into_iter().map(|p| (p, false)));
}

/// A link in a paragraph: where it points, and its text when that is not the URL.
struct FoundLink {
    href: String,
    label: Option<String>,
}

/// Whether 3.4 previews `href` (images by the path's ending, YouTube videos).
fn previewable(href: &str) -> bool {
    is_image(href) || youtube_id(href).is_some()
}

/// 3.4's `is_image`: the URL's path ends like an image (its list has `jpeg`
/// without the dot); pasteboard.co pages are not images.
fn is_image(url: &str) -> bool {
    let (host, path) = split_url(url);
    if host == "pasteboard.co" {
        return false;
    }
    let path = path.to_lowercase();
    [".bmp", ".gif", ".jpe", "jpeg", ".jpg", ".png", ".webp"].iter().any(|ext| path.ends_with(ext))
}

/// The host and path of `url` (`urllib.parse.urlparse`'s netloc and path).
fn split_url(url: &str) -> (&str, &str) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = if url.contains("://") { rest } else { url };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let rest = &rest[..end];
    if !url.contains("://") {
        return ("", rest);
    }
    match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, ""),
    }
}

/// 3.4's `youtube_id` for the URL forms hcconv meets: `youtu.be/ID`,
/// `youtube.com/watch?v=ID` (with other parameters before `v`), `/embed/ID`, `/v/ID`.
fn youtube_id(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let id_chars = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).collect::<String>();
    let (host, path) = rest.split_once('/')?;
    let id = if host == "youtu.be" {
        id_chars(path)
    } else {
        let domain = host.rsplit('.').take(2).collect::<Vec<_>>();
        if !(domain == ["com", "youtube"] || domain == ["com", "youtube-nocookie"]) {
            return None;
        }
        if let Some(tail) = path.strip_prefix("embed/").or_else(|| path.strip_prefix("v/")) {
            id_chars(tail)
        } else {
            let (page, query) = path.split_once(['?', '#'])?;
            if !matches!(page, "" | "watch" | "watch_popup" | "watch.php") {
                return None;
            }
            let query = query.trim_start_matches('!');
            query.split('&').find_map(|kv| kv.strip_prefix("v=")).map(id_chars)?
        }
    };
    (!id.is_empty() && id != "playlist").then_some(id)
}

/// Inline text: mentions, upload links, the missing-attachment note, bare URLs;
/// everything else escaped as it is. Returns how many elements it wrote. A
/// mention in a quote is silent (no `@`, and no flag but a wildcard's: 3.4's
/// `BlockQuoteProcessor` makes every mention in it `@_**…**`, and its
/// `UserMentionPattern` notes a wildcard whether silent or not).
fn inline(text: &str, mentions: &LinkTargets, out: &mut String, links: &mut Vec<FoundLink>, quoted: bool, found: &mut Mentioned) -> usize {
    if let Some(note) = text.strip_prefix("*[attachment ").and_then(|t| t.strip_suffix("]*")) {
        out.push_str("<em>[attachment ");
        text_with_emoji(note, out);
        out.push_str("]</em>");
        return 1;
    }
    let mut elements = 0;
    let mut pos = 0;
    while pos < text.len() {
        let Some((start, end, token)) = next_token(text, pos, mentions) else {
            text_with_emoji(&text[pos..], out);
            break;
        };
        text_with_emoji(&text[pos..start], out);
        elements += 1;
        match token {
            Token::Mention(id, name) => {
                match id {
                    None => found.wildcard = true,
                    Some(id) if !quoted => found.add_user(id),
                    Some(_) => {}
                }
                out.push_str(if quoted { "<span class=\"user-mention silent\" data-user-id=\"" } else { "<span class=\"user-mention\" data-user-id=\"" });
                match id {
                    Some(id) => out.push_str(itoa::Buffer::new().format(id)),
                    None => out.push('*'),
                }
                out.push_str(if quoted { "\">" } else { "\">@" });
                escape_text(&name, out);
                out.push_str("</span>");
            }
            Token::Link { label, href } => {
                anchor(href, label, out);
                links.push(FoundLink { href: href.to_string(), label: (label != href).then(|| label.to_string()) });
            }
            Token::Url(url) => {
                anchor(url, url, out);
                links.push(FoundLink { href: url.to_string(), label: None });
            }
        }
        pos = end;
    }
    elements
}

enum Token<'a> {
    /// A user id (none for a wildcard, `*` in the HTML) and the name shown.
    Mention(Option<u64>, String),
    /// `[label](/user_uploads/…)`.
    Link { label: &'a str, href: &'a str },
    /// A bare `http(s)://` URL.
    Url(&'a str),
}

/// The first token in `text` from byte `from` on: its byte range and what it is.
/// A token right after another does not start (Python-Markdown sees the first
/// one's placeholder there, which no look-behind accepts).
fn next_token<'a>(text: &'a str, from: usize, mentions: &LinkTargets) -> Option<(usize, usize, Token<'a>)> {
    let bytes = text.as_bytes();
    // `from` is 0 or a token's end.
    let starts = |i: usize| (i != from || from == 0) && may_start(text, i);
    let mut i = from;
    while i < bytes.len() {
        let found = match bytes[i] {
            b'@' if text[i..].starts_with("@**") && starts(i) => mention_at(text, i, mentions),
            b'[' => upload_link_at(text, i),
            b'h' if starts(i) => url_at(text, i),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
        i += 1;
    }
    None
}

fn mention_at<'a>(text: &'a str, at: usize, mentions: &LinkTargets) -> Option<(usize, usize, Token<'a>)> {
    let body = &text[at + 3..];
    let close = body.find("**")?;
    let name = &body[..close];
    if name.is_empty() || name.contains(['\n', '*']) {
        return None;
    }
    let end = at + 3 + close + 2;
    if name == "all" || name == "everyone" || name == "stream" {
        return Some((at, end, Token::Mention(None, name.to_string())));
    }
    let target = mentions.get(name)?;
    Some((at, end, Token::Mention(Some(target.id), target.full_name.clone())))
}

fn upload_link_at(text: &str, at: usize) -> Option<(usize, usize, Token<'_>)> {
    let rest = &text[at + 1..];
    let close = rest.find("](/user_uploads/")?;
    let label = &rest[..close];
    if label.contains(['[', ']', '\n']) {
        return None;
    }
    let target = &rest[close + 2..];
    let end_target = target.find(')')?;
    let href = &target[..end_target];
    if href.contains(char::is_whitespace) {
        return None;
    }
    Some((at, at + 1 + close + 2 + end_target + 1, Token::Link { label, href }))
}

/// A URL or mention starts at the start or after white space, a quote, `(`, `,`,
/// `:` or `<` (the look-behind of 3.4's link and mention regexes).
fn may_start(text: &str, i: usize) -> bool {
    text[..i].chars().next_back().is_none_or(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '(' | ',' | ':' | '<'))
}

/// The `http(s)://` part of 3.4's link regex: a host of word characters, `.`, `:`,
/// `@` and `-`, then optionally `/` and a path without white space or `"` whose
/// brackets pair up; the URL must be followed by nothing but `!:;?),.'">` before
/// white space or the end. As the regex tries them: with a path before without,
/// the shortest path first, the shortest host first.
fn url_at(text: &str, at: usize) -> Option<(usize, usize, Token<'_>)> {
    let rest = &text[at..];
    let scheme = if rest.starts_with("https://") { 8 } else if rest.starts_with("http://") { 7 } else { return None };
    let token = &rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())];
    let trailing_ok = |s: &str| s.chars().all(|c| matches!(c, '!' | ':' | ';' | '?' | ')' | ',' | '.' | '\'' | '"' | '>'));
    let host_len = token[scheme..].find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '-'))).unwrap_or(token.len() - scheme);
    let found = |len: usize| Some((at, at + len, Token::Url(&rest[..len])));
    if host_len == 0 {
        return None;
    }
    let host_prefixes = token[scheme..scheme + host_len].char_indices().skip(1).map(|(k, _)| k).chain(std::iter::once(host_len));
    for k in host_prefixes {
        let host_end = scheme + k;
        if k == host_len && token[host_end..].starts_with('/') {
            let mut depth = 0i32;
            for (j, c) in token[host_end + 1..].char_indices().map(|(j, c)| (host_end + 1 + j, c)).chain(std::iter::once((token.len(), ' '))) {
                if depth == 0 && trailing_ok(&token[j..]) {
                    return found(j);
                }
                match c {
                    '"' => break,
                    '(' => depth += 1,
                    ')' if depth == 0 => break,
                    ')' => depth -= 1,
                    _ => {}
                }
            }
        }
        if trailing_ok(&token[host_end..]) {
            return found(host_end);
        }
    }
    None
}

/// `<a href="…">text</a>`, as 3.4's `url_to_a` makes it.
fn anchor(href: &str, text: &str, out: &mut String) {
    out.push_str("<a href=\"");
    escape_attribute(href, out);
    out.push_str("\">");
    escape_text(text, out);
    out.push_str("</a>");
}




/// ElementTree's text escaping: `&`, `<` and `>`.
fn escape_text(text: &str, out: &mut String) {
    escape(text, out, false, false);
}

/// Text as 3.4 shows it: escaped, and each Unicode emoji it knows as its emoji
/// span (`UnicodeEmoji`/`make_emoji`: the attributes in the order ElementTree
/// writes them, the title the name with spaces for `_`).
fn text_with_emoji(text: &str, out: &mut String) {
    let mut start = 0;
    for (i, c) in text.char_indices().filter(|(_, c)| *c >= '\u{2000}') {
        let Some(name) = unicode_emoji_name(c) else { continue };
        escape_text(&text[start..i], out);
        let title = name.replace('_', " ");
        let codepoint = format!("{:04x}", c as u32);
        out.push_str(&format!("<span aria-label=\"{title}\" class=\"emoji emoji-{codepoint}\" role=\"img\" title=\"{title}\">:{name}:</span>"));
        start = i + c.len_utf8();
    }
    escape_text(&text[start..], out);
}

/// Whether Zulip's Markdown shows `c` as an emoji: one 3.4 knows, or any
/// character of the Unicode blocks of pictographs (later releases know more).
pub fn is_unicode_emoji(c: char) -> bool {
    ('\u{1F000}'..='\u{1FAFF}').contains(&c) || (c >= '\u{2000}' && unicode_emoji_name(c).is_some())
}

/// 3.4's name of the Unicode emoji `c`, if its Markdown shows `c` as one.
fn unicode_emoji_name(c: char) -> Option<&'static str> {
    static NAMES: std::sync::OnceLock<HashMap<char, &'static str>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let lines = include_str!("emoji_3_4.txt").lines().filter(|l| !l.starts_with('#'));
        lines.filter_map(|l| l.split_once(' ')).filter_map(|(hex, name)| Some((char::from_u32(u32::from_str_radix(hex, 16).ok()?)?, name))).collect()
    });
    names.get(&c).copied()
}

/// ElementTree's attribute escaping: also `"`.
fn escape_attribute(text: &str, out: &mut String) {
    escape(text, out, true, false);
}

/// Pygments' escaping inside code: both quotes too.
fn escape_code(text: &str, out: &mut String) {
    escape(text, out, true, true);
}

fn escape(text: &str, out: &mut String, double_quote: bool, single_quote: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if double_quote => out.push_str("&quot;"),
            '\'' if single_quote => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

fn attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_attribute(text, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::Shape::{Code, Plain, Quote};
    use super::*;

    fn targets() -> LinkTargets {
        let mut t = LinkTargets::default();
        t.add_user("Other User", 7, true);
        t.add_user("HCDC User", 6, true);
        t.add_emoji("hcdc");
        t
    }

    /// Each expected HTML is what Zulip 3.4's own Markdown processor produced for the
    /// same content (`render_markdown` with a message object, in a realm imported by
    /// 3.4's `manage.py import`, where "Other User" had id 7 and "HCDC User" id 6).
    #[test]
    fn html_is_what_zulip_3_4_renders() {
        let cases: &[(&str, Shape, &str)] = &[
        ("hello world", Plain, "<p>hello world</p>"),
        ("a & b < c > d \"q\" 'x'", Plain, "<p>a &amp; b &lt; c &gt; d \"q\" 'x'</p>"),
        ("line one\nline two\n\nnew para", Plain, "<p>line one<br>\nline two</p>\n<p>new para</p>"),
        ("trailing space \nnext", Plain, "<p>trailing space <br>\nnext</p>"),
        ("   leading spaces", Plain, "<p>leading spaces</p>"),
        ("a\n   \nb", Plain, "<p>a</p>\n<p>b</p>"),
        ("tab\there\tx", Plain, "<p>tab here    x</p>"),
        ("see https://example.com/a_(b) ok", Plain, "<p>see <a href=\"https://example.com/a_(b)\">https://example.com/a_(b)</a> ok</p>"),
        ("(https://example.com/x)", Plain, "<p>(<a href=\"https://example.com/x\">https://example.com/x</a>)</p>"),
        ("https://example.com/x.", Plain, "<p><a href=\"https://example.com/x\">https://example.com/x</a>.</p>"),
        ("go to https://example.com/path?x=1&y=2, then", Plain, "<p>go to <a href=\"https://example.com/path?x=1&amp;y=2\">https://example.com/path?x=1&amp;y=2</a>, then</p>"),
        ("http://x.com?q=1 bad", Plain, "<p>http://x.com?q=1 bad</p>"),
        ("url:https://example.com/z here", Plain, "<p>url:<a href=\"https://example.com/z\">https://example.com/z</a> here</p>"),
        ("quote \"https://example.com/q\" end", Plain, "<p>quote \"<a href=\"https://example.com/q\">https://example.com/q</a>\" end</p>"),
        ("two https://a.example.com/1.png and https://b.example.com/2.jpg images", Plain, "<p>two <a href=\"https://a.example.com/1.png\">https://a.example.com/1.png</a> and <a href=\"https://b.example.com/2.jpg\">https://b.example.com/2.jpg</a> images</p>\n<div class=\"message_inline_image\"><a href=\"https://a.example.com/1.png\"><img src=\"https://a.example.com/1.png\"></a></div><div class=\"message_inline_image\"><a href=\"https://b.example.com/2.jpg\"><img src=\"https://b.example.com/2.jpg\"></a></div>"),
        ("https://example.com/logo.png", Plain, "<div class=\"message_inline_image\"><a href=\"https://example.com/logo.png\"><img src=\"https://example.com/logo.png\"></a></div>"),
        ("text\nhttps://example.com/logo.png", Plain, "<p>text<br>\n<a href=\"https://example.com/logo.png\">https://example.com/logo.png</a></p>\n<div class=\"message_inline_image\"><a href=\"https://example.com/logo.png\"><img src=\"https://example.com/logo.png\"></a></div>"),
        ("https://example.com/logo.PNG?size=2", Plain, "<div class=\"message_inline_image\"><a href=\"https://example.com/logo.PNG?size=2\"><img src=\"https://example.com/logo.PNG?size=2\"></a></div>"),
        ("https://pasteboard.co/x.png", Plain, "<p><a href=\"https://pasteboard.co/x.png\">https://pasteboard.co/x.png</a></p>"),
        ("https://example.com/a.jpeg https://example.com/b.gif https://example.com/c.png https://example.com/d.webp https://example.com/e.bmp https://example.com/f.jpe", Plain, "<p><a href=\"https://example.com/a.jpeg\">https://example.com/a.jpeg</a> <a href=\"https://example.com/b.gif\">https://example.com/b.gif</a> <a href=\"https://example.com/c.png\">https://example.com/c.png</a> <a href=\"https://example.com/d.webp\">https://example.com/d.webp</a> <a href=\"https://example.com/e.bmp\">https://example.com/e.bmp</a> <a href=\"https://example.com/f.jpe\">https://example.com/f.jpe</a></p>"),
        ("https://example.com/a.png https://example.com/a.png again", Plain, "<p><a href=\"https://example.com/a.png\">https://example.com/a.png</a> <a href=\"https://example.com/a.png\">https://example.com/a.png</a> again</p>\n<div class=\"message_inline_image\"><a href=\"https://example.com/a.png\"><img src=\"https://example.com/a.png\"></a></div>"),
        ("watch https://www.youtube.com/watch?v=dQw4w9WgXcQ now", Plain, "<p>watch <a href=\"https://www.youtube.com/watch?v=dQw4w9WgXcQ\">https://www.youtube.com/watch?v=dQw4w9WgXcQ</a> now</p>\n<div class=\"youtube-video message_inline_image\"><a data-id=\"dQw4w9WgXcQ\" href=\"https://www.youtube.com/watch?v=dQw4w9WgXcQ\"><img src=\"https://i.ytimg.com/vi/dQw4w9WgXcQ/default.jpg\"></a></div>"),
        ("https://youtu.be/dQw4w9WgXcQ", Plain, "<p><a href=\"https://youtu.be/dQw4w9WgXcQ\">https://youtu.be/dQw4w9WgXcQ</a></p>\n<div class=\"youtube-video message_inline_image\"><a data-id=\"dQw4w9WgXcQ\" href=\"https://youtu.be/dQw4w9WgXcQ\"><img src=\"https://i.ytimg.com/vi/dQw4w9WgXcQ/default.jpg\"></a></div>"),
        ("first https://youtu.be/abc123\n\nsecond para https://example.com/i.png", Plain, "<p>first <a href=\"https://youtu.be/abc123\">https://youtu.be/abc123</a></p>\n<p>second para <a href=\"https://example.com/i.png\">https://example.com/i.png</a></p>\n<div class=\"message_inline_image\"><a href=\"https://example.com/i.png\"><img src=\"https://example.com/i.png\"></a></div><div class=\"youtube-video message_inline_image\"><a data-id=\"abc123\" href=\"https://youtu.be/abc123\"><img src=\"https://i.ytimg.com/vi/abc123/default.jpg\"></a></div>"),
        ("@**other user** lower", Plain, "<p><span class=\"user-mention\" data-user-id=\"7\">@Other User</span> lower</p>"),
        ("/me waves at @**HCDC User**", Plain, "<p>/me waves at <span class=\"user-mention\" data-user-id=\"6\">@HCDC User</span></p>"),
        ("/me does\na thing", Plain, "<p>/me does<br>\na thing</p>"),
        ("lost file\n\n*[attachment \"r.pdf\" is missing from the Hipchat export]*", Plain, "<p>lost file</p>\n<p><em>[attachment \"r.pdf\" is missing from the Hipchat export]</em></p>"),
        ("nice picture!\n[img.png](/user_uploads/2/ab/img.png)", Plain, "<p>nice picture!<br>\n<a href=\"/user_uploads/2/ab/img.png\">img.png</a></p>\n<div class=\"message_inline_image\"><a href=\"/user_uploads/2/ab/img.png\" title=\"img.png\"><img src=\"/user_uploads/2/ab/img.png\"></a></div>"),
        ("[doc.pdf](/user_uploads/2/cd/doc.pdf)", Plain, "<p><a href=\"/user_uploads/2/cd/doc.pdf\">doc.pdf</a></p>"),
        ("[img.png](/user_uploads/2/ab/img.png)", Plain, "<p><a href=\"/user_uploads/2/ab/img.png\">img.png</a></p>\n<div class=\"message_inline_image\"><a href=\"/user_uploads/2/ab/img.png\" title=\"img.png\"><img src=\"/user_uploads/2/ab/img.png\"></a></div>"),
        ("```\nfn main() {\n    println!(\"hi\");\n}\n```", Code, "<div class=\"codehilite\"><pre><span></span><code>fn main() {\n    println!(&quot;hi&quot;);\n}\n</code></pre></div>"),
        ("```\n\n  indented 'single' & <tag>\n\n```", Code, "<div class=\"codehilite\"><pre><span></span><code>  indented &#39;single&#39; &amp; &lt;tag&gt;\n</code></pre></div>"),
        ("```\na\tb\n```", Code, "<div class=\"codehilite\"><pre><span></span><code>a   b\n</code></pre></div>"),
        ("~~~~\nhas ``` inside\n~~~~", Code, "<div class=\"codehilite\"><pre><span></span><code>has ``` inside\n</code></pre></div>"),
        ("```\ncode\n```\n[f.txt](/user_uploads/2/ef/f.txt)", Code, "<div class=\"codehilite\"><pre><span></span><code>code\n</code></pre></div>\n\n\n<p><a href=\"/user_uploads/2/ef/f.txt\">f.txt</a></p>"),
        ("> to be or not to be", Quote, "<blockquote>\n<p>to be or not to be</p>\n</blockquote>"),
        ("> a\n> b\n>\n> c", Quote, "<blockquote>\n<p>a<br>\nb</p>\n<p>c</p>\n</blockquote>"),
        ("> see https://example.com/q.png", Quote, "<blockquote>\n<p>see <a href=\"https://example.com/q.png\">https://example.com/q.png</a></p>\n</blockquote>"),
        ("> quoted\n[img.png](/user_uploads/2/ab/img.png)", Quote, "<blockquote>\n<p>quoted<br>\n<a href=\"/user_uploads/2/ab/img.png\">img.png</a></p>\n</blockquote>"),
        ("HCDC User enabled guest access: https://hipchat.example.com/gQ82tnQz5", Plain, "<p>HCDC User enabled guest access: <a href=\"https://hipchat.example.com/gQ82tnQz5\">https://hipchat.example.com/gQ82tnQz5</a></p>"),
        ("a\r\nb", Plain, "<p>a<br>\nb</p>"),
        ("x\ry", Plain, "<p>x<br>\ny</p>"),
        ("https://example.com/(a)(b).", Plain, "<p><a href=\"https://example.com/(a)(b)\">https://example.com/(a)(b)</a>.</p>"),
        ("https://example.com/a\"b", Plain, "<p>https://example.com/a\"b</p>"),
        ("https://ex.com:8080/p", Plain, "<p><a href=\"https://ex.com:8080/p\">https://ex.com:8080/p</a></p>"),
        ("http://user@host.com/x", Plain, "<p><a href=\"http://user@host.com/x\">http://user@host.com/x</a></p>"),
        ("(see https://example.com/a)", Plain, "<p>(see <a href=\"https://example.com/a\">https://example.com/a</a>)</p>"),
        ("https://example.com/a)b", Plain, "<p>https://example.com/a)b</p>"),
        ("<https://example.com/a>", Plain, "<p>&lt;<a href=\"https://example.com/a\">https://example.com/a</a>&gt;</p>"),
        ("'https://example.com/a'", Plain, "<p>'<a href=\"https://example.com/a\">https://example.com/a</a>'</p>"),
        ("https://例え.jp/パス", Plain, "<p><a href=\"https://例え.jp/パス\">https://例え.jp/パス</a></p>"),
        ("xhttps://example.com", Plain, "<p>xhttps://example.com</p>"),
        ("https://", Plain, "<p>https://</p>"),
        ("https://.", Plain, "<p><a href=\"https://.\">https://.</a></p>"),
        ("http://x", Plain, "<p><a href=\"http://x\">http://x</a></p>"),
        ("http://x...", Plain, "<p><a href=\"http://x\">http://x</a>...</p>"),
        ("end https://example.com/a?b=c#frag!", Plain, "<p>end <a href=\"https://example.com/a?b=c#frag\">https://example.com/a?b=c#frag</a>!</p>"),
        ("https://example.com/a((b))c", Plain, "<p><a href=\"https://example.com/a((b))c\">https://example.com/a((b))c</a></p>"),
        ("https://example.com/a,b,c", Plain, "<p><a href=\"https://example.com/a,b,c\">https://example.com/a,b,c</a></p>"),
        ("https://example.com/img.png.", Plain, "<p><a href=\"https://example.com/img.png\">https://example.com/img.png</a>.</p>\n<div class=\"message_inline_image\"><a href=\"https://example.com/img.png\"><img src=\"https://example.com/img.png\"></a></div>"),
        ("1 https://e.com/1.png 2 https://e.com/2.png 3 https://e.com/3.png 4 https://e.com/4.png 5 https://e.com/5.png 6 https://e.com/6.png", Plain, "<p>1 <a href=\"https://e.com/1.png\">https://e.com/1.png</a> 2 <a href=\"https://e.com/2.png\">https://e.com/2.png</a> 3 <a href=\"https://e.com/3.png\">https://e.com/3.png</a> 4 <a href=\"https://e.com/4.png\">https://e.com/4.png</a> 5 <a href=\"https://e.com/5.png\">https://e.com/5.png</a> 6 <a href=\"https://e.com/6.png\">https://e.com/6.png</a></p>"),
        ("para one https://e.com/1.png\n\npara two https://e.com/2.png\n\nend", Plain, "<p>para one <a href=\"https://e.com/1.png\">https://e.com/1.png</a></p>\n<div class=\"message_inline_image\"><a href=\"https://e.com/1.png\"><img src=\"https://e.com/1.png\"></a></div><p>para two <a href=\"https://e.com/2.png\">https://e.com/2.png</a></p>\n<div class=\"message_inline_image\"><a href=\"https://e.com/2.png\"><img src=\"https://e.com/2.png\"></a></div><p>end</p>"),
        ("https://e.com/1.png\n\nhttps://e.com/2.png", Plain, "<div class=\"message_inline_image\"><a href=\"https://e.com/1.png\"><img src=\"https://e.com/1.png\"></a></div><div class=\"message_inline_image\"><a href=\"https://e.com/2.png\"><img src=\"https://e.com/2.png\"></a></div>"),
        ("  \n\n  spaced  \n\n  ", Plain, "<p>spaced  </p>"),
        ("a  \nb", Plain, "<p>a  <br>\nb</p>"),
        ("https://www.youtube.com/embed/abcDEF_-1", Plain, "<p><a href=\"https://www.youtube.com/embed/abcDEF_-1\">https://www.youtube.com/embed/abcDEF_-1</a></p>\n<div class=\"youtube-video message_inline_image\"><a data-id=\"abcDEF_-1\" href=\"https://www.youtube.com/embed/abcDEF_-1\"><img src=\"https://i.ytimg.com/vi/abcDEF_-1/default.jpg\"></a></div>"),
        ("https://m.youtube.com/watch?feature=x&v=Zz9", Plain, "<p><a href=\"https://m.youtube.com/watch?feature=x&amp;v=Zz9\">https://m.youtube.com/watch?feature=x&amp;v=Zz9</a></p>\n<div class=\"youtube-video message_inline_image\"><a data-id=\"Zz9\" href=\"https://m.youtube.com/watch?feature=x&amp;v=Zz9\"><img src=\"https://i.ytimg.com/vi/Zz9/default.jpg\"></a></div>"),
        ("https://www.youtube.com/playlist?list=PL1", Plain, "<p><a href=\"https://www.youtube.com/playlist?list=PL1\">https://www.youtube.com/playlist?list=PL1</a></p>"),
        ("/me", Plain, "<p>/me</p>"),
        ("/me  ", Plain, "<p>/me  </p>"),
        ("word https://e.com/x.png\nhttps://e.com/x.png", Plain, "<p>word <a href=\"https://e.com/x.png\">https://e.com/x.png</a><br>\n<a href=\"https://e.com/x.png\">https://e.com/x.png</a></p>\n<div class=\"message_inline_image\"><a href=\"https://e.com/x.png\"><img src=\"https://e.com/x.png\"></a></div>"),
        ];
        let t = targets();
        for (content, shape, zulip) in cases {
            assert_eq!(render(content, *shape, &t), *zulip, "content {content:?}");
        }
    }

    /// Where Hipchat's plain text and Zulip's Markdown part ways, the HTML shows the
    /// text as Hipchat did (3.4 would make code of a tab-indented line, bold of an
    /// unknown `@**name**`, an emoji of `:smile:`, and read `&amp;`).
    #[test]
    fn plain_text_stays_plain() {
        let t = targets();
        assert_eq!(render("\tstarts with tab", Plain, &t), "<p>starts with tab</p>");
        assert_eq!(render("and @**Nobody Here**", Plain, &t), "<p>and @**Nobody Here**</p>");
        assert_eq!(render("emoji :smile:", Plain, &t), "<p>emoji :smile:</p>");
        assert_eq!(render("<b>x</b> &amp;", Plain, &t), "<p>&lt;b&gt;x&lt;/b&gt; &amp;amp;</p>");
    }

    /// A mention in a `/quote` is silent, as 3.4 renders it: no `@`, and no
    /// `mentioned` flag; a wildcard there still notifies (3.4 notes it either way).
    /// The HTML and the mentions are what 3.4's `render_markdown` gave for the same
    /// content in the real 3.4 server tree (no user mentioned, wildcard true).
    #[test]
    fn mentions_in_a_quote_are_silent() {
        let t = targets();
        let quoted = rendered("> hi @**Other User** and @**all**", Quote, &t);
        assert_eq!(quoted.html, "<blockquote>\n<p>hi <span class=\"user-mention silent\" data-user-id=\"7\">Other User</span> and <span class=\"user-mention silent\" data-user-id=\"*\">all</span></p>\n</blockquote>");
        assert_eq!(quoted.mentioned, Mentioned { users: vec![], wildcard: true });
        let plain = rendered("@**HCDC User** @**Other User** @**HCDC User** @**Nobody**", Plain, &t);
        assert_eq!(plain.mentioned, Mentioned { users: vec![6, 7], wildcard: false });
        // Not a quote in a plain message: the `>` is text, the mention a mention.
        assert_eq!(rendered("> @**Other User**", Plain, &t).mentioned.users, vec![7]);
        assert_eq!(rendered("```\n@**Other User**\n```", Code, &t).mentioned, Mentioned::default());
    }

    /// Unicode emoji as 3.4's `UnicodeEmoji` shows them (each expected HTML is
    /// what 3.4's `markdown_convert` gave, in the real 3.4 server tree); other
    /// characters of its ranges (’ – … ©) stay as they are.
    #[test]
    fn unicode_emoji_are_3_4s_spans() {
        let t = targets();
        let span = |cp: &str, name: &str| format!("<span aria-label=\"{name}\" class=\"emoji emoji-{cp}\" role=\"img\" title=\"{name}\">:{name}:</span>");
        for (content, shape, zulip) in [
            ("heart \u{2764} and smile \u{1F600} ok", Plain, format!("<p>heart {} and smile {} ok</p>", span("2764", "heart"), span("1f600", "grinning"))),
            ("coffee\u{2615}tea \u{2705} done \u{2019}quoted\u{2019} \u{2013} dash \u{2026}", Plain, format!("<p>coffee{}tea {} done \u{2019}quoted\u{2019} \u{2013} dash \u{2026}</p>", span("2615", "coffee"), span("2705", "check"))),
            ("\u{1F44D}", Plain, format!("<p>{}</p>", span("1f44d", "+1"))),
            ("x \u{203C} y \u{A9} z \u{2122}", Plain, format!("<p>x {} y \u{A9} z \u{2122}</p>", span("203c", "bangbang"))),
            ("*[attachment \"a\u{2764}.png\" is missing]*", Plain, format!("<p><em>[attachment \"a{}.png\" is missing]</em></p>", span("2764", "heart"))),
            ("> quote \u{1F680}", Quote, format!("<blockquote>\n<p>quote {}</p>\n</blockquote>", span("1f680", "rocket"))),
        ] {
            assert_eq!(render(content, shape, &t), zulip, "content {content:?}");
        }
        assert_eq!(include_str!("emoji_3_4.txt").lines().filter(|l| !l.starts_with('#')).count(), 1012);
    }

    #[test]
    fn realm_emoji_leave_the_render_to_the_server() {
        let t = targets();
        assert_eq!(rendered("hi :hcdc: there", Plain, &t).version, 0);
        assert_eq!(rendered("hi :hcdc: there", Plain, &t).html, "<p>hi :hcdc: there</p>");
        assert_eq!(rendered("hi :smile: and hcdc: x", Plain, &t).version, MARKDOWN_VERSION);
        assert_eq!(rendered("hcdc", Plain, &t).version, MARKDOWN_VERSION);
    }

    #[test]
    fn markup_only_counts_in_its_shape() {
        let t = targets();
        assert_eq!(render("> not a quote", Plain, &t), "<p>&gt; not a quote</p>");
        assert_eq!(render("```\nnot code\n```", Plain, &t), "<p>```<br>\nnot code<br>\n```</p>");
        // An unclosed fence (a split message's first part) runs to the end.
        assert_eq!(render("```\nopen", Code, &t), "<div class=\"codehilite\"><pre><span></span><code>open\n</code></pre></div>");
        assert_eq!(render("> q\n\nafter", Quote, &t), "<blockquote>\n<p>q</p>\n</blockquote>\n<p>after</p>");
    }

    #[test]
    fn youtube_ids() {
        assert_eq!(youtube_id("https://youtu.be/abc-_1"), Some("abc-_1".into()));
        assert_eq!(youtube_id("https://www.youtube.com/watch?feature=x&v=Zz9"), Some("Zz9".into()));
        assert_eq!(youtube_id("https://www.youtube.com/playlist?list=PL1"), None);
        assert_eq!(youtube_id("https://example.com/watch?v=x"), None);
    }
}

//! Whom a message's Markdown mentions once a Zulip 9.x or later server renders it:
//! the users whose row gets the `mentioned` flag, and whether it notifies everyone.
//!
//! Why: Zulip sets `mentioned` only for a user its Markdown shows as a mention that
//! is not silent, and the importer takes the flags as written, never from its own
//! render. A flag on a user the message does not visibly mention (a name that
//! stayed plain text, a mention inside a quote, in a code block) puts a message in
//! their "Mentions" view that mentions nobody. So the flags follow the same rules
//! the server's renderer applies to the same text (Zulip 9.0's
//! `zerver/lib/markdown/__init__.py` and `fenced_code.py`; checked against the
//! importer's rendered HTML):
//! - fenced blocks: ```` ``` ````/`~~~` lines open a block that the same fence,
//!   alone on a line, closes; a code block (any language but the ones below)
//!   renders no mention; `quote`/`quoted` blocks are quotes; `spoiler` content is
//!   ordinary Markdown; `math` renders no mention; an unclosed block runs to the end;
//! - blocks (separated by blank lines): one that starts with four spaces is an
//!   indented code block, unless it follows a list (it continues the item); in
//!   any other, the first line that starts with up to three
//!   spaces and `>` (and is followed by more than empty `>` lines) starts a quote
//!   that runs to the block's end, where every mention is silent;
//! - inline code (a run of backticks to the next run of the same length, across
//!   lines of the block) holds no mention;
//! - `@**name**` starts a mention only at the start of the text or after white
//!   space, `'`, `"`, `(`, `{`, `[`, `/` or `<`; `@_**name**` is silent; a name
//!   the realm does not hold is no mention; a deactivated user's is silent;
//!   `all`, `everyone`, `stream` and `channel` are wildcards.

use super::html::LinkTargets;

/// What a message's text mentions, as the server renders it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Mentioned {
    /// Users mentioned, not silently (ascending, once each).
    pub users: Vec<u64>,
    /// A wildcard mention, not silent.
    pub wildcard: bool,
}

impl Mentioned {
    pub(super) fn add_user(&mut self, id: u64) {
        if let Err(at) = self.users.binary_search(&id) {
            self.users.insert(at, id);
        }
    }
}

/// Names Zulip reads as a mention of everyone in the stream.
const WILDCARDS: [&str; 4] = ["all", "everyone", "stream", "channel"];

/// The mentions Zulip's Markdown renders in `content`, with users looked up in
/// `targets`.
pub fn server_rendered(content: &str, targets: &LinkTargets) -> Mentioned {
    let mut found = Mentioned::default();
    if !content.contains("@") {
        return found;
    }
    let normalized = content.replace("\r\n", "\n").replace('\r', "\n").replace('\t', "    ");
    let mut lines: Vec<(String, bool)> = Vec::new();
    unfence(normalized.split('\n'), false, &mut lines);
    let mut in_list = false;
    for block in lines.split(|(line, _)| line.trim().is_empty()).filter(|b| !b.is_empty()) {
        let first = block[0].0.as_str();
        let indented = first.starts_with("    ");
        // An indented block right after a list continues its item; any other
        // indented block is code.
        if !(indented && !in_list) {
            scan_block(block, targets, &mut found);
        }
        in_list = is_list_item(first) || (indented && in_list);
    }
    found
}

/// Whether `line` starts a list item (`-`, `*`, `+` or `1.` and a space, after up
/// to three spaces), as Python-Markdown's list processors test a block.
fn is_list_item(line: &str) -> bool {
    let rest = line.trim_start_matches(' ');
    if line.len() - rest.len() > 3 {
        return false;
    }
    let marker = rest.strip_prefix(['-', '*', '+']).or_else(|| rest.trim_start_matches(|c: char| c.is_ascii_digit()).strip_prefix('.').filter(|_| rest.starts_with(|c: char| c.is_ascii_digit())));
    marker.is_some_and(|after| after.starts_with(' '))
}

/// What a fence line opens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FenceKind {
    /// Code, `math`: rendered without mentions.
    Opaque,
    /// `quote`, `quoted`: a quote whose content is Markdown.
    Quote,
    /// `spoiler`: Markdown.
    Spoiler,
}

/// The fence string and kind if `line` opens a fenced block (Zulip's `FENCE_RE`:
/// three or more backticks or tildes at the start, spaces, an optional language
/// of `[a-zA-Z0-9_+-./#]`, spaces, an optional header without backticks or tildes).
fn fence_open(line: &str) -> Option<(&str, FenceKind)> {
    let mark = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = line.len() - line.trim_start_matches(mark).len();
    if len < 3 {
        return None;
    }
    let rest = line[len..].trim_start_matches(' ');
    let rest = rest.strip_prefix('{').unwrap_or(rest);
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    let lang_len = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || "_+-./#".contains(c)).len();
    let (lang, header) = rest.split_at(lang_len);
    let header = header.trim_start_matches(' ');
    let header = header.strip_suffix('}').unwrap_or(header);
    if header.contains(['`', '~']) || (lang.is_empty() && !header.is_empty()) {
        return None;
    }
    let kind = match lang.to_ascii_lowercase().as_str() {
        "quote" | "quoted" => FenceKind::Quote,
        "spoiler" => FenceKind::Spoiler,
        _ => FenceKind::Opaque,
    };
    Some((&line[..len], kind))
}

/// The lines Markdown's block parser sees once fenced blocks are taken out, each
/// with whether a quote fence holds it: code blocks leave nothing, quote and
/// spoiler blocks their content, each block between blank lines (as Zulip's
/// fenced-block preprocessor puts it). `quoted` marks lines of an outer quote.
fn unfence<'a>(mut lines: impl Iterator<Item = &'a str>, quoted: bool, out: &mut Vec<(String, bool)>) {
    while let Some(line) = lines.next() {
        let Some((fence, kind)) = fence_open(line) else {
            out.push((line.to_string(), quoted));
            continue;
        };
        let mut inner: Vec<&str> = Vec::new();
        for line in lines.by_ref() {
            if line.trim_end() == fence {
                break;
            }
            inner.push(line);
        }
        // An empty block leaves nothing, not even the blank lines around it.
        if inner.is_empty() {
            continue;
        }
        out.push((String::new(), quoted));
        match kind {
            // The placeholder of the rendered block: text without mentions.
            FenceKind::Opaque => out.push((PLACEHOLDER.to_string(), quoted)),
            FenceKind::Quote => unfence(inner.into_iter(), true, out),
            FenceKind::Spoiler => unfence(inner.into_iter(), quoted, out),
        }
        out.push((String::new(), quoted));
    }
}

/// Stands for a rendered code block among the lines (as Python-Markdown's
/// placeholder does).
const PLACEHOLDER: &str = "\u{2}code\u{3}";

/// Whether `line` starts a quote (up to three spaces, then `>`).
fn is_quote_line(line: &str) -> bool {
    let trimmed = line.trim_start_matches(' ');
    line.len() - trimmed.len() <= 3 && trimmed.starts_with('>')
}

/// A quote line with nothing after its `>`.
fn is_empty_quote_line(line: &str) -> bool {
    is_quote_line(line) && line.trim_start_matches(' ')[1..].trim().is_empty()
}

/// Adds the mentions of one block (lines between blank lines) to `found`.
fn scan_block(block: &[(String, bool)], targets: &LinkTargets, found: &mut Mentioned) {
    // BlockQuoteProcessor: the first quote line not followed by only empty quote
    // lines starts a quote that runs to the block's end.
    let quote_from = (0..block.len()).find(|&i| is_quote_line(&block[i].0) && !block[i..].iter().all(|(l, _)| is_empty_quote_line(l))).unwrap_or(block.len());
    let text: Vec<&str> = block.iter().map(|(l, _)| l.as_str()).collect();
    let text = text.join("\n");
    let mut line_starts = Vec::with_capacity(block.len());
    let mut at = 0;
    for (line, _) in block {
        line_starts.push(at);
        at += line.len() + 1;
    }
    let silent_at = |pos: usize| {
        let line = line_starts.partition_point(|s| *s <= pos) - 1;
        line >= quote_from || block[line].1
    };
    let code = code_spans(&text);
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(skip) = memchr::memchr(b'@', &bytes[i..]) {
        i += skip;
        let Some((end, name, marked_silent)) = mention_at(&text, i) else {
            i += 1;
            continue;
        };
        if !code.iter().any(|(s, e)| *s <= i && i < *e) {
            let silent = marked_silent || silent_at(i);
            if WILDCARDS.contains(&name) {
                found.wildcard |= !silent;
            } else if let Some((id, active)) = targets.user(name) {
                if !silent && active {
                    found.add_user(id);
                }
            }
        }
        i = end;
    }
}

/// A mention token at byte `at` (an `@`): its end, its name and whether it is
/// written silent (`@_**name**`).
fn mention_at(text: &str, at: usize) -> Option<(usize, &str, bool)> {
    let before_ok = text[..at].chars().next_back().is_none_or(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '(' | '{' | '[' | '/' | '<'));
    if !before_ok {
        return None;
    }
    let rest = &text[at + 1..];
    let (rest, silent) = match rest.strip_prefix('_') {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let body = rest.strip_prefix("**")?;
    let close = body.find('*')?;
    if close == 0 || !body[close..].starts_with("**") {
        return None;
    }
    let end = text.len() - body.len() + close + 2;
    Some((end, &body[..close], silent))
}

/// Byte ranges of inline code: a run of backticks to the next run of the same
/// length (Python-Markdown's backtick pattern, which crosses lines).
fn code_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while let Some(skip) = memchr::memchr(b'`', &bytes[i..]) {
        let start = i + skip;
        let run = bytes[start..].iter().take_while(|b| **b == b'`').count();
        let mut j = start + run;
        let mut close = None;
        while let Some(skip) = memchr::memchr(b'`', &bytes[j..]) {
            let s = j + skip;
            let len = bytes[s..].iter().take_while(|b| **b == b'`').count();
            if len == run && s > start + run {
                close = Some(s + len);
                break;
            }
            j = s + len;
        }
        match close {
            Some(end) => {
                spans.push((start, end));
                i = end;
            }
            None => i = start + run,
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> LinkTargets {
        let mut t = LinkTargets::default();
        t.add_user("Ann Lee", 3, true);
        t.add_user("Bob", 4, true);
        t.add_user("Old Timer", 5, false);
        t
    }

    fn users(content: &str) -> (Vec<u64>, bool) {
        let m = server_rendered(content, &targets());
        (m.users, m.wildcard)
    }

    #[test]
    fn plain_mentions_flag_their_users() {
        assert_eq!(users("hi @**Ann Lee** and @**bob**"), (vec![3, 4], false));
        assert_eq!(users("@**all** look"), (vec![], true));
        assert_eq!(users("(@**Bob**) [@**Ann Lee**]"), (vec![3, 4], false));
    }

    #[test]
    fn what_the_server_shows_silent_or_not_at_all_flags_nobody() {
        // Silent: a deactivated user, the silent syntax, a quote (also a wildcard).
        assert_eq!(users("@**Old Timer** @_**Bob**"), (vec![], false));
        assert_eq!(users("> @**Bob** and @**all**"), (vec![], false));
        // No mention: an unknown name, a plain-text name, a character before the
        // `@` that the look-behind refuses, inline and fenced code, indented code.
        assert_eq!(users("@**Nobody** @Ann Lee x@**Bob** ,@**Bob** .@**Bob**"), (vec![], false));
        assert_eq!(users("see `@**Bob**` and ``a ` @**Ann Lee**``"), (vec![], false));
        assert_eq!(users("```\n@**Bob**\n```\n~~~ python\n@**Ann Lee**\n~~~"), (vec![], false));
        assert_eq!(users("    @**Bob** in code\n\n@**Ann Lee**"), (vec![3], false));
        assert_eq!(users("```math\n@**Bob**\n```"), (vec![], false));
    }

    #[test]
    fn quotes_run_to_the_end_of_their_block() {
        assert_eq!(users("@**Ann Lee** said\n> something\n@**Bob** lazily quoted\n\n@**Bob** again"), (vec![3, 4], false));
        assert_eq!(users("@**Bob**\n> something\n@**Ann Lee**"), (vec![4], false));
        // A block whose quote lines are all empty holds no quote.
        assert_eq!(users("@**Bob**\n>\n>"), (vec![4], false));
        // Four spaces before `>` is no quote.
        assert_eq!(users("x\n    > @**Bob**"), (vec![4], false));
        assert_eq!(users("```quote\n@**Bob**\n```\n@**Ann Lee**"), (vec![3], false));
        assert_eq!(users("```spoiler Title\n@**Bob**\n```"), (vec![4], false));
    }

    /// Each case: whether "Other User" (active) is mentioned and whether the
    /// wildcard flag is set, as the real Zulip 10.0 and 9.0-dev servers'
    /// `markdown_convert` gave them (`mentions_user_ids`, `mentions_stream_wildcard`;
    /// the two agreed on every case), in realms where "Other User" is active and
    /// "Gone Person" deactivated.
    #[test]
    fn what_zulip_9_and_10_render() {
        let mut t = LinkTargets::default();
        t.add_user("Other User", 7, true);
        t.add_user("Gone Person", 8, false);
        let cases: &[(&str, bool, bool)] = &[
            ("hi @**Other User**", true, false),
            ("> @**Other User**", false, false),
            ("x\n> q\n@**Other User**", false, false),
            ("@**Other User**\n> q", true, false),
            ("```\n@**Other User**\n```", false, false),
            ("```quote\n@**Other User**\n```", false, false),
            ("```spoiler T\n@**Other User**\n```", true, false),
            ("```math\n@**Other User**\n```", false, false),
            ("    @**Other User**", false, false),
            ("see `@**Other User**` x", false, false),
            ("``a ` @**Other User**``", false, false),
            ("hey,@**Other User**", false, false),
            (".@**Other User**", false, false),
            ("(@**Other User**)", true, false),
            ("[@**Other User**]", true, false),
            ("/@**Other User**", true, false),
            ("_@**Other User**_", false, false),
            ("*@**Other User***", false, false),
            ("**@**Other User****", false, false),
            ("@**Gone Person**", false, false),
            ("@_**Other User**", false, false),
            ("@**all** x", false, true),
            ("> @**all**", false, false),
            ("@**everyone**", false, true),
            ("@**channel**", false, true),
            ("@**stream**", false, true),
            ("@**topic**", false, false),
            ("a\n\n    @**Other User**\n\n@**Other User**", true, false),
            ("````\n```\n@**Other User**\n````", false, false),
            ("```\n@**Other User**", false, false),
            ("``` a `b`\n@**Other User**", true, false),
            ("# @**Other User**", true, false),
            ("- @**Other User**", true, false),
            ("1. @**Other User**", true, false),
            ("x\n>\n>\n@**Other User**", false, false),
            ("   > @**Other User**", false, false),
            ("    > @**Other User**", false, false),
            ("@**Other User**\t", true, false),
            ("\t@**Other User**", false, false),
            ("text\n    @**Other User**", true, false),
            ("~~~\n@**Other User**\n~~~", false, false),
            ("~~~~\n~~~\n@**Other User**\n~~~~", false, false),
            ("@**Other User**@**Other User**", true, false),
            ("`x`@**Other User**", false, false),
            ("a `b\nc` @**Other User**", true, false),
            ("a `b\n\nc` @**Other User**", true, false),
            ("<@**Other User**>", true, false),
            ("'@**Other User**'", true, false),
            ("\"@**Other User**\"", true, false),
            ("{@**Other User**}", true, false),
            ("@**Other User**\n\n> @**Gone Person**\n> x", true, false),
            ("- a\n\n    @**Other User**", true, false),
        ];
        for (content, user, wildcard) in cases {
            let m = server_rendered(content, &t);
            assert_eq!((m.users == [7], m.wildcard), (*user, *wildcard), "{content:?}");
        }
    }

    #[test]
    fn fences_need_their_own_closing_line() {
        // A longer or different fence does not close; an unclosed block runs to the end.
        assert_eq!(users("````\n```\n@**Bob**\n````\n@**Ann Lee**"), (vec![3], false));
        assert_eq!(users("```\n@**Bob**"), (vec![], false));
        // Not a fence: backticks in the header.
        assert_eq!(users("``` a `b`\n@**Bob**"), (vec![4], false));
    }
}

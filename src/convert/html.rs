//! Markdown from the HTML integrations send, exactly as `htmd` gives it, without
//! building a DOM.
//!
//! Why: `htmd` parses each body with html5ever into a reference-counted DOM and
//! builds its table of element handlers on every call; for a notification of a
//! hundred bytes that was about 35 µs, 25 times the cost of a user message in the
//! write pass (issue 23). Integrations send a small kind of HTML: inline tags,
//! links, line breaks, paragraphs, lists, images, entities. For that kind this
//! module builds the tree html5ever would build (a tokenizer and a tree builder
//! that take only input on which the HTML parsing rules reduce to plain nesting)
//! and renders it with `htmd`'s rules for those elements.
//!
//! [`markdown`] gives `None` for anything else, and the caller asks `htmd`: a tag
//! outside the list below, an end tag that does not close the element opened last
//! (html5ever's adoption agency would reshape the tree) but for the paragraphs
//! and items a block's end closes, a paragraph or an item that HTML closes
//! anywhere but where it is the element opened last, a comment, doctype or
//! processing instruction, a character reference outside
//! [`named_reference`]'s table or without its `;`, a `<` that starts a tag that
//! does not end, a carriage return or NUL, nesting deeper than [`MAX_DEPTH`].
//! A proptest holds the output to `htmd`'s on generated HTML (every element
//! taken and many that are not, attributes, entities, whitespace runs, unicode,
//! malformed tags); the bench shape's notifications are all checked against it
//! too.
//!
//! Elements taken: `a b strong i em u s strike big small tt font code span sub
//! sup abbr cite kbd ins del mark q var samp br img hr p div center section
//! article aside header footer nav main address ul ol li blockquote h1`–`h6`.

use std::borrow::Cow;

/// Elements nested deeper than this are left to `htmd`.
const MAX_DEPTH: usize = 48;

/// `html` (a notification body) as `htmd::convert` gives it, trimmed; `None` when
/// it is outside the subset this module reproduces.
pub fn markdown(html: &str) -> Option<String> {
    let mut tree = Builder::parse(html)?;
    tree.pool = BUFFERS.with(|b| std::mem::take(&mut *b.borrow_mut()));
    let mut out = String::with_capacity(html.len());
    tree.walk_children(BODY, &mut out, true, false);
    tree.pool.retain(|b| b.capacity() <= 16 * 1024);
    BUFFERS.with(|b| *b.borrow_mut() = std::mem::take(&mut tree.pool));
    out.truncate(out.trim_end().len());
    out.drain(..out.len() - out.trim_start().len());
    Some(out)
}

thread_local! {
    /// The conversion's spare buffers, kept from one body to the next: their
    /// growing was most of the allocations left (callgrind).
    static BUFFERS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The body element's index in the tree (html5ever wraps every fragment in
/// `html`, `head` and `body`; the first two add only newlines, which the final
/// trim removes).
const BODY: u32 = 0;

/// No node: the end of a list of children.
const NONE: u32 = u32::MAX;

/// What an element is to the HTML parser and to `htmd`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// `a`: a formatting element that may not nest.
    Anchor,
    /// `b strong i em code u s strike big small tt font`: formatting elements.
    Formatting,
    /// `span sub sup abbr …`: ordinary inline elements.
    Inline,
    /// `br img`: void, inline.
    Void,
    /// `hr`: void, closes a paragraph.
    Rule,
    /// `p div ul ol blockquote …`: close an open paragraph first.
    Block,
    /// `li`: closes a paragraph, and an open item (which is left to htmd).
    Item,
    /// `h1`–`h6`.
    Heading,
}

/// The elements taken, by lowercase name.
fn kind_of(name: &str) -> Option<(&'static str, Kind)> {
    use Kind::*;
    Some(match name {
        "a" => ("a", Anchor),
        "b" => ("b", Formatting),
        "strong" => ("strong", Formatting),
        "i" => ("i", Formatting),
        "em" => ("em", Formatting),
        "code" => ("code", Formatting),
        "u" => ("u", Formatting),
        "s" => ("s", Formatting),
        "strike" => ("strike", Formatting),
        "big" => ("big", Formatting),
        "small" => ("small", Formatting),
        "tt" => ("tt", Formatting),
        "font" => ("font", Formatting),
        "span" => ("span", Inline),
        "sub" => ("sub", Inline),
        "sup" => ("sup", Inline),
        "abbr" => ("abbr", Inline),
        "cite" => ("cite", Inline),
        "kbd" => ("kbd", Inline),
        "ins" => ("ins", Inline),
        "del" => ("del", Inline),
        "mark" => ("mark", Inline),
        "q" => ("q", Inline),
        "var" => ("var", Inline),
        "samp" => ("samp", Inline),
        "br" => ("br", Void),
        "img" => ("img", Void),
        "hr" => ("hr", Rule),
        "p" => ("p", Block),
        "div" => ("div", Block),
        "center" => ("center", Block),
        "section" => ("section", Block),
        "article" => ("article", Block),
        "aside" => ("aside", Block),
        "header" => ("header", Block),
        "footer" => ("footer", Block),
        "nav" => ("nav", Block),
        "main" => ("main", Block),
        "address" => ("address", Block),
        "ul" => ("ul", Block),
        "ol" => ("ol", Block),
        "blockquote" => ("blockquote", Block),
        "li" => ("li", Item),
        "h1" => ("h1", Heading),
        "h2" => ("h2", Heading),
        "h3" => ("h3", Heading),
        "h4" => ("h4", Heading),
        "h5" => ("h5", Heading),
        "h6" => ("h6", Heading),
        _ => return None,
    })
}

/// Whether `htmd` counts the element as a block (its `BLOCK_ELEMENTS`, for the
/// elements taken here).
fn is_block(tag: &str) -> bool {
    matches!(
        tag,
        "p" | "div" | "center" | "section" | "article" | "aside" | "header" | "footer" | "nav" | "main" | "address" | "ul" | "ol" | "li" | "blockquote" | "hr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
    )
}

/// Whether the HTML parser counts the element as "special" (it stops the search
/// for an open `li` when a new one starts), for the elements taken here.
fn is_special(tag: &str) -> bool {
    is_block(tag) || matches!(tag, "br" | "img" | "body")
}

/// One node of the tree: text, or an element and its children (a linked list:
/// no allocation per node).
struct Node<'a> {
    /// The element's name (`"body"` for the root), or `None` for text.
    tag: Option<&'static str>,
    /// The text of a text node (references decoded), borrowed from the body
    /// where it has none.
    text: Cow<'a, str>,
    /// The element's attributes: `Tree::attrs[attrs.0..attrs.1]`.
    attrs: (u32, u32),
    first: u32,
    last: u32,
    next: u32,
    parent: u32,
}

impl<'a> Node<'a> {
    fn new(tag: Option<&'static str>, text: Cow<'a, str>, attrs: (u32, u32), parent: u32) -> Node<'a> {
        Node { tag, text, attrs, first: NONE, last: NONE, next: NONE, parent }
    }
}

/// The tree of one body, and the buffers its conversion reuses.
struct Tree<'a> {
    nodes: Vec<Node<'a>>,
    /// Attributes in source order, names lowercased, the repeats of a name dropped.
    attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Spare buffers for converted pieces.
    pool: Vec<String>,
}

/// The tokenizer and tree builder for the subset.
struct Builder<'a> {
    html: &'a str,
    pos: usize,
    tree: Tree<'a>,
    /// Open elements, the body first.
    open: Vec<u32>,
    /// Text read since the last tag, references decoded.
    pending: Cow<'a, str>,
    /// Whether anything but leading whitespace was read (html5ever drops the
    /// whitespace before the first tag or character).
    started: bool,
}

/// Document whitespace for the HTML parser (tab, line feed, form feed, carriage
/// return, space).
fn is_html_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
}

impl<'a> Builder<'a> {
    fn parse(html: &'a str) -> Option<Tree<'a>> {
        // A carriage return is rewritten, a NUL and a leading byte order mark
        // dropped by the parser: left to htmd.
        if html.starts_with('\u{FEFF}') || memchr::memchr2(b'\r', 0, html.as_bytes()).is_some() {
            return None;
        }
        let body = Node::new(Some("body"), Cow::Borrowed(""), (0, 0), BODY);
        let mut nodes = Vec::with_capacity(html.len() / 16 + 4);
        nodes.push(body);
        let tree = Tree { nodes, attrs: Vec::new(), pool: Vec::new() };
        let mut b = Builder { html, pos: 0, tree, open: vec![BODY], pending: Cow::Borrowed(""), started: false };
        let bytes = html.as_bytes();
        while b.pos < bytes.len() {
            let Some(at) = memchr::memchr2(b'<', b'&', &bytes[b.pos..]) else {
                b.push_pending(&html[b.pos..]);
                break;
            };
            b.push_pending(&html[b.pos..b.pos + at]);
            b.pos += at;
            if bytes[b.pos] == b'&' {
                b.reference()?;
            } else {
                b.tag()?;
            }
        }
        b.flush_text();
        Some(b.tree)
    }

    /// Adds `text` to the pending text (borrowed while it is one piece).
    fn push_pending(&mut self, text: &'a str) {
        if self.pending.is_empty() {
            self.pending = Cow::Borrowed(text);
        } else if !text.is_empty() {
            self.pending.to_mut().push_str(text);
        }
    }

    /// A character reference at `pos` (which holds `&`), decoded into the pending text.
    fn reference(&mut self) -> Option<()> {
        let (c, len) = reference_at(&self.html[self.pos..])?;
        self.pending.to_mut().push(c.unwrap_or('&'));
        self.pos += len;
        Some(())
    }

    /// A tag at `pos` (which holds `<`), or a `<` that is text.
    fn tag(&mut self) -> Option<()> {
        match self.html.as_bytes().get(self.pos + 1) {
            Some(c) if c.is_ascii_alphabetic() => self.start_tag(),
            Some(b'/') => self.end_tag(),
            // `<!`, `<?` open comments and declarations.
            Some(b'!' | b'?') => None,
            // A `<` before anything else, or at the end, is text.
            _ => {
                self.push_pending(&self.html[self.pos..self.pos + 1]);
                self.pos += 1;
                Some(())
            }
        }
    }

    /// The element named at `from` (ASCII letters and digits, any case) and where
    /// its name ends; `None` unless it is one taken and a space, `/` or `>` follows.
    fn element_at(&self, from: usize) -> Option<(&'static str, Kind, usize)> {
        let bytes = self.html.as_bytes();
        let len = bytes[from..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
        let end = from + len;
        if !bytes.get(end).is_some_and(|c| is_html_space(*c) || *c == b'/' || *c == b'>') {
            return None;
        }
        let mut lower = [0u8; 10];
        let name = lower.get_mut(..len)?;
        name.copy_from_slice(&bytes[from..end]);
        name.make_ascii_lowercase();
        let (tag, kind) = kind_of(std::str::from_utf8(name).ok()?)?;
        Some((tag, kind, end))
    }

    fn start_tag(&mut self) -> Option<()> {
        let (tag, kind, mut at) = self.element_at(self.pos + 1)?;
        let bytes = self.html.as_bytes();
        let first_attr = self.tree.attrs.len();
        let self_closing;
        loop {
            while bytes.get(at).is_some_and(|c| is_html_space(*c)) {
                at += 1;
            }
            match bytes.get(at)? {
                b'>' => {
                    self_closing = false;
                    at += 1;
                    break;
                }
                b'/' => {
                    // Only `/>` closes; `/` elsewhere is left to htmd.
                    if bytes.get(at + 1) != Some(&b'>') {
                        return None;
                    }
                    self_closing = true;
                    at += 2;
                    break;
                }
                _ => {
                    let (name, value, end) = self.attribute(at)?;
                    at = end;
                    if !self.tree.attrs[first_attr..].iter().any(|(n, _)| *n == name) {
                        self.tree.attrs.push((name, value));
                    }
                }
            }
        }
        if self_closing && !matches!(kind, Kind::Void | Kind::Rule) {
            return None;
        }
        self.pos = at;
        self.open_element(tag, kind, (first_attr as u32, self.tree.attrs.len() as u32))
    }

    /// An attribute at `at`: its name and value, and where it ends. Only names
    /// of letters, digits and `-_:.`, and values quoted or plain (no quotes,
    /// `<`, `=` or backquote in them), after a space or at the tag's end.
    fn attribute(&self, at: usize) -> Option<(Cow<'a, str>, Cow<'a, str>, usize)> {
        let html = self.html;
        let bytes = html.as_bytes();
        let is_name = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b':' | b'.');
        let len = bytes[at..].iter().take_while(|c| is_name(**c)).count();
        if len == 0 || !bytes[at].is_ascii_alphabetic() {
            return None;
        }
        let raw_name = &html[at..at + len];
        let name = if raw_name.bytes().any(|c| c.is_ascii_uppercase()) { Cow::Owned(raw_name.to_ascii_lowercase()) } else { Cow::Borrowed(raw_name) };
        let mut i = at + len;
        while bytes.get(i).is_some_and(|c| is_html_space(*c)) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            // No value: the next attribute or the tag's end must follow a space.
            return match bytes.get(i)? {
                b'>' | b'/' => Some((name, Cow::Borrowed(""), i)),
                _ if i > at + len => Some((name, Cow::Borrowed(""), i)),
                _ => None,
            };
        }
        i += 1;
        while bytes.get(i).is_some_and(|c| is_html_space(*c)) {
            i += 1;
        }
        let (raw, end) = match bytes.get(i)? {
            q @ (b'"' | b'\'') => {
                let close = memchr::memchr(*q, &bytes[i + 1..])? + i + 1;
                (&html[i + 1..close], close + 1)
            }
            b'>' => return None,
            _ => {
                let len = bytes[i..].iter().take_while(|c| !is_html_space(**c) && **c != b'>').count();
                let raw = &html[i..i + len];
                if raw.bytes().any(|c| matches!(c, b'"' | b'\'' | b'<' | b'=' | b'`')) {
                    return None;
                }
                (raw, i + len)
            }
        };
        // After a quoted value, a space or the tag's end.
        if !matches!(bytes.get(end), Some(c) if is_html_space(*c) || *c == b'>' || *c == b'/') {
            return None;
        }
        let value = if raw.contains('&') { Cow::Owned(decode(raw)?) } else { Cow::Borrowed(raw) };
        Some((name, value, end))
    }

    fn end_tag(&mut self) -> Option<()> {
        let (tag, kind, at) = self.element_at(self.pos + 2)?;
        if self.html.as_bytes().get(at) != Some(&b'>') {
            return None;
        }
        // A block, an item or a heading first closes the paragraphs and items
        // left open inside it (HTML's implied end tags); any other element must be
        // the one opened last.
        let implied: &[&str] = match kind {
            _ if tag == "p" => &[],
            Kind::Item => &["p"],
            Kind::Block | Kind::Heading => &["li", "p"],
            _ => &[],
        };
        while implied.contains(&self.top_tag()) {
            self.close_top();
        }
        if self.top_tag() != tag || self.open.len() == 1 {
            return None;
        }
        self.close_top();
        self.pos = at + 1;
        Some(())
    }

    /// The name of the element opened last (`"body"` at the start).
    fn top_tag(&self) -> &'static str {
        self.open.last().and_then(|i| self.tree.nodes[*i as usize].tag).unwrap_or("body")
    }

    /// Closes the element opened last, its text first.
    fn close_top(&mut self) {
        self.flush_text();
        self.open.pop();
    }

    /// Whether an element named `tag` is open.
    fn is_open(&self, tag: &str) -> bool {
        self.open.iter().any(|i| self.tree.nodes[*i as usize].tag == Some(tag))
    }

    /// Opens (or, for void elements, adds) an element, when the HTML parser would
    /// just nest it.
    fn open_element(&mut self, tag: &'static str, kind: Kind, attrs: (u32, u32)) -> Option<()> {
        // Inline code holds text only (htmd treats what is inside as preformatted).
        if self.top_tag() == "code" || self.open.len() > MAX_DEPTH {
            return None;
        }
        // htmd numbers from an `ol`'s `start`, and writes a math span as TeX.
        let attr = |name: &str| self.tree.attrs[attrs.0 as usize..attrs.1 as usize].iter().find(|(n, _)| n == name).map(|(_, v)| v.as_ref());
        if (tag == "ol" && attr("start").is_some()) || (tag == "span" && attr("class").is_some_and(|c| c.starts_with("math"))) {
            return None;
        }
        match kind {
            Kind::Anchor if self.is_open("a") => return None,
            Kind::Item => {
                // An open `li` above the nearest special element is closed first:
                // taken only where it is the element opened last.
                for (depth, i) in self.open.iter().rev().enumerate() {
                    let t = self.tree.nodes[*i as usize].tag.unwrap_or("");
                    if t == "li" {
                        if depth > 0 {
                            return None;
                        }
                        self.close_top();
                        break;
                    }
                    if is_special(t) && !matches!(t, "address" | "div" | "p") {
                        break;
                    }
                }
            }
            _ => {}
        }
        // So is an open paragraph, before a block, an item, a rule or a heading.
        if matches!(kind, Kind::Rule | Kind::Block | Kind::Item | Kind::Heading) && self.is_open("p") {
            if self.top_tag() != "p" {
                return None;
            }
            self.close_top();
        }
        // A heading in a heading is closed.
        if kind == Kind::Heading && kind_of(self.top_tag()).is_some_and(|(_, k)| k == Kind::Heading) {
            return None;
        }
        self.flush_text();
        let top = *self.open.last()?;
        let id = self.tree.append(top, Node::new(Some(tag), Cow::Borrowed(""), attrs, top));
        self.started = true;
        if !matches!(kind, Kind::Void | Kind::Rule) {
            self.open.push(id);
        }
        Some(())
    }

    /// Puts the pending text into the open element (joined to a text node just
    /// before it, as the DOM does).
    fn flush_text(&mut self) {
        if !self.started {
            let skip = self.pending.len() - self.pending.trim_start_matches(|c: char| c.is_ascii() && is_html_space(c as u8)).len();
            match &mut self.pending {
                Cow::Borrowed(text) => *text = &text[skip..],
                Cow::Owned(text) => drop(text.drain(..skip)),
            }
            self.started = !self.pending.is_empty();
        }
        if self.pending.is_empty() {
            return;
        }
        let parent = *self.open.last().expect("the body stays open");
        let last = self.tree.nodes[parent as usize].last;
        let text = std::mem::replace(&mut self.pending, Cow::Borrowed(""));
        if last != NONE && self.tree.nodes[last as usize].tag.is_none() {
            self.tree.nodes[last as usize].text.to_mut().push_str(&text);
            return;
        }
        self.tree.append(parent, Node::new(None, text, (0, 0), parent));
    }
}

/// `raw` with its character references decoded (an attribute value); `None` for
/// a reference outside the subset.
fn decode(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let (c, len) = reference_at(&rest[amp..])?;
        out.push(c.unwrap_or('&'));
        rest = &rest[amp + len..];
    }
    out.push_str(rest);
    Some(out)
}

/// The character reference at the start of `s` (which starts with `&`): the
/// character and the bytes it takes, `(None, 1)` for an `&` that starts none,
/// or `None` (left to htmd) for one outside the subset: a name not in the table
/// or without its `;`, a number without `;`, or one the parser replaces (zero,
/// controls, surrogates, past U+10FFFF).
fn reference_at(s: &str) -> Option<(Option<char>, usize)> {
    let bytes = s.as_bytes();
    match bytes.get(1) {
        Some(b'#') => {
            let (hex, digits_from) = match bytes.get(2) {
                Some(b'x' | b'X') => (true, 3),
                _ => (false, 2),
            };
            let len = bytes[digits_from..].iter().take_while(|c| if hex { c.is_ascii_hexdigit() } else { c.is_ascii_digit() }).count();
            if len == 0 || len > 8 || bytes.get(digits_from + len) != Some(&b';') {
                return None;
            }
            let value = u32::from_str_radix(&s[digits_from..digits_from + len], if hex { 16 } else { 10 }).ok()?;
            let c = char::from_u32(value)?;
            let replaced = value == 0 || (value < 0x20 && !matches!(value, 0x09 | 0x0A)) || (0x7F..=0x9F).contains(&value);
            if replaced {
                return None;
            }
            Some((Some(c), digits_from + len + 1))
        }
        Some(c) if c.is_ascii_alphanumeric() => {
            let len = bytes[1..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
            if bytes.get(1 + len) != Some(&b';') {
                return None;
            }
            Some((Some(named_reference(&s[1..1 + len])?), len + 2))
        }
        _ => Some((None, 1)),
    }
}

/// The named references taken, with HTML's values; any other name is left to htmd.
const NAMED: [(&str, char); 76] = [
    ("amp", '&'),
    ("AMP", '&'),
    ("lt", '<'),
    ("LT", '<'),
    ("gt", '>'),
    ("GT", '>'),
    ("quot", '"'),
    ("QUOT", '"'),
    ("apos", '\''),
    ("nbsp", '\u{A0}'),
    ("ensp", '\u{2002}'),
    ("emsp", '\u{2003}'),
    ("thinsp", '\u{2009}'),
    ("ndash", '\u{2013}'),
    ("mdash", '\u{2014}'),
    ("lsquo", '\u{2018}'),
    ("rsquo", '\u{2019}'),
    ("sbquo", '\u{201A}'),
    ("ldquo", '\u{201C}'),
    ("rdquo", '\u{201D}'),
    ("bdquo", '\u{201E}'),
    ("laquo", '\u{AB}'),
    ("raquo", '\u{BB}'),
    ("lsaquo", '\u{2039}'),
    ("rsaquo", '\u{203A}'),
    ("hellip", '\u{2026}'),
    ("bull", '\u{2022}'),
    ("middot", '\u{B7}'),
    ("larr", '\u{2190}'),
    ("uarr", '\u{2191}'),
    ("rarr", '\u{2192}'),
    ("darr", '\u{2193}'),
    ("harr", '\u{2194}'),
    ("lArr", '\u{21D0}'),
    ("rArr", '\u{21D2}'),
    ("copy", '\u{A9}'),
    ("COPY", '\u{A9}'),
    ("reg", '\u{AE}'),
    ("REG", '\u{AE}'),
    ("trade", '\u{2122}'),
    ("TRADE", '\u{2122}'),
    ("deg", '\u{B0}'),
    ("plusmn", '\u{B1}'),
    ("times", '\u{D7}'),
    ("divide", '\u{F7}'),
    ("euro", '\u{20AC}'),
    ("pound", '\u{A3}'),
    ("yen", '\u{A5}'),
    ("cent", '\u{A2}'),
    ("sect", '\u{A7}'),
    ("para", '\u{B6}'),
    ("dagger", '\u{2020}'),
    ("Dagger", '\u{2021}'),
    ("permil", '\u{2030}'),
    ("prime", '\u{2032}'),
    ("check", '\u{2713}'),
    ("checkmark", '\u{2713}'),
    ("cross", '\u{2717}'),
    ("star", '\u{2606}'),
    ("starf", '\u{2605}'),
    ("hearts", '\u{2665}'),
    ("frac12", '\u{BD}'),
    ("frac14", '\u{BC}'),
    ("frac34", '\u{BE}'),
    ("sup2", '\u{B2}'),
    ("micro", '\u{B5}'),
    ("iexcl", '\u{A1}'),
    ("iquest", '\u{BF}'),
    ("eacute", '\u{E9}'),
    ("egrave", '\u{E8}'),
    ("agrave", '\u{E0}'),
    ("ccedil", '\u{E7}'),
    ("uuml", '\u{FC}'),
    ("ouml", '\u{F6}'),
    ("auml", '\u{E4}'),
    ("szlig", '\u{DF}'),
];

/// The character the named reference `name` (without `&` and `;`) stands for.
fn named_reference(name: &str) -> Option<char> {
    NAMED.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// `htmd`'s document whitespace (tab, line feed, carriage return, space).
fn is_doc_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' ')
}

/// How many `c` start `s`.
fn leading(s: &str, c: char) -> usize {
    s.len() - s.trim_start_matches(c).len()
}

/// Appends an element's converted content the way `htmd` does: at most two line
/// breaks where they meet, and one space where two meet between inline elements.
fn append_normalized(out: &mut String, content: &str) {
    if out.is_empty() {
        out.push_str(content);
        return;
    }
    let out_newlines = out.len() - out.trim_end_matches('\n').len();
    let content_newlines = leading(content, '\n');
    let mut content = content;
    let total = out_newlines + content_newlines;
    if total > 2 {
        content = &content[(total - 2).min(content_newlines)..];
    }
    if out_newlines == 0 && content_newlines == 0 && out.ends_with(' ') && content.starts_with(' ') {
        content = &content[1..];
    }
    out.push_str(content);
}

impl<'a> Tree<'a> {
    /// Adds `node` as the last child of `parent`; its index.
    fn append(&mut self, parent: u32, node: Node<'a>) -> u32 {
        let id = self.nodes.len() as u32;
        self.nodes.push(node);
        match self.nodes[parent as usize].last {
            NONE => self.nodes[parent as usize].first = id,
            last => self.nodes[last as usize].next = id,
        }
        self.nodes[parent as usize].last = id;
        id
    }

    fn node(&self, id: u32) -> &Node<'a> {
        &self.nodes[id as usize]
    }

    fn node_mut(&mut self, id: u32) -> &mut Node<'a> {
        &mut self.nodes[id as usize]
    }

    fn tag(&self, id: u32) -> Option<&'static str> {
        self.node(id).tag
    }

    fn attrs(&self, id: u32) -> &[(Cow<'a, str>, Cow<'a, str>)] {
        let (from, to) = self.node(id).attrs;
        &self.attrs[from as usize..to as usize]
    }

    /// An empty buffer, reused when one is spare.
    fn buffer(&mut self) -> String {
        self.pool.pop().unwrap_or_default()
    }

    /// Gives a buffer back for reuse.
    fn recycle(&mut self, mut buffer: String) {
        buffer.clear();
        self.pool.push(buffer);
    }

    /// `htmd`'s joining of like neighbours before it walks children: two inline
    /// elements of one name (or `b`/`strong`, `i`/`em`) with the same attributes,
    /// each holding only text, become one (links excepted).
    fn combine_children(&mut self, node: u32) {
        let mut a = self.node(node).first;
        while a != NONE {
            let b = self.node(a).next;
            if b == NONE {
                break;
            }
            if !self.can_combine(a, b) {
                a = b;
                continue;
            }
            let (into, from) = (self.node(a).first, self.node(b).first);
            let moved = std::mem::take(&mut self.node_mut(from).text);
            self.node_mut(into).text.to_mut().push_str(&moved);
            self.node_mut(a).next = self.node(b).next;
            if self.node(node).last == b {
                self.node_mut(node).last = a;
            }
        }
    }

    fn can_combine(&self, a: u32, b: u32) -> bool {
        let (Some(ta), Some(tb)) = (self.tag(a), self.tag(b)) else { return false };
        let only_text = |n: u32| {
            let first = self.node(n).first;
            first != NONE && first == self.node(n).last && self.tag(first).is_none()
        };
        let alike = ta == tb || matches!((ta, tb), ("i", "em") | ("em", "i") | ("b", "strong") | ("strong", "b"));
        !is_block(ta) && ta != "a" && alike && only_text(a) && only_text(b) && self.attrs(a) == self.attrs(b)
    }

    /// `htmd`'s walk over the children of `node` into `out`.
    fn walk_children(&mut self, node: u32, out: &mut String, parent_is_block: bool, pre: bool) {
        self.combine_children(node);
        let mut trim_leading = !pre && parent_is_block;
        let mut child = self.node(node).first;
        while child != NONE {
            let next = self.node(child).next;
            let block = self.tag(child).is_some_and(is_block);
            if block {
                out.truncate(out.trim_end_matches(' ').len());
            }
            let before = out.len();
            self.walk_node(child, out, trim_leading, pre);
            if out.len() > before {
                trim_leading = block;
            }
            child = next;
        }
    }

    /// The content of `node`'s children on its own, as `htmd`'s handlers ask for
    /// it (in a buffer to recycle).
    fn content(&mut self, node: u32) -> String {
        let tag = self.tag(node).unwrap_or("");
        let mut out = self.buffer();
        self.walk_children(node, &mut out, is_block(tag), tag == "code");
        out
    }

    fn walk_node(&mut self, node: u32, out: &mut String, trim_leading: bool, pre: bool) {
        let Some(tag) = self.tag(node) else {
            let text = std::mem::take(&mut self.node_mut(node).text);
            self.push_text(out, &text, trim_leading, pre);
            return;
        };
        let mut converted = self.buffer();
        match tag {
            "span" => {
                self.walk_children(node, &mut converted, false, pre);
                append_normalized(out, converted.trim_matches('\n'));
            }
            "u" | "s" | "strike" | "big" | "small" | "tt" | "font" | "sub" | "sup" | "abbr" | "cite" | "kbd" | "ins" | "del" | "mark" | "q" | "var" | "samp" => {
                self.walk_children(node, &mut converted, false, pre);
                append_normalized(out, &converted);
            }
            _ => {
                if self.handle(node, tag, &mut converted) {
                    append_normalized(out, &converted);
                }
            }
        }
        self.recycle(converted);
    }

    /// `htmd`'s element handlers for the elements taken: writes the element into
    /// `out` (empty), or returns false for none.
    fn handle(&mut self, node: u32, tag: &str, out: &mut String) -> bool {
        match tag {
            "a" => self.anchor(node, out),
            "b" | "strong" => return self.emphasis(node, "**", out),
            "i" | "em" => return self.emphasis(node, "*", out),
            "code" => self.inline_code(node, out),
            "br" => out.push_str("  \n"),
            "hr" => out.push_str("\n\n* * *\n\n"),
            "img" => return self.image(node, out),
            "ul" | "ol" => return self.list(node, tag, out),
            "li" => self.list_item(node, out),
            "blockquote" => {
                let content = self.content(node);
                out.push_str("\n\n");
                for (i, line) in content.trim_start_matches('\n').trim_end_matches(is_doc_space).lines().enumerate() {
                    if i > 0 {
                        out.push('\n');
                    }
                    out.push_str("> ");
                    out.push_str(line);
                }
                out.push_str("\n\n");
                self.recycle(content);
            }
            h if h.len() == 2 && h.starts_with('h') => {
                let content = self.content(node);
                out.push_str("\n\n");
                out.extend(std::iter::repeat_n('#', usize::from(h.as_bytes()[1] - b'0')));
                out.push(' ');
                out.push_str(content.trim_matches(is_doc_space).trim_matches('\n'));
                out.push_str("\n\n");
                self.recycle(content);
            }
            // p, div and the other blocks.
            _ => {
                let content = self.content(node);
                out.push_str("\n\n");
                out.push_str(content.trim_matches('\n'));
                out.push_str("\n\n");
                self.recycle(content);
            }
        }
        true
    }

    fn anchor(&mut self, node: u32, out: &mut String) {
        let content = self.content(node);
        let attrs = self.attrs(node);
        let href = attrs.iter().find(|(n, _)| n == "href").map(|(_, v)| v.as_ref());
        let Some(href) = href else {
            out.push_str(&content);
            self.recycle(content);
            return;
        };
        let title = attrs.iter().find(|(n, _)| n == "title").map(|(_, v)| v.as_ref());
        let inner = content.trim_start_matches(is_doc_space);
        let text = inner.trim_end_matches(is_doc_space);
        out.push('[');
        out.push_str(text);
        push_destination(out, href, title);
        out.push_str(&inner[text.len()..]);
        self.recycle(content);
    }

    fn emphasis(&mut self, node: u32, marker: &str, out: &mut String) -> bool {
        let content = self.content(node);
        let inner = content.trim();
        let written = !inner.is_empty();
        if written {
            let start = content.len() - content.trim_start().len();
            out.push_str(&content[..start]);
            out.push_str(marker);
            out.push_str(inner);
            out.push_str(marker);
            out.push_str(&content[start + inner.len()..]);
        }
        self.recycle(content);
        written
    }

    fn inline_code(&mut self, node: u32, out: &mut String) {
        let content = self.content(node);
        let code = content.trim_matches(is_doc_space);
        // The fence: one backquote more than the longest run when the code starts
        // or ends with one, else the shortest run length the code lacks.
        let padded = code.starts_with('`') || code.ends_with('`');
        let mut runs: Vec<usize> = Vec::new();
        let (mut run, mut longest) = (0, 0);
        for b in code.bytes().chain(std::iter::once(b' ')) {
            if b == b'`' {
                run += 1;
                longest = longest.max(run);
            } else if run > 0 {
                runs.push(run);
                run = 0;
            }
        }
        let fence = if padded { longest + 1 } else { (1..).find(|n| !runs.contains(n)).unwrap_or(1) };
        out.extend(std::iter::repeat_n('`', fence));
        if padded {
            out.push(' ');
        }
        out.push_str(code);
        if padded {
            out.push(' ');
        }
        out.extend(std::iter::repeat_n('`', fence));
        self.recycle(content);
    }

    fn image(&mut self, node: u32, out: &mut String) -> bool {
        let (mut link, mut alt, mut title) = (None, None, None);
        for (name, value) in self.attrs(node) {
            match name.as_ref() {
                "href" | "src" => link = Some(value.as_ref()),
                "alt" => alt = Some(value.as_ref()),
                "title" => title = Some(value.as_ref()),
                _ => {}
            }
        }
        let Some(link) = link else { return false };
        out.push_str("![");
        if let Some(alt) = alt {
            push_lines_quoted(out, alt);
        }
        push_destination(out, link, title);
        true
    }

    fn list(&mut self, node: u32, tag: &str, out: &mut String) -> bool {
        let in_item = self.tag(self.node(node).parent) == Some("li");
        let content = if tag == "ol" { self.ordered_items(node) } else { self.content(node) };
        let trimmed = content.trim_matches('\n');
        let written = !trimmed.is_empty();
        if written {
            let breaks = if in_item { "\n" } else { "\n\n" };
            out.push_str(breaks);
            out.push_str(trimmed);
            out.push_str(breaks);
        }
        self.recycle(content);
        written
    }

    /// An `ol`'s children, each converted on its own, items numbered from 1 (an
    /// `ol` with a `start` is left to htmd), joined as `htmd` joins blocks.
    fn ordered_items(&mut self, node: u32) -> String {
        let mut items = 0;
        let mut child = self.node(node).first;
        while child != NONE {
            items += usize::from(self.tag(child) == Some("li"));
            child = self.node(child).next;
        }
        let width = digits(items);
        let mut joined = self.buffer();
        let (mut part, mut item) = (self.buffer(), self.buffer());
        let mut number = 0;
        let mut child = self.node(node).first;
        while child != NONE {
            part.clear();
            self.walk_node(child, &mut part, true, false);
            if self.tag(child) == Some("li") {
                number += 1;
                let index = number.to_string();
                let spacing = 2 + width - index.len();
                item.clear();
                item.push('\n');
                item.push_str(&index);
                item.push('.');
                item.extend(std::iter::repeat_n(' ', spacing));
                push_indented(&mut item, part.trim_start_matches('\n'), index.len() + 1 + spacing);
                join_block(&mut joined, &item);
            } else {
                join_block(&mut joined, &part);
            }
            child = self.node(child).next;
        }
        self.recycle(part);
        self.recycle(item);
        joined
    }

    fn list_item(&mut self, node: u32, out: &mut String) {
        let content = self.content(node);
        let item = content.trim_start_matches(is_doc_space);
        if self.tag(self.node(node).parent) == Some("ol") {
            out.push('\n');
            out.push_str(item);
            out.push('\n');
        } else {
            out.push_str("\n*   ");
            push_indented(out, item, 4);
        }
        self.recycle(content);
    }

    /// A text node as `htmd` writes it: as it is when nothing in it could read as
    /// Markdown, else with Markdown's specials escaped and whitespace runs folded;
    /// leading spaces dropped after a block start or another space.
    fn push_text(&mut self, out: &mut String, text: &str, trim_leading: bool, pre: bool) {
        if pre {
            out.push_str(text);
            return;
        }
        let after_space = out.ends_with(' ');
        if is_plain_text(text) {
            let text = if trim_leading || (text.starts_with(' ') && after_space) { text.trim_start_matches(' ') } else { text };
            out.push_str(text);
            return;
        }
        let (mut escaped, mut folded) = (self.buffer(), self.buffer());
        self.escape_markdown(text, &mut escaped);
        fold_whitespace(&escaped, &mut folded);
        let text = if trim_leading || (folded.starts_with(' ') && after_space) { folded.trim_start_matches(' ') } else { &folded };
        out.push_str(text);
        self.recycle(escaped);
        self.recycle(folded);
    }

    /// `htmd`'s escapes of a text that may read as Markdown or HTML, into `out`.
    fn escape_markdown(&mut self, text: &str, out: &mut String) {
        let Some(first) = text.chars().next() else { return };
        let special = |b: u8| matches!(b, b'\\' | b'*' | b'_' | b'`' | b'[' | b']');
        let structural = matches!(first, '=' | '~' | '>' | '-' | '+' | '#' | '0'..='9');
        if !structural && !text.bytes().any(special) {
            escape_html(text, out);
            return;
        }
        let backslash_first = match first {
            '=' | '~' | '>' => true,
            '-' | '+' => text.chars().nth(1) == Some(' '),
            '#' => is_atx_heading(text),
            _ => false,
        };
        let mut escaped = self.buffer();
        if backslash_first {
            escaped.push('\\');
        }
        let mut copied = 0;
        for (i, b) in text.bytes().enumerate() {
            if special(b) {
                escaped.push_str(&text[copied..i]);
                escaped.push('\\');
                copied = i;
            }
        }
        escaped.push_str(&text[copied..]);
        if first.is_ascii_digit() {
            if let Some(dot) = ordered_item_dot(&escaped) {
                escaped.replace_range(dot..dot + 1, "\\.");
            }
        }
        escape_html(&escaped, out);
        self.recycle(escaped);
    }
}

/// The end of a link or image as `htmd` writes it: `](destination "title")`,
/// the destination in angle brackets when it has a space.
fn push_destination(out: &mut String, link: &str, title: Option<&str>) {
    out.push_str("](");
    let spaced = link.contains(' ');
    if spaced {
        out.push('<');
    }
    push_link(out, link);
    if spaced {
        out.push('>');
    }
    if let Some(title) = title {
        out.push_str(" \"");
        push_lines_quoted(out, title);
        out.push('"');
    }
    out.push(')');
}

/// A link destination as `htmd` writes it: parentheses escaped.
fn push_link(out: &mut String, link: &str) {
    let mut copied = 0;
    for (i, b) in link.bytes().enumerate() {
        if b == b'(' || b == b')' {
            out.push_str(&link[copied..i]);
            out.push('\\');
            copied = i;
        }
    }
    out.push_str(&link[copied..]);
}

/// A title or alternative text as `htmd` writes it: each line trimmed, empty ones
/// dropped, quotes escaped.
fn push_lines_quoted(out: &mut String, text: &str) {
    let mut first = true;
    for line in text.lines().map(|l| l.trim_matches(is_doc_space)).filter(|l| !l.is_empty()) {
        if !first {
            out.push('\n');
        }
        first = false;
        let mut copied = 0;
        for (i, b) in line.bytes().enumerate() {
            if b == b'"' {
                out.push_str(&line[copied..i]);
                out.push('\\');
                copied = i;
            }
        }
        out.push_str(&line[copied..]);
    }
}

/// The digits `htmd` reserves for the highest item number (its own float sum).
fn digits(num: usize) -> usize {
    if num == 0 {
        return 1;
    }
    ((num + 1) as f32).log10().ceil() as usize
}

/// `text` with every line but the first indented by `indent` spaces, line ends
/// trimmed, appended to `out`.
fn push_indented(out: &mut String, text: &str, indent: usize) {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches(is_doc_space);
        if i > 0 {
            out.push('\n');
            if !line.is_empty() {
                out.extend(std::iter::repeat_n(' ', indent));
            }
        }
        out.push_str(line);
    }
}

/// `htmd`'s join of converted blocks, one more: at most two line breaks between
/// two.
fn join_block(joined: &mut String, part: &str) {
    if part.is_empty() {
        return;
    }
    let kept = joined.trim_end_matches('\n').len();
    let breaks = (joined.len() - kept).max(leading(part, '\n')).min(2);
    joined.truncate(kept);
    joined.extend(std::iter::repeat_n('\n', breaks));
    joined.push_str(part.trim_start_matches('\n'));
}

/// Text `htmd` writes unchanged.
fn is_plain_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.first().is_some_and(|b| matches!(b, b'=' | b'~' | b'>' | b'-' | b'+' | b'#' | b'0'..=b'9')) {
        return false;
    }
    let mut space = false;
    for &b in bytes {
        match b {
            b'\\' | b'*' | b'_' | b'`' | b'[' | b']' | b'<' | b'\t' | b'\n' | b'\r' | b'\x0C' | b'\x0B' => return false,
            b' ' if space => return false,
            b' ' => space = true,
            _ => space = false,
        }
    }
    true
}

/// Runs of ASCII whitespace as one space, into `out`.
fn fold_whitespace(text: &str, out: &mut String) {
    let mut in_space = false;
    let mut copied = 0;
    for (i, b) in text.bytes().enumerate() {
        if b.is_ascii_whitespace() {
            out.push_str(&text[copied..i]);
            if !in_space {
                out.push(' ');
            }
            in_space = true;
            copied = i + 1;
        } else {
            in_space = false;
        }
    }
    out.push_str(&text[copied..]);
}

/// Whether `text` starts like a Markdown heading (`#`s, then a space).
fn is_atx_heading(text: &str) -> bool {
    let mut hashes = false;
    for c in text.chars() {
        match c {
            '#' => hashes = true,
            ' ' => return hashes,
            _ => return false,
        }
    }
    false
}

/// Where the dot of a leading `1. ` is (numbers as `char::is_numeric` has them).
fn ordered_item_dot(text: &str) -> Option<usize> {
    let (mut numeric, mut dot_at, mut dot) = (false, 0, false);
    for (i, c) in text.char_indices() {
        if c.is_numeric() {
            if dot {
                return None;
            }
            numeric = true;
        } else if c == '.' {
            if !numeric {
                return None;
            }
            dot_at = i;
            dot = true;
        } else if c == ' ' {
            return dot.then_some(dot_at);
        } else {
            return None;
        }
    }
    None
}

/// `text` with a backslash before each `<` that Markdown would read as the start
/// of HTML, into `out`.
fn escape_html(text: &str, out: &mut String) {
    let mut copied = 0;
    for (i, _) in text.match_indices('<') {
        let after = &text[i + 1..];
        let mut chars = after.chars();
        let html_like = match chars.next() {
            Some('!') => !(chars.as_str().starts_with("[CDATA[") || chars.as_str().starts_with("\\[CDATA\\[")),
            Some('?') => true,
            Some('/') => chars.next().is_some_and(|c| c.is_ascii_alphabetic()),
            Some(c) => c.is_ascii_alphabetic(),
            None => false,
        };
        if html_like {
            out.push_str(&text[copied..i]);
            out.push('\\');
            copied = i;
        }
    }
    out.push_str(&text[copied..]);
}

#[cfg(test)]
mod tests;

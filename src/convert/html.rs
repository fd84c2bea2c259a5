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
//! (html5ever's adoption agency and implied end tags would reshape the tree), a
//! block or list item opened where HTML closes a paragraph or an item first, a
//! comment, doctype or processing instruction, a character reference outside
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

/// Elements nested deeper than this are left to `htmd`.
const MAX_DEPTH: usize = 48;

/// `html` (a notification body) as `htmd::convert` gives it, trimmed; `None` when
/// it is outside the subset this module reproduces.
pub fn markdown(html: &str) -> Option<String> {
    let mut tree = Builder::parse(html)?;
    let mut out = String::with_capacity(html.len());
    tree.walk_children(BODY, &mut out, true, false);
    Some(out.trim().to_string())
}

/// The body element's index in the tree (html5ever wraps every fragment in
/// `html`, `head` and `body`; the first two add only newlines, which the final
/// trim removes).
const BODY: usize = 0;

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
    const ELEMENTS: [(&str, Kind); 49] = [
        ("a", Kind::Anchor),
        ("b", Kind::Formatting),
        ("strong", Kind::Formatting),
        ("i", Kind::Formatting),
        ("em", Kind::Formatting),
        ("code", Kind::Formatting),
        ("u", Kind::Formatting),
        ("s", Kind::Formatting),
        ("strike", Kind::Formatting),
        ("big", Kind::Formatting),
        ("small", Kind::Formatting),
        ("tt", Kind::Formatting),
        ("font", Kind::Formatting),
        ("span", Kind::Inline),
        ("sub", Kind::Inline),
        ("sup", Kind::Inline),
        ("abbr", Kind::Inline),
        ("cite", Kind::Inline),
        ("kbd", Kind::Inline),
        ("ins", Kind::Inline),
        ("del", Kind::Inline),
        ("mark", Kind::Inline),
        ("q", Kind::Inline),
        ("var", Kind::Inline),
        ("samp", Kind::Inline),
        ("br", Kind::Void),
        ("img", Kind::Void),
        ("hr", Kind::Rule),
        ("p", Kind::Block),
        ("div", Kind::Block),
        ("center", Kind::Block),
        ("section", Kind::Block),
        ("article", Kind::Block),
        ("aside", Kind::Block),
        ("header", Kind::Block),
        ("footer", Kind::Block),
        ("nav", Kind::Block),
        ("main", Kind::Block),
        ("address", Kind::Block),
        ("ul", Kind::Block),
        ("ol", Kind::Block),
        ("blockquote", Kind::Block),
        ("li", Kind::Item),
        ("h1", Kind::Heading),
        ("h2", Kind::Heading),
        ("h3", Kind::Heading),
        ("h4", Kind::Heading),
        ("h5", Kind::Heading),
        ("h6", Kind::Heading),
    ];
    ELEMENTS.iter().find(|(n, _)| *n == name).copied()
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
    is_block(tag) || matches!(tag, "br" | "img")
}

/// One node of the tree: text, or an element and its children.
struct Node {
    /// The element's name (`"body"` for the root), or `None` for text.
    tag: Option<&'static str>,
    /// Attributes in source order, names lowercased, the repeats of a name dropped.
    attrs: Vec<(String, String)>,
    /// The text of a text node (references decoded).
    text: String,
    children: Vec<usize>,
    parent: usize,
}

/// The tree of one body.
struct Tree {
    nodes: Vec<Node>,
}

/// The tokenizer and tree builder for the subset.
struct Builder<'a> {
    html: &'a str,
    pos: usize,
    tree: Tree,
    /// Open elements, the body first.
    open: Vec<usize>,
    /// Text read since the last tag, references decoded.
    pending: String,
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
    fn parse(html: &'a str) -> Option<Tree> {
        // A carriage return is rewritten, a NUL and a leading byte order mark
        // dropped by the parser: left to htmd.
        if html.starts_with('\u{FEFF}') || html.bytes().any(|b| b == b'\r' || b == 0) {
            return None;
        }
        let body = Node { tag: Some("body"), attrs: Vec::new(), text: String::new(), children: Vec::new(), parent: 0 };
        let mut b = Builder { html, pos: 0, tree: Tree { nodes: vec![body] }, open: vec![BODY], pending: String::new(), started: false };
        let bytes = html.as_bytes();
        while b.pos < bytes.len() {
            let rest = &bytes[b.pos..];
            let Some(at) = rest.iter().position(|c| *c == b'<' || *c == b'&') else {
                b.pending.push_str(&html[b.pos..]);
                break;
            };
            b.pending.push_str(&html[b.pos..b.pos + at]);
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

    /// A character reference at `pos` (which holds `&`), decoded into the pending text.
    fn reference(&mut self) -> Option<()> {
        let (c, len) = reference_at(&self.html[self.pos..])?;
        match c {
            Some(c) => self.pending.push(c),
            None => self.pending.push('&'),
        }
        self.pos += len;
        Some(())
    }

    /// A tag at `pos` (which holds `<`), or a `<` that is text.
    fn tag(&mut self) -> Option<()> {
        let bytes = self.html.as_bytes();
        let next = bytes.get(self.pos + 1).copied();
        match next {
            Some(c) if c.is_ascii_alphabetic() => self.start_tag(),
            Some(b'/') => self.end_tag(),
            // `<!`, `<?` open comments and declarations.
            Some(b'!' | b'?') => None,
            // A `<` before anything else, or at the end, is text.
            _ => {
                self.pending.push('<');
                self.pos += 1;
                Some(())
            }
        }
    }

    /// The name at `from` (ASCII letters and digits, lowercased) and where it ends;
    /// `None` unless a space, `/` or `>` follows it.
    fn name_at(&self, from: usize) -> Option<(String, usize)> {
        let bytes = self.html.as_bytes();
        let len = bytes[from..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
        let end = from + len;
        match bytes.get(end) {
            Some(c) if is_html_space(*c) || *c == b'/' || *c == b'>' => Some((self.html[from..end].to_ascii_lowercase(), end)),
            _ => None,
        }
    }

    fn start_tag(&mut self) -> Option<()> {
        let (name, mut at) = self.name_at(self.pos + 1)?;
        let (tag, kind) = kind_of(&name)?;
        let bytes = self.html.as_bytes();
        let mut attrs: Vec<(String, String)> = Vec::new();
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
                    let (attr, end) = self.attribute(at)?;
                    at = end;
                    if !attrs.iter().any(|(n, _)| *n == attr.0) {
                        attrs.push(attr);
                    }
                }
            }
        }
        if self_closing && !matches!(kind, Kind::Void | Kind::Rule) {
            return None;
        }
        self.pos = at;
        self.open_element(tag, kind, attrs)
    }

    /// An attribute at `at`: its name and value, and where it ends. Only names
    /// of letters, digits and `-_:.`, and values quoted or plain (no quotes,
    /// `<`, `=` or backquote in them), after a space or at the tag's end.
    fn attribute(&self, at: usize) -> Option<((String, String), usize)> {
        let bytes = self.html.as_bytes();
        let is_name = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b':' | b'.');
        let len = bytes[at..].iter().take_while(|c| is_name(**c)).count();
        if len == 0 || !bytes[at].is_ascii_alphabetic() {
            return None;
        }
        let name = self.html[at..at + len].to_ascii_lowercase();
        let mut i = at + len;
        while bytes.get(i).is_some_and(|c| is_html_space(*c)) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            // No value: the next attribute or the tag's end must follow a space.
            return match bytes.get(i)? {
                b'>' | b'/' => Some(((name, String::new()), i)),
                _ if i > at + len => Some(((name, String::new()), i)),
                _ => None,
            };
        }
        i += 1;
        while bytes.get(i).is_some_and(|c| is_html_space(*c)) {
            i += 1;
        }
        let (raw, end) = match bytes.get(i)? {
            q @ (b'"' | b'\'') => {
                let close = bytes[i + 1..].iter().position(|c| c == q)? + i + 1;
                (&self.html[i + 1..close], close + 1)
            }
            b'>' => return None,
            _ => {
                let len = bytes[i..].iter().take_while(|c| !is_html_space(**c) && **c != b'>').count();
                let raw = &self.html[i..i + len];
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
        Some(((name, decode(raw)?), end))
    }

    fn end_tag(&mut self) -> Option<()> {
        let (name, at) = self.name_at(self.pos + 2)?;
        if self.html.as_bytes().get(at) != Some(&b'>') {
            return None;
        }
        let top = *self.open.last()?;
        if top == BODY || self.tree.nodes[top].tag != Some(kind_of(&name)?.0) {
            return None;
        }
        self.flush_text();
        self.open.pop();
        self.pos = at + 1;
        Some(())
    }

    /// Opens (or, for void elements, adds) an element, when the HTML parser would
    /// just nest it.
    fn open_element(&mut self, tag: &'static str, kind: Kind, attrs: Vec<(String, String)>) -> Option<()> {
        let top_tag = self.tree.nodes[*self.open.last()?].tag;
        // Inline code holds text only (htmd treats what is inside as preformatted).
        if top_tag == Some("code") {
            return None;
        }
        let open_tags = || self.open.iter().map(|i| self.tree.nodes[*i].tag.unwrap_or(""));
        // htmd numbers from an `ol`'s `start`, and writes a math span as TeX.
        let attr = |name: &str| attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        if (tag == "ol" && attr("start").is_some()) || (tag == "span" && attr("class").is_some_and(|c| c.starts_with("math"))) {
            return None;
        }
        let closes_paragraph = matches!(kind, Kind::Rule | Kind::Block | Kind::Item | Kind::Heading);
        if closes_paragraph && open_tags().any(|t| t == "p") {
            return None;
        }
        match kind {
            Kind::Anchor if open_tags().any(|t| t == "a") => return None,
            Kind::Heading if top_tag.is_some_and(|t| kind_of(t).is_some_and(|(_, k)| k == Kind::Heading)) => return None,
            Kind::Item => {
                // An open `li` above the nearest special element would be closed.
                for t in open_tags().collect::<Vec<_>>().into_iter().rev() {
                    if t == "li" {
                        return None;
                    }
                    if t == "body" || (is_special(t) && !matches!(t, "address" | "div" | "p")) {
                        break;
                    }
                }
            }
            _ => {}
        }
        if self.open.len() > MAX_DEPTH {
            return None;
        }
        self.flush_text();
        let parent = *self.open.last()?;
        let id = self.tree.nodes.len();
        self.tree.nodes.push(Node { tag: Some(tag), attrs, text: String::new(), children: Vec::new(), parent });
        self.tree.nodes[parent].children.push(id);
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
            let kept = self.pending.trim_start_matches(|c: char| c.is_ascii() && is_html_space(c as u8)).len();
            self.pending.drain(..self.pending.len() - kept);
            self.started = !self.pending.is_empty();
        }
        if self.pending.is_empty() {
            return;
        }
        let parent = *self.open.last().expect("the body stays open");
        if let Some(&last) = self.tree.nodes[parent].children.last() {
            if self.tree.nodes[last].tag.is_none() {
                self.tree.nodes[last].text.push_str(&self.pending);
                self.pending.clear();
                return;
            }
        }
        let id = self.tree.nodes.len();
        let text = std::mem::take(&mut self.pending);
        self.tree.nodes.push(Node { tag: None, attrs: Vec::new(), text, children: Vec::new(), parent });
        self.tree.nodes[parent].children.push(id);
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

impl Tree {
    fn tag(&self, node: usize) -> Option<&'static str> {
        self.nodes[node].tag
    }

    /// `htmd`'s joining of like neighbours before it walks children: two inline
    /// elements of one name (or `b`/`strong`, `i`/`em`) with the same attributes,
    /// each holding only text, become one (links excepted).
    fn combine_children(&mut self, node: usize) {
        let mut i = 1;
        while i < self.nodes[node].children.len() {
            let (a, b) = (self.nodes[node].children[i - 1], self.nodes[node].children[i]);
            if self.can_combine(a, b) {
                let from = self.nodes[b].children[0];
                let moved = std::mem::take(&mut self.nodes[from].text);
                let into = self.nodes[a].children[0];
                self.nodes[into].text.push_str(&moved);
                self.nodes[node].children.remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn can_combine(&self, a: usize, b: usize) -> bool {
        let (Some(ta), Some(tb)) = (self.tag(a), self.tag(b)) else { return false };
        let only_text = |n: usize| self.nodes[n].children.len() == 1 && self.tag(self.nodes[n].children[0]).is_none();
        let alike = ta == tb || matches!((ta, tb), ("i", "em") | ("em", "i") | ("b", "strong") | ("strong", "b"));
        !is_block(ta) && ta != "a" && only_text(a) && only_text(b) && alike && self.nodes[a].attrs == self.nodes[b].attrs
    }

    /// `htmd`'s walk over the children of `node` into `out`.
    fn walk_children(&mut self, node: usize, out: &mut String, parent_is_block: bool, pre: bool) {
        self.combine_children(node);
        let mut trim_leading = !pre && parent_is_block;
        for k in 0..self.nodes[node].children.len() {
            let child = self.nodes[node].children[k];
            let block = self.tag(child).is_some_and(is_block);
            if block {
                out.truncate(out.trim_end_matches(' ').len());
            }
            let before = out.len();
            self.walk_node(child, out, trim_leading, pre);
            if out.len() > before {
                trim_leading = block;
            }
        }
    }

    /// The content of `node`'s children on its own, as `htmd`'s handlers ask for it.
    fn content(&mut self, node: usize) -> String {
        let tag = self.tag(node).unwrap_or("");
        let mut out = String::new();
        self.walk_children(node, &mut out, is_block(tag), tag == "code");
        out
    }

    fn walk_node(&mut self, node: usize, out: &mut String, trim_leading: bool, pre: bool) {
        let Some(tag) = self.tag(node) else {
            let text = std::mem::take(&mut self.nodes[node].text);
            push_text(out, &text, trim_leading, pre);
            return;
        };
        match tag {
            "span" => {
                let mut content = String::new();
                self.walk_children(node, &mut content, false, pre);
                append_normalized(out, content.trim_matches('\n'));
            }
            "u" | "s" | "strike" | "big" | "small" | "tt" | "font" | "sub" | "sup" | "abbr" | "cite" | "kbd" | "ins" | "del" | "mark" | "q" | "var" | "samp" => {
                let mut content = String::new();
                self.walk_children(node, &mut content, false, pre);
                append_normalized(out, &content);
            }
            _ => {
                if let Some(converted) = self.handle(node, tag) {
                    append_normalized(out, &converted);
                }
            }
        }
    }

    /// The element handlers of `htmd` for the elements taken.
    fn handle(&mut self, node: usize, tag: &str) -> Option<String> {
        Some(match tag {
            "a" => self.anchor(node),
            "b" | "strong" => return self.emphasis(node, "**"),
            "i" | "em" => return self.emphasis(node, "*"),
            "code" => self.inline_code(node),
            "br" => "  \n".to_string(),
            "hr" => "\n\n* * *\n\n".to_string(),
            "img" => return self.image(node),
            "ul" | "ol" => return self.list(node, tag),
            "li" => self.list_item(node),
            "blockquote" => {
                let content = self.content(node);
                let quoted: Vec<String> = content.trim_start_matches('\n').trim_end_matches(is_doc_space).lines().map(|l| format!("> {l}")).collect();
                format!("\n\n{}\n\n", quoted.join("\n"))
            }
            h if h.len() == 2 && h.starts_with('h') => {
                let level = usize::from(h.as_bytes()[1] - b'0');
                let content = self.content(node);
                format!("\n\n{} {}\n\n", "#".repeat(level), content.trim_matches(is_doc_space).trim_matches('\n'))
            }
            // p, div and the other blocks.
            _ => {
                let content = self.content(node);
                format!("\n\n{}\n\n", content.trim_matches('\n'))
            }
        })
    }

    fn anchor(&mut self, node: usize) -> String {
        let (mut href, mut title) = (None, None);
        for (name, value) in &self.nodes[node].attrs {
            match name.as_str() {
                "href" => href = Some(value.clone()),
                "title" => title = Some(value.clone()),
                _ => {}
            }
        }
        let content = self.content(node);
        let Some(href) = href else { return content };
        let link = if href.contains(['(', ')']) { href.replace('(', "\\(").replace(')', "\\)") } else { href };
        let content = content.trim_start_matches(is_doc_space);
        let text = content.trim_end_matches(is_doc_space);
        let trailing = &content[text.len()..];
        let mut out = String::with_capacity(text.len() + link.len() + 8);
        out.push('[');
        out.push_str(text);
        out.push_str("](");
        let spaced = link.contains(' ');
        if spaced {
            out.push('<');
        }
        out.push_str(&link);
        if spaced {
            out.push('>');
        }
        if let Some(title) = title {
            out.push_str(" \"");
            let lines: Vec<String> = title.lines().map(|l| l.trim_matches(is_doc_space)).filter(|l| !l.is_empty()).map(|l| l.replace('"', "\\\"")).collect();
            out.push_str(&lines.join("\n"));
            out.push('"');
        }
        out.push(')');
        out.push_str(trailing);
        out
    }

    fn emphasis(&mut self, node: usize, marker: &str) -> Option<String> {
        let content = self.content(node);
        if content.is_empty() {
            return None;
        }
        let inner = content.trim();
        if inner.is_empty() {
            return None;
        }
        let start = content.len() - content.trim_start().len();
        let (lead, trail) = (&content[..start], &content[start + inner.len()..]);
        Some(format!("{lead}{marker}{inner}{marker}{trail}"))
    }

    fn inline_code(&mut self, node: usize) -> String {
        let content = self.content(node);
        let code = content.trim_matches(is_doc_space);
        let mut runs: Vec<usize> = Vec::new();
        let (mut run, mut longest) = (0, 0);
        for b in code.bytes() {
            if b == b'`' {
                run += 1;
                longest = longest.max(run);
            } else if run > 0 {
                runs.push(run);
                run = 0;
            }
        }
        if run > 0 {
            runs.push(run);
        }
        let padded = code.starts_with('`') || code.ends_with('`');
        let fence = "`".repeat(if padded { longest + 1 } else { (1..).find(|n| !runs.contains(n)).unwrap_or(1) });
        if padded { format!("{fence} {code} {fence}") } else { format!("{fence}{code}{fence}") }
    }

    fn image(&mut self, node: usize) -> Option<String> {
        let (mut link, mut alt, mut title) = (None, None, None);
        for (name, value) in &self.nodes[node].attrs {
            match name.as_str() {
                "href" | "src" => link = Some(value.as_str()),
                "alt" => alt = Some(value.as_str()),
                "title" => title = Some(value.as_str()),
                _ => {}
            }
        }
        let link = link?.replace('(', "\\(").replace(')', "\\)");
        let lines = |text: &str| text.lines().map(|l| l.trim_matches(is_doc_space).replace('"', "\\\"")).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n");
        let spaced = link.contains(' ');
        let (open, close) = if spaced { ("<", ">") } else { ("", "") };
        let title = title.map(|t| format!(" \"{}\"", lines(t))).unwrap_or_default();
        Some(format!("![{}]({open}{link}{close}{title})", alt.map(lines).unwrap_or_default()))
    }

    fn list(&mut self, node: usize, tag: &str) -> Option<String> {
        let in_item = self.tag(self.nodes[node].parent) == Some("li");
        let content = if tag == "ol" { self.ordered_items(node) } else { self.content(node) };
        let trimmed = content.trim_matches('\n');
        if trimmed.is_empty() {
            return None;
        }
        Some(if in_item { format!("\n{trimmed}\n") } else { format!("\n\n{trimmed}\n\n") })
    }

    /// An `ol`'s children, each converted on its own, items numbered from 1 (an
    /// `ol` with a `start` is left to htmd), joined as `htmd` joins blocks.
    fn ordered_items(&mut self, node: usize) -> String {
        let children = self.nodes[node].children.clone();
        let items = children.iter().filter(|c| self.tag(**c) == Some("li")).count();
        let mut number = 0;
        let mut parts = Vec::with_capacity(children.len());
        for child in children {
            let mut out = String::new();
            self.walk_node(child, &mut out, true, false);
            if self.tag(child) == Some("li") {
                number += 1;
                let index = number.to_string();
                let spacing = " ".repeat(2 + digits(items) - index.len());
                let body = indent_after_first_line(out.trim_start_matches('\n'), index.len() + 1 + spacing.len());
                parts.push(format!("\n{index}.{spacing}{body}"));
            } else {
                parts.push(out);
            }
        }
        join_blocks(&parts)
    }

    fn list_item(&mut self, node: usize) -> String {
        let content = self.content(node);
        let content = content.trim_start_matches(is_doc_space);
        if self.tag(self.nodes[node].parent) == Some("ol") {
            format!("\n{content}\n")
        } else {
            format!("\n*   {}", indent_after_first_line(content, 4))
        }
    }
}

/// The digits `htmd` reserves for the highest item number (its own float sum).
fn digits(num: usize) -> usize {
    if num == 0 {
        return 1;
    }
    ((num + 1) as f32).log10().ceil() as usize
}

/// Every line but the first indented by `indent` spaces, line ends trimmed.
fn indent_after_first_line(text: &str, indent: usize) -> String {
    let mut out = String::with_capacity(text.len() + 16);
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
    out
}

/// `htmd`'s join of converted blocks: at most two line breaks between two.
fn join_blocks(parts: &[String]) -> String {
    let mut out = String::with_capacity(parts.iter().map(String::len).sum());
    for part in parts.iter().filter(|p| !p.is_empty()) {
        let kept = out.trim_end_matches('\n').len();
        let breaks = (out.len() - kept).max(leading(part, '\n')).min(2);
        out.truncate(kept);
        out.push_str(&"\n".repeat(breaks));
        out.push_str(part.trim_start_matches('\n'));
    }
    out
}

/// A text node as `htmd` writes it: as it is when nothing in it could read as
/// Markdown, else with Markdown's specials escaped and whitespace runs folded;
/// leading spaces dropped after a block start or another space.
fn push_text(out: &mut String, text: &str, trim_leading: bool, pre: bool) {
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
    let escaped = escape_markdown(text);
    let folded = fold_whitespace(&escaped);
    let text = if trim_leading || (folded.starts_with(' ') && after_space) { folded.trim_start_matches(' ') } else { &folded };
    out.push_str(text);
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

/// Runs of ASCII whitespace as one space.
fn fold_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c.is_ascii_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// `htmd`'s escapes of a text that may read as Markdown or HTML.
fn escape_markdown(text: &str) -> String {
    let Some(first) = text.chars().next() else { return String::new() };
    let special = |b: u8| matches!(b, b'\\' | b'*' | b'_' | b'`' | b'[' | b']');
    let structural = matches!(first, '=' | '~' | '>' | '-' | '+' | '#' | '0'..='9');
    if !structural && !text.bytes().any(special) {
        return escape_html(text);
    }
    let backslash_first = match first {
        '=' | '~' | '>' => true,
        '-' | '+' => text.chars().nth(1) == Some(' '),
        '#' => is_atx_heading(text),
        _ => false,
    };
    let mut escaped = String::with_capacity(text.len() + 8);
    if backslash_first {
        escaped.push('\\');
    }
    for c in text.chars() {
        if c.is_ascii() && special(c as u8) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    if first.is_ascii_digit() {
        if let Some(dot) = ordered_item_dot(&escaped) {
            escaped.replace_range(dot..dot + 1, "\\.");
        }
    }
    escape_html(&escaped)
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

/// A backslash before each `<` that Markdown would read as the start of HTML.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
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
    out
}

#[cfg(test)]
mod tests;

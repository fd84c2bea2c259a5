//! The fast path is held to `htmd` itself: whatever [`markdown`] converts, it
//! converts exactly as `htmd::convert` (trimmed) does.

use super::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// What the converter used before the fast path gives for `html`.
fn htmd(html: &str) -> String {
    htmd::convert(html).expect("htmd converts any text").trim().to_string()
}

/// The fast path's answer, checked against `htmd` when it gives one.
fn checked(html: &str) -> Option<String> {
    let fast = markdown(html)?;
    assert_eq!(fast, htmd(html), "fast path and htmd differ on {html:?}");
    Some(fast)
}

#[test]
fn notifications_of_every_integration_take_the_fast_path() {
    for html in [
        "Card <b>Sample link card</b> &amp; <a href=\"http://www.website.com/some-article\">link</a>",
        "build <i>passed</i>",
        "<a href=\"https://jira.example.com/browse/PRJ-1\">PRJ-1</a> <b>Login fails</b> was transitioned from <i>Open</i> to <i>In&nbsp;Progress</i>",
        "<img src=\"https://ci.example.com/static/blue.png\" height=\"16\" width=\"16\"> <b>Build #10</b> passed &mdash;&nbsp;12s<br>Changes:<ul><li>fix (<code>a1b2c3d</code>)</li><li>tidy</li></ul>",
        "<b>user1</b> pushed to <a href=\"https://github.com/acme/api/tree/x\">acme/api/x</a>:<br/>\n&bull; <a href=\"https://github.com/acme/api/commit/a\">a1b2c3d</a> fix &lt;none&gt;",
        "<strong>Incident</strong>  API slow\n<ol><li>Investigating &#8211; x</li><li>Resolved &#x2713;</li></ol>",
        "<p><a href=\"https://wiki.example.com/x\">User 2</a> updated <a href=\"https://wiki.example.com/p?a=1&amp;b=2\">Page</a></p><p><i>&ldquo;text&hellip;&rdquo;</i></p>",
        "<b>PROBLEM</b>: <span style=\"color:#d00\">web-1</span> is <b>DOWN</b> &ndash; Packet loss = 100%&#10;<i>x</i>",
        "   <B>Loud</B> <A HREF='http://x.example/a b'>spaced link</A> &copy; 2018",
    ] {
        assert!(checked(html).is_some(), "left to htmd: {html}");
    }
    assert_eq!(checked("Card <b>Sample</b> &amp; <a href=\"http://x.com/a\">link</a>").as_deref(), Some("Card **Sample** & [link](http://x.com/a)"));
    assert_eq!(checked("<ul><li>a</li><li>b<ul><li>c</li></ul></li></ul>").as_deref(), Some("*   a\n*   b\n    *   c"));
    assert_eq!(checked("<b>x</b><strong>y</strong> 1. <i>z</i>").as_deref(), Some("**xy** 1. *z*"));
    // Paragraphs and items left open, as HTML closes them.
    for html in ["<p>a<p>b", "<ul><li>a<li>b</ul>", "<ol><li>a<li><p>b</ol>after", "<div><p>a</div>b", "<p>a<ul><li>b</li></ul>", "<li>a</li><li>b<p>c</li>", "<h2><p>a</h2>"] {
        assert!(checked(html).is_some(), "left to htmd: {html}");
    }
}

#[test]
fn what_the_html_parser_would_reshape_is_left_to_htmd() {
    for html in [
        "<b><i>x</b></i>",
        "<p>a<b>b<p>c",
        "<p>a<div>b</div></p>",
        "<ul><li>a<b>b<li>c</ul>",
        "<ul><li><p>a<li>b</ul>",
        "<div><b>a</div>",
        "<a href=x>a<a href=y>b</a></a>",
        "x</b>",
        "<b/>x",
        "<!-- c -->x",
        "<table><tr><td>x</td></tr></table>",
        "<pre>x</pre>",
        "a &foo; b",
        "a &amp b",
        "&#0;",
        "&#128;",
        "&#65",
        "a\r\nb",
        "<b",
        "<a href=\"x\"title=\"y\">z</a>",
        "<code><b>x</b></code>",
        "<ol start=\"3\"><li>x</li></ol>",
        "<span class=\"math math-inline\">x</span>",
        "<h1>a<h2>b</h2></h1>",
        "</br>",
    ] {
        assert_eq!(markdown(html), None, "taken: {html}");
    }
    let deep = format!("{}x{}", "<span>".repeat(MAX_DEPTH + 1), "</span>".repeat(MAX_DEPTH + 1));
    assert_eq!(markdown(&deep), None);
}

#[test]
fn every_named_reference_has_htmls_value() {
    for (name, _) in NAMED {
        let html = format!("a&{name};b <i title=\"&{name};\">c</i> <a href=\"x&{name};\">d</a>");
        assert!(checked(&html).is_some(), "{name}");
    }
}

/// Text pieces: words, Markdown's specials in every position, whitespace runs,
/// unicode, references of every kind, stray `<`; with `wild`, also what is left
/// to htmd (comments, unknown or unterminated references, carriage returns…).
fn text_piece(wild: bool) -> impl Strategy<Value = String> {
    let mut fixed = vec![
        " ", "  ", "\n", "\t", " \n  ", "\x0C", "\x0B", "*", "_", "`", "``", "[", "]", "\\", "#", "# ", "## x", "#x", "-", "- ", "+ ", "+", ">", "> ", "=", "~", "1. ", "12. x",
        "3.", "1.a ", "½. ", "٣. ", "é", "日本", "😀", "\u{A0}", "\u{2003}", "\u{3000}", "\u{85}", "<", "< ", "<3", "a < b", ">", "&", "& ", "&;", "![x](y)", "**", "<!\\[CDATA\\[",
    ];
    if wild {
        fixed.extend(["<!", "<?", "</", "<1>", "\u{FEFF}", "&#", "&#x;", "&foo;", "&amp", "&#0;", "&#128;", "&#xD800;", "&#13;", "&#x110000;", "&#65", "&#;", "<!-- c -->", "</>", "\r\n", "\0", "<![CDATA[x]]>", "<?x?>"]);
    }
    let named = prop::sample::select(NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>()).prop_map(|n| format!("&{n};"));
    let numeric = (prop_oneof![0x20u32..0x7F, 0xA0u32..0x3000, Just(0x1F600u32), Just(9), Just(10), Just(0x85), Just(0xFFFE)], any::<bool>(), any::<bool>())
        .prop_map(|(v, hex, upper)| if hex { format!("&#{}{v:X};", if upper { 'X' } else { 'x' }) } else { format!("&#{v:04};") });
    let any_text = if wild { "\\PC{1,4}" } else { "[^<&\r\u{0}]{1,4}" };
    prop_oneof![6 => "[a-zA-Z0-9]{1,8}".prop_map(String::from), 6 => prop::sample::select(fixed).prop_map(String::from), 2 => named, 2 => numeric, 1 => any_text.prop_map(String::from)]
}

/// A run of text pieces.
fn text(wild: bool) -> impl Strategy<Value = String> {
    prop::collection::vec(text_piece(wild), 1..5).prop_map(|p| p.concat())
}

/// An attribute in one of the tokenizer's spellings.
fn attribute(wild: bool) -> impl Strategy<Value = String> {
    let mut names = vec!["href", "HREF", "src", "alt", "title", "class", "style", "id", "data-x", "target", "x:y"];
    if wild {
        names.extend(["start", "a\"b", "1x"]);
    }
    let value = prop_oneof![
        prop::sample::select(vec!["http://x.example/a", "http://x.example/a b", "http://x.example/(a)", "x&amp;y", "x&#38;y", "say \"hi\"", "two\nlines", " pad ", "", "a&b", "&quot;", "  ", "\"", "[x]*"]).prop_map(String::from),
        text(wild),
    ];
    let forms = if wild { 0..7u8 } else { 0..6u8 };
    (prop::sample::select(names), value, forms).prop_map(|(n, v, form)| match form {
        0 | 1 => format!(" {n}=\"{}\"", v.replace('"', "&quot;")),
        2 => format!(" {n}='{}'", v.replace('\'', "&#39;")),
        3 => format!(" {n}={}", v.replace([' ', '\n', '\t', '\x0C', '>', '"', '\'', '<', '=', '`'], "")).replace("= ", "=x"),
        4 => format!(" {n}"),
        5 => format!(" {n} = \"{}\"", v.replace('"', "")),
        _ => format!("{n}=\"{}\"", v.replace('"', "")),
    })
}

/// Element names: every one taken, with uppercase spellings; with `wild`, some
/// that are not.
fn tag_name(wild: bool) -> impl Strategy<Value = &'static str> {
    let taken = prop::sample::select(vec![
        "a", "b", "strong", "i", "em", "code", "u", "s", "strike", "big", "small", "tt", "font", "span", "sub", "sup", "abbr", "cite", "kbd", "ins", "del", "mark", "q", "var",
        "samp", "p", "div", "center", "section", "article", "aside", "header", "footer", "nav", "main", "address", "ul", "ol", "li", "li", "li", "blockquote", "h1", "h2", "h3",
        "h4", "h5", "h6", "A", "B", "LI", "Div",
    ]);
    let others = prop::sample::select(vec!["table", "tr", "td", "pre", "dl", "dd", "form", "script", "style", "textarea", "title", "body", "html", "nobr", "button", "image", "svg", "template", "h7", "x-y"]);
    prop_oneof![8 => taken, u32::from(wild) => others]
}

/// HTML made of text, void elements and nested elements whose end tags are
/// right (or, with `wild`, often missing, misspelt or in the wrong place).
fn html(wild: bool) -> impl Strategy<Value = String> {
    let voids = if wild { vec!["br", "BR", "img", "hr", "wbr", "input"] } else { vec!["br", "BR", "img", "img", "hr"] };
    let void = (prop::sample::select(voids), prop::collection::vec(attribute(wild), 0..3), 0..4u8).prop_map(|(t, a, form)| match form {
        0 | 1 => format!("<{t}{}>", a.concat()),
        2 => format!("<{t}{}/>", a.concat()),
        _ => format!("<{t}{} />", a.concat()),
    });
    let leaf = prop_oneof![4 => text(wild), 1 => void];
    let ends = if wild { 0..20u8 } else { 5..45u8 };
    leaf.prop_recursive(4, 40, 6, move |inner| {
        (tag_name(wild), prop::collection::vec(attribute(wild), 0..3), prop::collection::vec(inner, 0..6), ends.clone(), any::<bool>()).prop_map(move |(t, attrs, children, end, pad)| {
            let gap = if pad { "\n  " } else { "" };
            let body = children.join(gap);
            // Paragraphs and items are often left open, in HTML as people write it.
            let left_open = !wild && matches!(t, "p" | "li" | "LI") && end % 3 == 0;
            let close = match end {
                _ if left_open => String::new(),
                0 => String::new(),
                1 => format!("</{}>", t.to_uppercase()),
                2 => format!("</{t} >"),
                3 => "</b>".to_string(),
                4 => format!("<{t}/>"),
                5 => format!("</{}>", t.to_lowercase()),
                _ => format!("</{t}>"),
            };
            format!("<{t}{}>{gap}{body}{gap}{close}", attrs.concat())
        })
    })
}

/// Bodies near what integrations send, and wild ones.
fn bodies() -> impl Strategy<Value = String> {
    prop_oneof![3 => prop::collection::vec(html(false), 1..4), 1 => prop::collection::vec(html(true), 1..4)].prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Whatever the fast path converts, htmd converts alike.
    #[test]
    fn the_fast_path_converts_as_htmd_does(html in bodies()) {
        if let Some(fast) = markdown(&html) {
            prop_assert_eq!(fast, htmd(&html), "on {:?}", html);
        }
    }
}

/// The near-real bodies must reach the fast path often, or the property says little.
#[test]
fn the_generated_html_mostly_takes_the_fast_path() {
    let mut runner = TestRunner::new(Config::default());
    let strategy = prop::collection::vec(html(false), 1..4);
    let (mut taken, total) = (0, 2000);
    for _ in 0..total {
        let html = strategy.new_tree(&mut runner).expect("a value").current().concat();
        taken += usize::from(markdown(&html).is_some());
    }
    assert!(taken * 100 >= total * 40, "only {taken} of {total} generated bodies took the fast path");
}

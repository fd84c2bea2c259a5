//! What every writer needs on the way from the neutral model to a target:
//! text rewriting (HTML, mentions, emoticons, slash commands, event wording),
//! lossless splitting of long messages, unique names, strictly increasing
//! timestamps and rows written as JSON by hand. Kept here so the three writers behave the same where they can.

pub mod clock;
pub mod email;
pub mod html;
pub mod json;
pub mod names;
pub mod text;

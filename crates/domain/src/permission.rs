//! The permissions a key holds, and the queries a verification asks of them.
//!
//! A query names the permissions a call needs, joined by `AND` and `OR` with
//! parentheses: `billing.read AND (billing.write OR admin)`. `AND` binds tighter
//! than `OR`, as in SQL. A held permission ending in `*` grants every name that
//! starts with what precedes the `*` (`billing.*` grants `billing.read`; `*`
//! grants everything); a query's names are matched as written, and must be
//! concrete: no `*` (a query asking for `billing.*` would be granted by any
//! `billing.` wildcard, not by the permissions it seems to name) and no empty
//! `.` part.

use std::fmt;

/// The most characters in one permission name.
pub const MAX_PERMISSION_CHARS: usize = 64;
/// The most permissions one key holds.
pub const MAX_PERMISSIONS: usize = 50;
/// The most characters in a permission query.
pub const MAX_QUERY_CHARS: usize = 1000;
/// The most parentheses a query nests.
pub const MAX_QUERY_DEPTH: usize = 32;

/// One permission: 1–64 characters of `[A-Za-z0-9_.:*-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PermissionName(String);

/// Why a permission name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PermissionNameError {
    /// No characters.
    #[error("permission must have at least 1 character")]
    Empty,
    /// More than [`MAX_PERMISSION_CHARS`].
    #[error("permission must have at most {MAX_PERMISSION_CHARS} characters, got {0}")]
    TooLong(usize),
    /// A character outside `[A-Za-z0-9_.:*-]`.
    #[error("permission may contain only letters, digits and _ . : * - (found {0:?})")]
    InvalidCharacter(char),
    /// In a query: a wildcard or an empty `.` part. A query names the
    /// permission a call needs; `*` is for what a key holds, and `billing.`
    /// or `billing..x` names nothing a call could need.
    #[error("a query names the permission a call needs: no '*' and no empty '.' part")]
    NotConcrete,
}

fn is_permission_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '*' | '-')
}

impl PermissionName {
    /// Checks `raw` against the rules.
    pub fn new(raw: impl Into<String>) -> Result<Self, PermissionNameError> {
        let raw = raw.into();
        if raw.is_empty() {
            return Err(PermissionNameError::Empty);
        }
        // All allowed characters are ASCII, so any other character is refused
        // before the length is judged by bytes.
        if let Some(c) = raw.chars().find(|&c| !is_permission_char(c)) {
            return Err(PermissionNameError::InvalidCharacter(c));
        }
        if raw.len() > MAX_PERMISSION_CHARS {
            return Err(PermissionNameError::TooLong(raw.len()));
        }
        Ok(Self(raw))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name could be what a call needs: no `*`, and no empty part
    /// between, before or after its dots. Only such names are queried.
    pub fn is_concrete(&self) -> bool {
        !self.0.contains('*') && self.0.split('.').all(|part| !part.is_empty())
    }

    /// Whether holding this permission grants `required`: the same name, or a
    /// wildcard (`…*`) whose prefix `required` starts with.
    pub fn grants(&self, required: &PermissionName) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => required.0.starts_with(prefix),
            None => self.0 == required.0,
        }
    }
}

impl fmt::Display for PermissionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The permissions of a key: at most [`MAX_PERMISSIONS`], each once, in the
/// order first given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions(Vec<PermissionName>);

/// Why a key's permissions were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PermissionsError {
    /// More than [`MAX_PERMISSIONS`] distinct names.
    #[error("a key may hold at most {MAX_PERMISSIONS} permissions, got {0}")]
    TooMany(usize),
}

impl Permissions {
    /// Deduplicates `names` (keeping the first of each) and checks the count.
    pub fn new(names: impl IntoIterator<Item = PermissionName>) -> Result<Self, PermissionsError> {
        let mut kept: Vec<PermissionName> = Vec::new();
        for name in names {
            if !kept.contains(&name) {
                kept.push(name);
            }
        }
        if kept.len() > MAX_PERMISSIONS {
            return Err(PermissionsError::TooMany(kept.len()));
        }
        Ok(Self(kept))
    }

    /// The names, in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &PermissionName> + ExactSizeIterator {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key holds none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether one of them grants `required`.
    pub fn grants(&self, required: &PermissionName) -> bool {
        self.0.iter().any(|held| held.grants(required))
    }

    /// Whether they satisfy `query`.
    pub fn satisfy(&self, query: &PermissionQuery) -> bool {
        match query {
            PermissionQuery::Require(name) => self.grants(name),
            PermissionQuery::All(parts) => parts.iter().all(|part| self.satisfy(part)),
            PermissionQuery::Any(parts) => parts.iter().any(|part| self.satisfy(part)),
        }
    }
}

/// A parsed permission query, in canonical form: `All` and `Any` have at least
/// two parts, and no part of an `All` is an `All` (nor of an `Any` an `Any`),
/// so a query prints back to text that parses to the same value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PermissionQuery {
    /// One permission.
    Require(PermissionName),
    /// Every part (`a AND b AND …`).
    All(Vec<PermissionQuery>),
    /// At least one part (`a OR b OR …`).
    Any(Vec<PermissionQuery>),
}

/// Why a permission query could not be parsed. Positions count characters from 1.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PermissionQueryError {
    /// Nothing but whitespace.
    #[error("the permission query is empty")]
    Empty,
    /// More than [`MAX_QUERY_CHARS`].
    #[error("the permission query must have at most {MAX_QUERY_CHARS} characters, got {0}")]
    TooLong(usize),
    /// Parentheses nested deeper than [`MAX_QUERY_DEPTH`].
    #[error("the permission query nests parentheses deeper than {MAX_QUERY_DEPTH}")]
    TooDeep,
    /// Something other than what the grammar allows there.
    #[error("at character {at}: expected {expected}, found {found}")]
    Unexpected {
        /// Where.
        at: usize,
        /// What would have been right.
        expected: &'static str,
        /// What was there (`end of query` at the end).
        found: String,
    },
    /// A word that is not a permission name.
    #[error("at character {at}: {error}")]
    InvalidName {
        /// Where the word starts.
        at: usize,
        /// What is wrong with it.
        error: PermissionNameError,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    Open,
    Close,
    And,
    Or,
    Word(&'a str),
    End,
}

impl Token<'_> {
    fn describe(&self) -> String {
        match self {
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::And => "AND".into(),
            Token::Or => "OR".into(),
            // Queries are not secret, but a found word is cut short all the same.
            Token::Word(word) => format!("'{}'", word.chars().take(MAX_PERMISSION_CHARS).collect::<String>()),
            Token::End => "end of query".into(),
        }
    }
}

/// Splits a query into tokens with their 1-based character positions, borrowing
/// the words: the hot path parses a query per verification.
fn tokenize<'a>(query: &'a str) -> Vec<(usize, Token<'a>)> {
    let mut tokens = Vec::new();
    let mut word: Option<(usize, usize)> = None; // (byte start, char position)
    let end_word = |tokens: &mut Vec<(usize, Token<'a>)>, word: &mut Option<(usize, usize)>, at: usize| {
        if let Some((start, position)) = word.take() {
            let text = &query[start..at];
            let token = match text {
                "AND" => Token::And,
                "OR" => Token::Or,
                _ => Token::Word(text),
            };
            tokens.push((position, token));
        }
    };
    let mut chars = 0;
    for (at, c) in query.char_indices() {
        chars += 1;
        if c.is_whitespace() || c == '(' || c == ')' {
            end_word(&mut tokens, &mut word, at);
            match c {
                '(' => tokens.push((chars, Token::Open)),
                ')' => tokens.push((chars, Token::Close)),
                _ => {}
            }
        } else if word.is_none() {
            word = Some((at, chars));
        }
    }
    end_word(&mut tokens, &mut word, query.len());
    tokens.push((chars + 1, Token::End));
    tokens
}

struct Parser<'a> {
    tokens: Vec<(usize, Token<'a>)>,
    next: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &(usize, Token<'a>) {
        // `tokenize` always ends with `End`, and `End` is never consumed.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> (usize, Token<'a>) {
        let token = *self.peek();
        if token.1 != Token::End {
            self.next += 1;
        }
        token
    }

    fn unexpected(&self, expected: &'static str) -> PermissionQueryError {
        let (at, token) = self.peek();
        PermissionQueryError::Unexpected {
            at: *at,
            expected,
            found: token.describe(),
        }
    }

    /// `or := and (OR and)*`
    fn any(&mut self) -> Result<PermissionQuery, PermissionQueryError> {
        let mut parts = vec![self.all()?];
        while self.peek().1 == Token::Or {
            self.bump();
            parts.push(self.all()?);
        }
        Ok(join(parts, false))
    }

    /// `and := atom (AND atom)*`
    fn all(&mut self) -> Result<PermissionQuery, PermissionQueryError> {
        let mut parts = vec![self.atom()?];
        while self.peek().1 == Token::And {
            self.bump();
            parts.push(self.atom()?);
        }
        Ok(join(parts, true))
    }

    /// `atom := NAME | '(' or ')'`
    fn atom(&mut self) -> Result<PermissionQuery, PermissionQueryError> {
        match self.peek().1 {
            Token::Word(word) => {
                let (at, _) = self.bump();
                PermissionName::new(word)
                    .and_then(|name| {
                        if name.is_concrete() {
                            Ok(name)
                        } else {
                            Err(PermissionNameError::NotConcrete)
                        }
                    })
                    .map(PermissionQuery::Require)
                    .map_err(|error| PermissionQueryError::InvalidName { at, error })
            }
            Token::Open => {
                self.bump();
                self.depth += 1;
                if self.depth > MAX_QUERY_DEPTH {
                    return Err(PermissionQueryError::TooDeep);
                }
                let inner = self.any()?;
                if self.peek().1 != Token::Close {
                    return Err(self.unexpected("AND, OR or ')'"));
                }
                self.bump();
                self.depth -= 1;
                Ok(inner)
            }
            _ => Err(self.unexpected("a permission or '('")),
        }
    }
}

/// One part stays itself; several become an `All` (or an `Any`), with parts of
/// the same kind spliced in (`(a AND b) AND c` is `a AND b AND c`).
fn join(parts: Vec<PermissionQuery>, all: bool) -> PermissionQuery {
    let parts = match <[PermissionQuery; 1]>::try_from(parts) {
        Ok([only]) => return only,
        Err(parts) => parts,
    };
    let mut flat = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            PermissionQuery::All(inner) if all => flat.extend(inner),
            PermissionQuery::Any(inner) if !all => flat.extend(inner),
            part => flat.push(part),
        }
    }
    if all {
        PermissionQuery::All(flat)
    } else {
        PermissionQuery::Any(flat)
    }
}

impl PermissionQuery {
    /// Parses a query.
    pub fn parse(query: &str) -> Result<Self, PermissionQueryError> {
        let chars = query.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(PermissionQueryError::TooLong(chars));
        }
        if query.trim().is_empty() {
            return Err(PermissionQueryError::Empty);
        }
        let mut parser = Parser {
            tokens: tokenize(query),
            next: 0,
            depth: 0,
        };
        let parsed = parser.any()?;
        if parser.peek().1 != Token::End {
            return Err(parser.unexpected("AND, OR or end of query"));
        }
        Ok(parsed)
    }

    /// Every permission the query names, in order (repeats included).
    pub fn names(&self) -> Vec<&PermissionName> {
        match self {
            PermissionQuery::Require(name) => vec![name],
            PermissionQuery::All(parts) | PermissionQuery::Any(parts) => {
                parts.iter().flat_map(PermissionQuery::names).collect()
            }
        }
    }
}

impl fmt::Display for PermissionQuery {
    /// The canonical text: single spaces, parentheses only around an `OR`
    /// inside an `AND`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PermissionQuery::Require(name) => f.write_str(name.as_str()),
            PermissionQuery::Any(parts) => {
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    write!(f, "{part}")?;
                }
                Ok(())
            }
            PermissionQuery::All(parts) => {
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" AND ")?;
                    }
                    match part {
                        PermissionQuery::Any(_) => write!(f, "({part})")?,
                        _ => write!(f, "{part}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(raw: &str) -> PermissionName {
        PermissionName::new(raw).unwrap()
    }

    fn held(names: &[&str]) -> Permissions {
        Permissions::new(names.iter().map(|n| name(n))).unwrap()
    }

    #[test]
    fn names_follow_the_character_and_length_rules() {
        for ok in [
            "billing.read",
            "a",
            "org:42:admin",
            "billing.*",
            "*",
            "a-b_c",
            &"x".repeat(64),
        ] {
            assert!(PermissionName::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(PermissionName::new(""), Err(PermissionNameError::Empty));
        assert_eq!(
            PermissionName::new("x".repeat(65)),
            Err(PermissionNameError::TooLong(65))
        );
        for (bad, c) in [("a b", ' '), ("é", 'é'), ("a/b", '/'), ("a\0", '\0'), ("(a)", '(')] {
            assert_eq!(
                PermissionName::new(bad),
                Err(PermissionNameError::InvalidCharacter(c)),
                "{bad}"
            );
        }
    }

    #[test]
    fn permissions_are_deduplicated_in_order_and_bounded() {
        let p = held(&["b", "a", "b", "c", "a"]);
        assert_eq!(
            p.iter().map(PermissionName::as_str).collect::<Vec<_>>(),
            ["b", "a", "c"]
        );
        let fifty = (0..60).map(|i| name(&format!("p{}", i % 50)));
        assert_eq!(Permissions::new(fifty).unwrap().len(), 50, "repeats do not count");
        let fifty_one = (0..51).map(|i| name(&format!("p{i}")));
        assert_eq!(Permissions::new(fifty_one), Err(PermissionsError::TooMany(51)));
    }

    #[test]
    fn wildcards_grant_by_prefix_and_query_names_match_as_written() {
        let p = held(&["billing.*", "reports.read"]);
        assert!(p.grants(&name("billing.read")));
        assert!(p.grants(&name("billing.")));
        assert!(!p.grants(&name("billingx")), "the prefix includes the dot");
        assert!(!p.grants(&name("reports.*")), "a query's * is not a wildcard");
        assert!(held(&["*"]).grants(&name("anything:at.all")));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let q = PermissionQuery::parse("a OR b AND c").unwrap();
        assert_eq!(
            q,
            PermissionQuery::Any(vec![
                PermissionQuery::Require(name("a")),
                PermissionQuery::All(vec![
                    PermissionQuery::Require(name("b")),
                    PermissionQuery::Require(name("c"))
                ]),
            ])
        );
        assert!(held(&["a"]).satisfy(&q));
        assert!(held(&["b", "c"]).satisfy(&q));
        assert!(!held(&["b"]).satisfy(&q));
    }

    #[test]
    fn the_issue_example_evaluates_as_written() {
        let q = PermissionQuery::parse("billing.read AND (billing.write OR admin)").unwrap();
        assert_eq!(q.to_string(), "billing.read AND (billing.write OR admin)");
        assert!(held(&["billing.read", "admin"]).satisfy(&q));
        assert!(held(&["billing.*"]).satisfy(&q));
        assert!(!held(&["billing.read"]).satisfy(&q));
        assert!(!held(&["admin", "billing.write"]).satisfy(&q));
    }

    #[test]
    fn malformed_queries_say_where_and_what() {
        use PermissionQueryError::*;
        let cases: [(&str, PermissionQueryError); 12] = [
            ("", Empty),
            ("   ", Empty),
            (
                "a AND",
                Unexpected {
                    at: 6,
                    expected: "a permission or '('",
                    found: "end of query".into(),
                },
            ),
            (
                "(a OR b",
                Unexpected {
                    at: 8,
                    expected: "AND, OR or ')'",
                    found: "end of query".into(),
                },
            ),
            (
                "a b",
                Unexpected {
                    at: 3,
                    expected: "AND, OR or end of query",
                    found: "'b'".into(),
                },
            ),
            (
                "a)",
                Unexpected {
                    at: 2,
                    expected: "AND, OR or end of query",
                    found: "')'".into(),
                },
            ),
            (
                "OR a",
                Unexpected {
                    at: 1,
                    expected: "a permission or '('",
                    found: "OR".into(),
                },
            ),
            (
                "a AND ()",
                Unexpected {
                    at: 8,
                    expected: "a permission or '('",
                    found: "')'".into(),
                },
            ),
            (
                "a AND billing.*",
                InvalidName {
                    at: 7,
                    error: PermissionNameError::NotConcrete,
                },
            ),
            (
                "billing.",
                InvalidName {
                    at: 1,
                    error: PermissionNameError::NotConcrete,
                },
            ),
            (
                "billing..x OR y",
                InvalidName {
                    at: 1,
                    error: PermissionNameError::NotConcrete,
                },
            ),
            (
                "a AND b/c",
                InvalidName {
                    at: 7,
                    error: PermissionNameError::InvalidCharacter('/'),
                },
            ),
        ];
        for (query, error) in cases {
            assert_eq!(PermissionQuery::parse(query), Err(error), "{query:?}");
        }
        assert_eq!(PermissionQuery::parse(&"a ".repeat(501)), Err(TooLong(1002)));
        let deep = format!("{}a{}", "(".repeat(33), ")".repeat(33));
        assert_eq!(PermissionQuery::parse(&deep), Err(TooDeep));
        let ok = format!("{}a{}", "(".repeat(32), ")".repeat(32));
        assert_eq!(PermissionQuery::parse(&ok), Ok(PermissionQuery::Require(name("a"))));
    }

    #[test]
    fn lower_case_operators_are_names() {
        assert_eq!(PermissionQuery::parse("and"), Ok(PermissionQuery::Require(name("and"))));
        assert!(PermissionQuery::parse("a and b").is_err());
    }

    /// A name a key may hold: wildcards included.
    fn arb_name() -> impl Strategy<Value = PermissionName> {
        "[a-c][a-c.*]{0,3}".prop_map(|raw| PermissionName::new(raw).unwrap())
    }

    /// A name a query may ask for: concrete.
    fn arb_asked() -> impl Strategy<Value = PermissionName> {
        "[a-c]{1,2}(\\.[a-c]{1,2}){0,1}".prop_map(|raw| PermissionName::new(raw).unwrap())
    }

    fn arb_query() -> impl Strategy<Value = PermissionQuery> {
        arb_asked()
            .prop_map(PermissionQuery::Require)
            .prop_recursive(4, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 2..4).prop_map(|parts| join(parts, true)),
                    prop::collection::vec(inner, 2..4).prop_map(|parts| join(parts, false)),
                ]
            })
    }

    /// The query with redundant structure, as a person might write it.
    fn verbose(query: &PermissionQuery) -> String {
        match query {
            PermissionQuery::Require(name) => format!(" ( {name} ) "),
            PermissionQuery::All(parts) => {
                format!("({})", parts.iter().map(verbose).collect::<Vec<_>>().join("\tAND\n"))
            }
            PermissionQuery::Any(parts) => {
                format!("(({}))", parts.iter().map(verbose).collect::<Vec<_>>().join("  OR "))
            }
        }
    }

    proptest! {
        #[test]
        fn a_query_prints_back_to_itself(query in arb_query()) {
            let printed = query.to_string();
            prop_assert_eq!(PermissionQuery::parse(&printed), Ok(query.clone()), "{}", printed);
        }

        #[test]
        fn parentheses_and_spacing_change_nothing(query in arb_query(), names in prop::collection::vec(arb_name(), 0..6)) {
            let written = verbose(&query);
            prop_assume!(written.chars().count() <= MAX_QUERY_CHARS);
            let parsed = PermissionQuery::parse(&written).unwrap();
            prop_assert_eq!(&parsed, &query, "{}", written);
            let held = Permissions::new(names).unwrap();
            prop_assert_eq!(held.satisfy(&parsed), held.satisfy(&query));
        }

        #[test]
        fn any_text_parses_or_names_its_error_without_panicking(text in "\\PC{0,80}") {
            match PermissionQuery::parse(&text) {
                Ok(query) => prop_assert_eq!(PermissionQuery::parse(&query.to_string()), Ok(query)),
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
        }
    }
}

//! The lexer: schema text → tokens with positions.
//!
//! Mirrors SpiceDB's lexer where it matters to the grammar: a newline after an identifier,
//! `}`, `)` or `*` is a statement terminator (a "synthetic semicolon"), other newlines,
//! spaces and comments are skipped. Keywords are plain identifiers here; the parser decides.
//! Caveat bodies are CEL, not schema tokens: the parser asks [`Lexer::capture_cel`] for the
//! raw text up to the matching `}`.

use super::error::Pos;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// An identifier or keyword (`definition`, `user`, `_x1`; also `9lives`: SpiceDB's lexer
    /// reads any run of letters, digits and `_` as an identifier, and caveat names may start
    /// with a digit).
    Ident(String),
    /// A quoted string (only meaningful inside CEL).
    Str,
    LBrace,
    RBrace,
    LParen,
    RParen,
    Pipe,
    Plus,
    Minus,
    Amp,
    Slash,
    Equals,
    Colon,
    Semicolon,
    /// A newline that ends a statement.
    SyntheticSemicolon,
    Arrow,
    Hash,
    Ellipsis,
    Star,
    Period,
    Comma,
    Lt,
    Gt,
    /// Any other operator-like text (`==`, `&&`, `!`, `[`, ...): never valid schema syntax.
    Other(String),
    /// Text that cannot start any token; the message says why.
    Error(String),
    Eof,
}

impl TokenKind {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenKind::Ident(s) | TokenKind::Other(s) => format!("`{s}`"),
            TokenKind::Str => "a string".to_string(),
            TokenKind::LBrace => "`{`".to_string(),
            TokenKind::RBrace => "`}`".to_string(),
            TokenKind::LParen => "`(`".to_string(),
            TokenKind::RParen => "`)`".to_string(),
            TokenKind::Pipe => "`|`".to_string(),
            TokenKind::Plus => "`+`".to_string(),
            TokenKind::Minus => "`-`".to_string(),
            TokenKind::Amp => "`&`".to_string(),
            TokenKind::Slash => "`/`".to_string(),
            TokenKind::Equals => "`=`".to_string(),
            TokenKind::Colon => "`:`".to_string(),
            TokenKind::Semicolon => "`;`".to_string(),
            TokenKind::SyntheticSemicolon => "end of line".to_string(),
            TokenKind::Arrow => "`->`".to_string(),
            TokenKind::Hash => "`#`".to_string(),
            TokenKind::Ellipsis => "`...`".to_string(),
            TokenKind::Star => "`*`".to_string(),
            TokenKind::Period => "`.`".to_string(),
            TokenKind::Comma => "`,`".to_string(),
            TokenKind::Lt => "`<`".to_string(),
            TokenKind::Gt => "`>`".to_string(),
            TokenKind::Error(msg) => msg.clone(),
            TokenKind::Eof => "end of input".to_string(),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it starts.
    pub pos: Pos,
}

/// The raw text of a caveat's CEL expression, as captured by [`Lexer::capture_cel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CelText {
    /// The expression, trimmed of surrounding whitespace.
    pub text: String,
    /// Where the trimmed expression starts (the position of `}` when it is empty).
    pub pos: Pos,
    /// Whether the closing `}` was found (it is consumed when found).
    pub closed: bool,
    /// Where the capture stopped: the closing `}` or the end of input.
    pub end: Pos,
}

/// A pull lexer over schema text.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    offset: usize,
    line: usize,
    column: usize,
    /// Whether the last significant token lets a newline end the statement.
    newline_terminates: bool,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    pub(crate) fn new(src: &'a str) -> Self {
        Lexer {
            src,
            offset: 0,
            line: 1,
            column: 1,
            newline_terminates: false,
        }
    }

    fn peek_char(&self) -> Option<char> {
        self.src
            .get(self.offset..)
            .and_then(|rest| rest.chars().next())
    }

    fn peek_second(&self) -> Option<char> {
        self.src
            .get(self.offset..)
            .and_then(|rest| rest.chars().nth(1))
    }

    fn rest_starts_with(&self, s: &str) -> bool {
        self.src
            .get(self.offset..)
            .is_some_and(|rest| rest.starts_with(s))
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    /// Consumes one character, keeping line and column; `\r\n` counts as one line break.
    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.offset += c.len_utf8();
        match c {
            '\n' => {
                self.line += 1;
                self.column = 1;
            }
            '\r' => {
                if self.peek_char() == Some('\n') {
                    self.offset += 1;
                }
                self.line += 1;
                self.column = 1;
            }
            _ => self.column += 1,
        }
        Some(c)
    }

    /// The next significant token.
    pub(crate) fn next_token(&mut self) -> Token {
        loop {
            let pos = self.pos();
            let Some(c) = self.peek_char() else {
                return Token {
                    kind: TokenKind::Eof,
                    pos,
                };
            };
            match c {
                ' ' | '\t' | '\u{feff}' => {
                    self.bump();
                }
                '\n' | '\r' => {
                    self.bump();
                    if self.newline_terminates {
                        self.newline_terminates = false;
                        return Token {
                            kind: TokenKind::SyntheticSemicolon,
                            pos,
                        };
                    }
                }
                '/' if self.peek_second() == Some('/') => {
                    while let Some(c) = self.peek_char() {
                        if c == '\n' || c == '\r' {
                            break;
                        }
                        self.bump();
                    }
                }
                '/' if self.peek_second() == Some('*') => {
                    self.bump();
                    self.bump();
                    let mut closed = false;
                    while self.peek_char().is_some() {
                        if self.rest_starts_with("*/") {
                            self.bump();
                            self.bump();
                            closed = true;
                            break;
                        }
                        self.bump();
                    }
                    if !closed {
                        return self.finish(
                            TokenKind::Error("unterminated multiline comment".to_string()),
                            pos,
                        );
                    }
                }
                _ => {
                    let kind = self.lex_significant(c);
                    return self.finish(kind, pos);
                }
            }
        }
    }

    fn finish(&mut self, kind: TokenKind, pos: Pos) -> Token {
        self.newline_terminates = matches!(
            kind,
            TokenKind::Ident(_) | TokenKind::RBrace | TokenKind::RParen | TokenKind::Star
        );
        Token { kind, pos }
    }

    fn lex_significant(&mut self, c: char) -> TokenKind {
        if is_ident_char(c) {
            let start = self.offset;
            while self.peek_char().is_some_and(is_ident_char) {
                self.bump();
            }
            let text = self
                .src
                .get(start..self.offset)
                .unwrap_or_default()
                .to_string();
            return TokenKind::Ident(text);
        }
        if c == '"' || c == '\'' {
            return self.lex_string(c);
        }
        self.bump();
        let two = |lexer: &mut Self, next: char| {
            if lexer.peek_char() == Some(next) {
                lexer.bump();
                true
            } else {
                false
            }
        };
        match c {
            '{' => TokenKind::LBrace,
            '}' => TokenKind::RBrace,
            '(' => TokenKind::LParen,
            ')' => TokenKind::RParen,
            '+' => TokenKind::Plus,
            '|' if two(self, '|') => TokenKind::Other("||".to_string()),
            '|' => TokenKind::Pipe,
            '&' if two(self, '&') => TokenKind::Other("&&".to_string()),
            '&' => TokenKind::Amp,
            '-' if two(self, '>') => TokenKind::Arrow,
            '-' => TokenKind::Minus,
            '/' => TokenKind::Slash,
            '=' if two(self, '=') => TokenKind::Other("==".to_string()),
            '=' => TokenKind::Equals,
            ':' => TokenKind::Colon,
            ';' => TokenKind::Semicolon,
            '#' => TokenKind::Hash,
            '*' => TokenKind::Star,
            '.' if self.rest_starts_with("..") => {
                self.bump();
                self.bump();
                TokenKind::Ellipsis
            }
            '.' => TokenKind::Period,
            ',' => TokenKind::Comma,
            '<' if two(self, '=') => TokenKind::Other("<=".to_string()),
            '<' => TokenKind::Lt,
            '>' if two(self, '=') => TokenKind::Other(">=".to_string()),
            '>' => TokenKind::Gt,
            '!' if two(self, '=') => TokenKind::Other("!=".to_string()),
            '!' | '?' | '[' | ']' | '%' => TokenKind::Other(c.to_string()),
            _ => TokenKind::Error(format!("unrecognized character `{}`", c.escape_default())),
        }
    }

    fn lex_string(&mut self, quote: char) -> TokenKind {
        let triple: String = std::iter::repeat_n(quote, 3).collect();
        let long = self.rest_starts_with(&triple);
        let terminator = if long { triple } else { quote.to_string() };
        for _ in 0..terminator.chars().count() {
            self.bump();
        }
        loop {
            if self.rest_starts_with(&terminator) {
                for _ in 0..terminator.chars().count() {
                    self.bump();
                }
                return TokenKind::Str;
            }
            match self.peek_char() {
                None => return TokenKind::Error("unterminated string".to_string()),
                Some('\n' | '\r') if !long => {
                    return TokenKind::Error("unterminated string".to_string())
                }
                Some('\\') => {
                    self.bump();
                    self.bump();
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
    }

    /// Captures a caveat's CEL expression: the raw text from here up to the `}` that closes
    /// the caveat body (braces inside balanced, string literals and `//` comments respected),
    /// and consumes that `}`.
    pub(crate) fn capture_cel(&mut self) -> CelText {
        let mut depth = 0usize;
        let mut first: Option<(usize, Pos)> = None;
        let mut last_end = self.offset;
        let closing_pos;
        loop {
            let pos = self.pos();
            let Some(c) = self.peek_char() else {
                closing_pos = pos;
                break;
            };
            match c {
                ' ' | '\t' | '\n' | '\r' => {
                    self.bump();
                    continue;
                }
                '}' if depth == 0 => {
                    closing_pos = pos;
                    break;
                }
                _ => {}
            }
            if first.is_none() {
                first = Some((self.offset, pos));
            }
            match c {
                '{' => {
                    depth += 1;
                    self.bump();
                }
                '}' => {
                    depth = depth.saturating_sub(1);
                    self.bump();
                }
                '"' | '\'' => {
                    // An unterminated string runs to the end of its line; CEL reports it.
                    let _ = self.lex_string(c);
                }
                '/' if self.peek_second() == Some('/') => {
                    while let Some(c) = self.peek_char() {
                        if c == '\n' || c == '\r' {
                            break;
                        }
                        self.bump();
                    }
                }
                _ => {
                    self.bump();
                }
            }
            last_end = self.offset;
        }
        let closed = self.peek_char() == Some('}');
        if closed {
            self.bump();
            self.newline_terminates = true;
        }
        match first {
            Some((start, pos)) => CelText {
                text: self
                    .src
                    .get(start..last_end)
                    .unwrap_or_default()
                    .to_string(),
                pos,
                closed,
                end: closing_pos,
            },
            None => CelText {
                text: String::new(),
                pos: closing_pos,
                closed,
                end: closing_pos,
            },
        }
    }
}

/// Letters, digits and `_`, as SpiceDB's lexer reads identifiers.
fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token();
            if token.kind == TokenKind::Eof {
                return out;
            }
            out.push(token.kind);
        }
    }

    #[test]
    fn newline_after_identifier_ends_statement_but_not_after_pipe() {
        let ks = kinds("a |\n b\n\n c");
        assert_eq!(
            ks,
            vec![
                TokenKind::Ident("a".into()),
                TokenKind::Pipe,
                TokenKind::Ident("b".into()),
                TokenKind::SyntheticSemicolon,
                TokenKind::Ident("c".into()),
            ]
        );
    }

    #[test]
    fn comments_are_skipped_and_positions_are_one_based() {
        let mut lexer = Lexer::new("/** doc */ x // c\n  y");
        let x = lexer.next_token();
        assert_eq!(
            x.pos,
            Pos {
                line: 1,
                column: 12
            }
        );
        assert_eq!(lexer.next_token().kind, TokenKind::SyntheticSemicolon);
        let y = lexer.next_token();
        assert_eq!(y.pos, Pos { line: 2, column: 3 });
    }

    #[test]
    fn arrow_ellipsis_and_operators() {
        assert_eq!(
            kinds("a->b ... - & ."),
            vec![
                TokenKind::Ident("a".into()),
                TokenKind::Arrow,
                TokenKind::Ident("b".into()),
                TokenKind::Ellipsis,
                TokenKind::Minus,
                TokenKind::Amp,
                TokenKind::Period,
            ]
        );
    }

    #[test]
    fn cel_capture_balances_braces_and_strings() {
        let mut lexer = Lexer::new("\n  {'a': \"}\"}['a'] == x } rest");
        let cel = lexer.capture_cel();
        assert!(cel.closed);
        assert_eq!(cel.text, "{'a': \"}\"}['a'] == x");
        assert_eq!(cel.pos, Pos { line: 2, column: 3 });
        assert_eq!(lexer.next_token().kind, TokenKind::Ident("rest".into()));
    }

    #[test]
    fn unterminated_comment_is_an_error_token() {
        assert!(matches!(kinds("a /* b").last(), Some(TokenKind::Error(_))));
    }
}

//! The parser: tokens → [`ast::File`](super::ast::File), collecting every syntax error.
//!
//! Follows SpiceDB's grammar (`pkg/schemadsl/parser`): `-` binds loosest, then `&`, then `+`;
//! all three are left-associative, and chains of `+` or `&` (parenthesised or not) flatten
//! into one node. Arrows bind tightest and start from a relation name. After an error the
//! parser skips to the end of the statement (or the next `definition` / `caveat`) and goes on.

use super::ast::{
    AllowedAst, AllowedKindAst, CaveatAst, DefinitionAst, ExprAst, File, MemberAst, Name,
    TypeRefAst,
};
use super::error::{Pos, SchemaError};
use super::lexer::{Lexer, Token, TokenKind};
use super::model::ArrowMode;

/// Deepest nesting of parentheses allowed in a permission expression.
pub(crate) const MAX_EXPRESSION_DEPTH: usize = 100;
/// Deepest nesting of generic caveat parameter types (`list<list<...>>`).
const MAX_TYPE_DEPTH: usize = 16;

/// Words that are never names.
const KEYWORDS: &[&str] = &[
    "definition",
    "caveat",
    "relation",
    "permission",
    "nil",
    "with",
];

/// `use` flags SpiceDB knows; `typechecking` is accepted and ignored.
const USE_FLAGS: &[&str] = &["expiration", "self", "typechecking"];

/// Marker: an error was recorded, the caller recovers.
struct Failed;

type PResult<T> = Result<T, Failed>;

/// Parses schema text into a syntax tree and every syntax error found.
pub(crate) fn parse(src: &str) -> (File, Vec<SchemaError>) {
    let mut lexer = Lexer::new(src);
    let current = lexer.next_token();
    let mut parser = Parser {
        lexer,
        current,
        errors: Vec::new(),
        use_expiration: false,
        use_self: false,
        seen_definition: false,
        file: File::default(),
    };
    parser.parse_file();
    (parser.file, parser.errors)
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    current: Token,
    errors: Vec<SchemaError>,
    use_expiration: bool,
    use_self: bool,
    seen_definition: bool,
    file: File,
}

impl Parser<'_> {
    fn advance(&mut self) -> Token {
        let next = self.lexer.next_token();
        std::mem::replace(&mut self.current, next)
    }

    fn is(&self, kind: &TokenKind) -> bool {
        &self.current.kind == kind
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(&self.current.kind, TokenKind::Ident(s) if s == word)
    }

    fn is_terminator(&self) -> bool {
        matches!(
            self.current.kind,
            TokenKind::Semicolon | TokenKind::SyntheticSemicolon
        )
    }

    fn is_reserved(&self, word: &str) -> bool {
        KEYWORDS.contains(&word)
            || (self.use_expiration && (word == "expiration" || word == "and"))
            || (self.use_self && word == "self")
    }

    fn error_at(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(SchemaError::at(pos, message));
    }

    /// Records "expected {what}, found ..." at the current token.
    fn expected(&mut self, what: &str) -> Failed {
        let found = self.current.kind.describe();
        let pos = self.current.pos;
        let message = match &self.current.kind {
            TokenKind::Error(msg) => msg.clone(),
            TokenKind::Ident(word) if self.is_reserved(word) => {
                format!("expected {what}, found keyword `{word}`")
            }
            _ => format!("expected {what}, found {found}"),
        };
        self.error_at(pos, message);
        Failed
    }

    fn expect(&mut self, kind: TokenKind, what: &str) -> PResult<Token> {
        if self.is(&kind) {
            Ok(self.advance())
        } else {
            Err(self.expected(what))
        }
    }

    /// A non-keyword identifier.
    fn identifier(&mut self, what: &str) -> PResult<Name> {
        match &self.current.kind {
            TokenKind::Ident(word) if !self.is_reserved(word) => {
                let name = Name {
                    text: word.clone(),
                    pos: self.current.pos,
                };
                self.advance();
                Ok(name)
            }
            _ => Err(self.expected(what)),
        }
    }

    /// `segment(/segment)*`, as one name.
    fn type_path(&mut self, what: &str) -> PResult<Name> {
        let mut name = self.identifier(what)?;
        while self.is(&TokenKind::Slash) {
            self.advance();
            let segment = self.identifier(what)?;
            name.text.push('/');
            name.text.push_str(&segment.text);
        }
        Ok(name)
    }

    fn parse_file(&mut self) {
        loop {
            match &self.current.kind {
                TokenKind::Eof => return,
                TokenKind::Semicolon | TokenKind::SyntheticSemicolon => {
                    self.advance();
                }
                TokenKind::Ident(word) if word == "use" => self.parse_use(),
                TokenKind::Ident(word) if word == "definition" => {
                    self.seen_definition = true;
                    self.parse_definition();
                }
                TokenKind::Ident(word) if word == "caveat" => {
                    self.seen_definition = true;
                    if self.parse_caveat().is_err() {
                        self.recover_top_level();
                    }
                }
                _ => {
                    self.expected("`definition`, `caveat` or `use`");
                    self.advance();
                    self.recover_top_level();
                }
            }
        }
    }

    /// Skips to the next `definition`, `caveat` or `use`.
    fn recover_top_level(&mut self) {
        loop {
            match &self.current.kind {
                TokenKind::Eof => return,
                TokenKind::Ident(word)
                    if word == "definition" || word == "caveat" || word == "use" =>
                {
                    return
                }
                _ => {
                    self.advance();
                }
            }
        }
    }

    /// Skips to the end of the statement (consumed), a `}`, or a `definition` / `caveat`.
    fn recover_member(&mut self) {
        loop {
            match &self.current.kind {
                TokenKind::Eof | TokenKind::RBrace => return,
                TokenKind::Semicolon | TokenKind::SyntheticSemicolon => {
                    self.advance();
                    return;
                }
                TokenKind::Ident(word) if word == "definition" || word == "caveat" => return,
                _ => {
                    self.advance();
                }
            }
        }
    }

    fn parse_use(&mut self) {
        self.advance();
        let flag = match &self.current.kind {
            TokenKind::Ident(word) => Name {
                text: word.clone(),
                pos: self.current.pos,
            },
            _ => {
                self.expected("a flag name after `use`");
                self.recover_top_level();
                return;
            }
        };
        self.advance();
        if !USE_FLAGS.contains(&flag.text.as_str()) {
            self.error_at(
                flag.pos,
                format!(
                    "unknown use flag `{}`; options are: {}",
                    flag.text,
                    USE_FLAGS.join(", ")
                ),
            );
            return;
        }
        if self.seen_definition {
            self.error_at(
                flag.pos,
                "`use` expressions must be declared before any definition",
            );
            return;
        }
        match flag.text.as_str() {
            "expiration" => self.use_expiration = true,
            "self" => self.use_self = true,
            _ => {}
        }
        self.file.uses.push(flag);
    }

    fn parse_definition(&mut self) {
        self.advance();
        let Ok(name) = self.type_path("a definition name") else {
            self.recover_top_level();
            return;
        };
        if self.expect(TokenKind::LBrace, "`{`").is_err() {
            self.recover_top_level();
            return;
        }
        let mut definition = DefinitionAst {
            name,
            members: Vec::new(),
        };
        loop {
            let member = match &self.current.kind {
                TokenKind::RBrace => {
                    self.advance();
                    break;
                }
                TokenKind::Semicolon | TokenKind::SyntheticSemicolon => {
                    self.advance();
                    continue;
                }
                TokenKind::Eof => {
                    let message = format!(
                        "expected `}}` to close definition `{}`, found end of input",
                        definition.name.text
                    );
                    self.error_at(self.current.pos, message);
                    break;
                }
                TokenKind::Ident(word) if word == "definition" || word == "caveat" => {
                    let message = format!(
                        "expected `}}` to close definition `{}`, found `{word}`",
                        definition.name.text
                    );
                    self.error_at(self.current.pos, message);
                    break;
                }
                TokenKind::Ident(word) if word == "relation" => self.parse_relation(),
                TokenKind::Ident(word) if word == "permission" => self.parse_permission(),
                _ => Err(self.expected("`relation`, `permission` or `}`")),
            };
            match member {
                Ok(member) => {
                    definition.members.push(member);
                    if self.is_terminator() {
                        self.advance();
                    } else if !matches!(self.current.kind, TokenKind::RBrace | TokenKind::Eof) {
                        self.expected("end of statement");
                        self.recover_member();
                    }
                }
                Err(Failed) => self.recover_member(),
            }
        }
        self.file.definitions.push(definition);
    }

    fn parse_relation(&mut self) -> PResult<MemberAst> {
        self.advance();
        let name = self.identifier("a relation name")?;
        self.expect(TokenKind::Colon, "`:` after the relation name")?;
        let mut allowed = vec![self.parse_allowed()?];
        while self.is(&TokenKind::Pipe) {
            self.advance();
            allowed.push(self.parse_allowed()?);
        }
        Ok(MemberAst::Relation { name, allowed })
    }

    fn parse_allowed(&mut self) -> PResult<AllowedAst> {
        let subject_type = self.type_path("a subject type")?;
        let mut kind = AllowedKindAst::Direct;
        if self.is(&TokenKind::Colon) {
            self.advance();
            self.expect(TokenKind::Star, "`*` after `:`")?;
            kind = AllowedKindAst::Wildcard;
            if self.is(&TokenKind::Hash) {
                let pos = self.current.pos;
                self.error_at(
                    pos,
                    "a wildcard subject type cannot have a subject relation",
                );
                return Err(Failed);
            }
        } else if self.is(&TokenKind::Hash) {
            self.advance();
            if self.is(&TokenKind::Ellipsis) {
                self.advance();
            } else {
                kind = AllowedKindAst::SubjectSet(self.identifier("a relation name after `#`")?);
            }
        }
        let mut allowed = AllowedAst {
            subject_type,
            kind,
            caveat: None,
            expiration: false,
        };
        if !self.is_word("with") {
            return Ok(allowed);
        }
        self.advance();
        if self.use_expiration && self.is_word("expiration") {
            self.advance();
            allowed.expiration = true;
            if self.is_word("and") {
                let pos = self.current.pos;
                self.error_at(
                    pos,
                    "the caveat must come before expiration, e.g. `with caveat_name and expiration`",
                );
                return Err(Failed);
            }
            return Ok(allowed);
        }
        allowed.caveat = Some(self.type_path("a caveat name after `with`")?);
        if self.use_expiration && self.is_word("and") {
            self.advance();
            if !self.is_word("expiration") {
                return Err(self.expected("`expiration` after `and`"));
            }
            self.advance();
            allowed.expiration = true;
        } else if !self.use_expiration && self.is_word("and") {
            let pos = self.current.pos;
            self.error_at(
                pos,
                "found `and` after the caveat name: `with caveat_name and expiration` needs `use expiration`",
            );
            return Err(Failed);
        }
        Ok(allowed)
    }

    fn parse_permission(&mut self) -> PResult<MemberAst> {
        self.advance();
        let name = self.identifier("a permission name")?;
        if self.is(&TokenKind::Colon) {
            // Type annotation (`permission p: user | team = ...`): read and ignored.
            self.advance();
            self.type_path("a type in the permission's type annotation")?;
            while self.is(&TokenKind::Pipe) {
                self.advance();
                self.type_path("a type after `|`")?;
            }
        }
        self.expect(TokenKind::Equals, "`=` after the permission name")?;
        let expr = self.parse_expr(0)?;
        Ok(MemberAst::Permission { name, expr })
    }

    /// Exclusion level: loosest, left-associative.
    fn parse_expr(&mut self, depth: usize) -> PResult<ExprAst> {
        if depth > MAX_EXPRESSION_DEPTH {
            let pos = self.current.pos;
            self.error_at(
                pos,
                format!("expression nesting is too deep (more than {MAX_EXPRESSION_DEPTH} levels)"),
            );
            return Err(Failed);
        }
        let mut left = self.parse_intersection(depth)?;
        while self.is(&TokenKind::Minus) {
            self.advance();
            let right = self.parse_intersection(depth)?;
            left = ExprAst::Exclusion(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_intersection(&mut self, depth: usize) -> PResult<ExprAst> {
        let first = self.parse_union(depth)?;
        if !self.is(&TokenKind::Amp) {
            return Ok(first);
        }
        let mut items = Vec::new();
        push_flat_intersection(&mut items, first);
        while self.is(&TokenKind::Amp) {
            self.advance();
            let next = self.parse_union(depth)?;
            push_flat_intersection(&mut items, next);
        }
        Ok(ExprAst::Intersection(items))
    }

    fn parse_union(&mut self, depth: usize) -> PResult<ExprAst> {
        let first = self.parse_arrow(depth)?;
        if !self.is(&TokenKind::Plus) {
            return Ok(first);
        }
        let mut items = Vec::new();
        push_flat_union(&mut items, first);
        while self.is(&TokenKind::Plus) {
            self.advance();
            let next = self.parse_arrow(depth)?;
            push_flat_union(&mut items, next);
        }
        Ok(ExprAst::Union(items))
    }

    fn parse_arrow(&mut self, depth: usize) -> PResult<ExprAst> {
        match &self.current.kind {
            TokenKind::LParen => {
                self.advance();
                let inner = self.parse_expr(depth + 1)?;
                self.expect(TokenKind::RParen, "`)`")?;
                Ok(inner)
            }
            TokenKind::Ident(word) if word == "nil" => {
                self.advance();
                Ok(ExprAst::Nil)
            }
            TokenKind::Ident(word) if word == "self" && self.use_self => {
                self.advance();
                Ok(ExprAst::SelfRef)
            }
            TokenKind::Ident(_) => {
                let name = self.identifier("a relation or permission name")?;
                let mut expr = ExprAst::Ident(name);
                while matches!(self.current.kind, TokenKind::Arrow | TokenKind::Period) {
                    let operator = self.advance();
                    let (computed, mode) = if operator.kind == TokenKind::Arrow {
                        (
                            self.identifier("a relation or permission name after `->`")?,
                            ArrowMode::Any,
                        )
                    } else {
                        let function = self.identifier("`any` or `all` after `.`")?;
                        let mode = match function.text.as_str() {
                            "any" => ArrowMode::Any,
                            "all" => ArrowMode::All,
                            other => {
                                self.error_at(
                                    function.pos,
                                    format!("expected `any` or `all` after `.`, found `{other}`"),
                                );
                                return Err(Failed);
                            }
                        };
                        self.expect(TokenKind::LParen, "`(`")?;
                        let computed = self.identifier("a relation or permission name")?;
                        self.expect(TokenKind::RParen, "`)`")?;
                        (computed, mode)
                    };
                    let ExprAst::Ident(tupleset) = expr else {
                        self.error_at(operator.pos, "nested arrows are not supported");
                        return Err(Failed);
                    };
                    expr = ExprAst::Arrow {
                        tupleset,
                        computed,
                        mode,
                    };
                }
                Ok(expr)
            }
            _ => Err(self.expected("a relation, permission, `nil` or `(`")),
        }
    }

    fn parse_caveat(&mut self) -> PResult<()> {
        self.advance();
        let name = self.type_path("a caveat name")?;
        self.expect(TokenKind::LParen, "`(` after the caveat name")?;
        let mut params = Vec::new();
        if !self.is(&TokenKind::RParen) {
            loop {
                let param = self.identifier("a parameter name")?;
                let ty = self.parse_type_ref(0)?;
                params.push((param, ty));
                if !self.is(&TokenKind::Comma) {
                    break;
                }
                self.advance();
            }
        }
        self.expect(TokenKind::RParen, "`,` or `)` in the parameter list")?;
        if !self.is(&TokenKind::LBrace) {
            return Err(self.expected("`{` to start the caveat expression"));
        }
        // The lexer stands right after `{`: take the raw CEL text from there.
        let cel = self.lexer.capture_cel();
        self.current = self.lexer.next_token();
        if !cel.closed {
            self.error_at(
                cel.end,
                format!("expected `}}` to close caveat `{}`", name.text),
            );
        } else if cel.text.is_empty() {
            self.error_at(
                cel.pos,
                format!("missing caveat expression for caveat `{}`", name.text),
            );
        }
        self.file.caveats.push(CaveatAst {
            name,
            params,
            expression: cel.text,
            expression_pos: cel.pos,
        });
        Ok(())
    }

    fn parse_type_ref(&mut self, depth: usize) -> PResult<TypeRefAst> {
        if depth > MAX_TYPE_DEPTH {
            let pos = self.current.pos;
            self.error_at(pos, "caveat parameter type is nested too deeply");
            return Err(Failed);
        }
        let name = self.identifier("a parameter type")?;
        let mut args = Vec::new();
        if self.is(&TokenKind::Lt) {
            self.advance();
            loop {
                args.push(self.parse_type_ref(depth + 1)?);
                if !self.is(&TokenKind::Comma) {
                    break;
                }
                self.advance();
            }
            self.expect(TokenKind::Gt, "`>`")?;
        }
        Ok(TypeRefAst { name, args })
    }
}

fn push_flat_union(items: &mut Vec<ExprAst>, expr: ExprAst) {
    match expr {
        ExprAst::Union(children) => items.extend(children),
        other => items.push(other),
    }
}

fn push_flat_intersection(items: &mut Vec<ExprAst>, expr: ExprAst) {
    match expr {
        ExprAst::Intersection(children) => items.extend(children),
        other => items.push(other),
    }
}

//! Random worlds for differential testing: a schema in SpiceDB's language and relationships
//! drawn from small id pools (so paths connect and cycles occur), built from a seed.
//!
//! A world is kept as structure, not text, so a shrinker can drop relationships, members and
//! expression branches and print the smaller world again.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};
use serde_json::{json, Map, Value};

/// A seeded source of small random choices.
pub struct Dice(TestRng);

impl Dice {
    /// The same choices for the same seed, on every machine.
    pub fn new(seed: u64) -> Self {
        let mut bytes = [0u8; 32];
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&(seed ^ (i as u64).wrapping_mul(0x9E37_79B9)).to_le_bytes());
        }
        Dice(TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }

    /// True `num` times in `den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    /// One item of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Ids of users that relationships name.
pub const USERS: [&str; 3] = ["ann", "bob", "cat"];
/// A user no relationship names: reaches resources only through wildcards.
pub const STRANGER: &str = "zed";
/// Ids of every other type's objects.
pub const OBJECTS: [&str; 3] = ["a", "b", "c"];
/// The types that hold relationships (besides `user`), in the order worlds take them.
pub const RESOURCE_TYPES: [&str; 3] = ["team", "folder", "doc"];
/// An expiration in the past and one far in the future.
pub const PAST: &str = "2020-01-01T00:00:00Z";
/// See [`PAST`].
pub const FUTURE: &str = "2300-01-01T00:00:00Z";

/// A caveat parameter type of SpiceDB's caveat language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Int,
    Uint,
    Double,
    Str,
    Bool,
    ListInt,
    MapInt,
    Timestamp,
    Duration,
    IpAddress,
}

const PARAM_TYPES: [ParamType; 10] = [
    ParamType::Int,
    ParamType::Uint,
    ParamType::Double,
    ParamType::Str,
    ParamType::Bool,
    ParamType::ListInt,
    ParamType::MapInt,
    ParamType::Timestamp,
    ParamType::Duration,
    ParamType::IpAddress,
];

impl ParamType {
    fn schema_name(self) -> &'static str {
        match self {
            ParamType::Int => "int",
            ParamType::Uint => "uint",
            ParamType::Double => "double",
            ParamType::Str => "string",
            ParamType::Bool => "bool",
            ParamType::ListInt => "list<int>",
            ParamType::MapInt => "map<int>",
            ParamType::Timestamp => "timestamp",
            ParamType::Duration => "duration",
            ParamType::IpAddress => "ipaddress",
        }
    }

    /// A condition on parameter `p` that some values meet and others do not.
    fn condition(self, p: &str) -> String {
        match self {
            ParamType::Int => format!("{p} > 5"),
            // SpiceDB's CEL types a `uint` parameter as int: `p > 5u` does not compile there.
            ParamType::Uint => format!("{p} > 5"),
            ParamType::Double => format!("{p} > 1.5"),
            ParamType::Str => format!("{p} == \"a\""),
            ParamType::Bool => p.to_string(),
            ParamType::ListInt => format!("3 in {p}"),
            ParamType::MapInt => format!("\"k\" in {p}"),
            ParamType::Timestamp => format!("{p} < timestamp(\"2030-01-01T00:00:00Z\")"),
            ParamType::Duration => format!("{p} > duration(\"1h\")"),
            ParamType::IpAddress => format!("{p}.in_cidr(\"10.0.0.0/8\")"),
        }
    }

    /// A JSON value of this type (as context carries it).
    fn value(self, dice: &mut Dice) -> Value {
        let yes = dice.chance(1, 2);
        match self {
            ParamType::Int | ParamType::Uint => json!(if yes { 7 } else { 2 }),
            ParamType::Double => json!(if yes { 2.5 } else { 0.5 }),
            ParamType::Str => json!(if yes { "a" } else { "b" }),
            ParamType::Bool => json!(yes),
            ParamType::ListInt => json!(if yes { vec![1, 3] } else { vec![2] }),
            ParamType::MapInt => {
                if yes {
                    json!({"k": 1})
                } else {
                    json!({"j": 2})
                }
            }
            ParamType::Timestamp => json!(if yes {
                "2020-01-01T00:00:00Z"
            } else {
                "2040-01-01T00:00:00Z"
            }),
            ParamType::Duration => json!(if yes { "2h" } else { "30m" }),
            ParamType::IpAddress => json!(if yes { "10.1.2.3" } else { "192.168.1.1" }),
        }
    }
}

/// `caveat name(params) { expression }`.
#[derive(Debug, Clone)]
pub struct Caveat {
    pub name: String,
    pub params: Vec<(String, ParamType)>,
    pub expression: String,
}

/// What an allowed subject type admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectKind {
    /// `T`
    Plain,
    /// `T:*`
    Wildcard,
    /// `T#member`
    Set(String),
}

/// One allowed subject type of a relation.
#[derive(Debug, Clone)]
pub struct Allowed {
    pub subject_type: String,
    pub kind: SubjectKind,
    /// Index into [`World::caveats`].
    pub caveat: Option<usize>,
    pub expiration: bool,
}

/// `relation name: allowed | ...`.
#[derive(Debug, Clone)]
pub struct Relation {
    pub name: String,
    pub allowed: Vec<Allowed>,
}

/// How an arrow combines the objects its relation points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrowMode {
    /// `r->m`
    Plain,
    /// `r.any(m)`
    Any,
    /// `r.all(m)`
    All,
}

/// A permission expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A relation or permission of the same definition.
    Ref(String),
    /// Through the objects of a relation to one of their members.
    Arrow {
        tupleset: String,
        mode: ArrowMode,
        computed: String,
    },
    /// `nil`
    Nil,
    /// `self`: the resource itself, as a subject of its own type.
    SelfRef,
    /// `a + b`, `a & b` or `a - b`.
    Op(char, Box<Expr>, Box<Expr>),
}

impl Expr {
    fn text(&self) -> String {
        match self {
            Expr::Ref(name) => name.clone(),
            Expr::Arrow {
                tupleset,
                mode,
                computed,
            } => match mode {
                ArrowMode::Plain => format!("{tupleset}->{computed}"),
                ArrowMode::Any => format!("{tupleset}.any({computed})"),
                ArrowMode::All => format!("{tupleset}.all({computed})"),
            },
            Expr::Nil => "nil".to_string(),
            Expr::SelfRef => "self".to_string(),
            Expr::Op(op, a, b) => format!("({} {op} {})", a.text(), b.text()),
        }
    }

    /// Every name the expression uses in its own definition.
    fn uses(&self, out: &mut BTreeSet<String>) {
        match self {
            Expr::Ref(name) => {
                out.insert(name.clone());
            }
            Expr::Arrow { tupleset, .. } => {
                out.insert(tupleset.clone());
            }
            Expr::Nil | Expr::SelfRef => {}
            Expr::Op(_, a, b) => {
                a.uses(out);
                b.uses(out);
            }
        }
    }

    /// Every expression one step simpler: a node replaced by one of its operands, or by nil.
    pub fn simpler(&self) -> Vec<Expr> {
        let mut out = Vec::new();
        match self {
            Expr::Nil => {}
            Expr::Op(op, a, b) => {
                out.push((**a).clone());
                out.push((**b).clone());
                for a2 in a.simpler() {
                    out.push(Expr::Op(*op, Box::new(a2), b.clone()));
                }
                for b2 in b.simpler() {
                    out.push(Expr::Op(*op, a.clone(), Box::new(b2)));
                }
            }
            _ => out.push(Expr::Nil),
        }
        out
    }
}

/// `permission name = expr`.
#[derive(Debug, Clone)]
pub struct Permission {
    pub name: String,
    pub expr: Expr,
}

/// `definition name { ... }`.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub relations: Vec<Relation>,
    pub permissions: Vec<Permission>,
}

impl Definition {
    /// Whether one of its permissions names `self`, so its own objects are subjects.
    pub fn names_self(&self) -> bool {
        fn in_expr(expr: &Expr) -> bool {
            match expr {
                Expr::SelfRef => true,
                Expr::Op(_, a, b) => in_expr(a) || in_expr(b),
                _ => false,
            }
        }
        self.permissions.iter().any(|p| in_expr(&p.expr))
    }

    /// Every relation and permission name.
    pub fn members(&self) -> Vec<String> {
        self.relations
            .iter()
            .map(|r| r.name.clone())
            .chain(self.permissions.iter().map(|p| p.name.clone()))
            .collect()
    }
}

/// One relationship, with its caveat and expiration.
#[derive(Debug, Clone, PartialEq)]
pub struct Rel {
    pub resource_type: String,
    pub resource_id: String,
    pub relation: String,
    pub subject_type: String,
    pub subject_id: String,
    pub subject_relation: Option<String>,
    pub caveat: Option<(String, Map<String, Value>)>,
    pub expiration: Option<&'static str>,
}

impl Rel {
    /// `type:id#relation@subject[caveat:{context}][expiration:time]`.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{}:{}#{}@{}:{}",
            self.resource_type, self.resource_id, self.relation, self.subject_type, self.subject_id
        );
        if let Some(r) = &self.subject_relation {
            let _ = write!(s, "#{r}");
        }
        if let Some((name, context)) = &self.caveat {
            if context.is_empty() {
                let _ = write!(s, "[{name}]");
            } else {
                let _ = write!(s, "[{name}:{}]", Value::Object(context.clone()));
            }
        }
        if let Some(at) = self.expiration {
            let _ = write!(s, "[expiration:{at}]");
        }
        s
    }
}

/// A schema and its relationships.
#[derive(Debug, Clone)]
pub struct World {
    pub caveats: Vec<Caveat>,
    pub definitions: Vec<Definition>,
    pub relationships: Vec<Rel>,
}

impl World {
    /// The schema in SpiceDB's language.
    pub fn schema(&self) -> String {
        let mut s = String::new();
        let expires = self
            .definitions
            .iter()
            .flat_map(|d| &d.relations)
            .flat_map(|r| &r.allowed)
            .any(|a| a.expiration);
        if expires {
            s.push_str("use expiration\n");
        }
        if self.uses_self() {
            s.push_str("use self\n");
        }
        if expires || self.uses_self() {
            s.push('\n');
        }
        for caveat in &self.caveats {
            let params: Vec<String> = caveat
                .params
                .iter()
                .map(|(name, ty)| format!("{name} {}", ty.schema_name()))
                .collect();
            let _ = writeln!(
                s,
                "caveat {}({}) {{\n  {}\n}}\n",
                caveat.name,
                params.join(", "),
                caveat.expression
            );
        }
        for def in &self.definitions {
            if def.relations.is_empty() && def.permissions.is_empty() {
                let _ = writeln!(s, "definition {} {{}}\n", def.name);
                continue;
            }
            let _ = writeln!(s, "definition {} {{", def.name);
            for rel in &def.relations {
                let allowed: Vec<String> =
                    rel.allowed.iter().map(|a| self.allowed_text(a)).collect();
                let _ = writeln!(s, "  relation {}: {}", rel.name, allowed.join(" | "));
            }
            for perm in &def.permissions {
                let _ = writeln!(s, "  permission {} = {}", perm.name, perm.expr.text());
            }
            s.push_str("}\n\n");
        }
        s
    }

    /// Whether some permission names `self` (the schema then needs `use self`).
    fn uses_self(&self) -> bool {
        self.definitions.iter().any(Definition::names_self)
    }

    fn allowed_text(&self, a: &Allowed) -> String {
        let mut t = match &a.kind {
            SubjectKind::Plain => a.subject_type.clone(),
            SubjectKind::Wildcard => format!("{}:*", a.subject_type),
            SubjectKind::Set(m) => format!("{}#{m}", a.subject_type),
        };
        match (a.caveat, a.expiration) {
            (Some(c), true) => {
                let _ = write!(t, " with {} and expiration", self.caveats[c].name);
            }
            (Some(c), false) => {
                let _ = write!(t, " with {}", self.caveats[c].name);
            }
            (None, true) => t.push_str(" with expiration"),
            (None, false) => {}
        }
        t
    }

    /// The relationships, one text line each.
    pub fn relationship_lines(&self) -> Vec<String> {
        self.relationships.iter().map(Rel::text).collect()
    }

    /// Every (type, member) used as a subject set somewhere in the schema.
    pub fn subject_sets(&self) -> BTreeSet<(String, String)> {
        self.allowed()
            .filter_map(|a| match &a.kind {
                SubjectKind::Set(m) => Some((a.subject_type.clone(), m.clone())),
                _ => None,
            })
            .collect()
    }

    fn allowed(&self) -> impl Iterator<Item = &Allowed> {
        self.definitions
            .iter()
            .flat_map(|d| &d.relations)
            .flat_map(|r| &r.allowed)
    }

    /// A random context for the world's caveat parameters: some, all or none of them.
    pub fn random_context(&self, dice: &mut Dice) -> Map<String, Value> {
        let mut context = Map::new();
        for caveat in &self.caveats {
            for (name, ty) in &caveat.params {
                if dice.chance(2, 3) {
                    context.insert(name.clone(), ty.value(dice));
                }
            }
        }
        context
    }

    /// Whether a member of `def` is named anywhere other than its own declaration.
    pub fn is_used(&self, def: &str, member: &str) -> bool {
        for d in &self.definitions {
            for p in &d.permissions {
                if d.name == def && p.name == member {
                    continue;
                }
                let mut uses = BTreeSet::new();
                p.expr.uses(&mut uses);
                if d.name == def && uses.contains(member) {
                    return true;
                }
                if arrow_computes(&p.expr, member) {
                    return true;
                }
            }
            for r in &d.relations {
                for a in &r.allowed {
                    if a.subject_type == def && a.kind == SubjectKind::Set(member.to_string()) {
                        return true;
                    }
                }
            }
        }
        self.relationships.iter().any(|r| {
            (r.resource_type == def && r.relation == member)
                || (r.subject_type == def && r.subject_relation.as_deref() == Some(member))
        })
    }

    /// A random world.
    pub fn generate(seed: u64) -> World {
        let mut dice = Dice::new(seed);
        let caveats = (0..dice.below(3))
            .map(|i| {
                let params: Vec<(String, ParamType)> = (0..1 + dice.below(2))
                    .map(|j| (format!("p{i}{j}"), *dice.pick(&PARAM_TYPES)))
                    .collect();
                let conditions: Vec<String> =
                    params.iter().map(|(name, ty)| ty.condition(name)).collect();
                let joiner = if dice.chance(1, 2) { " && " } else { " || " };
                Caveat {
                    // Named by the seed too: worlds share one SpiceDB, which refuses to change
                    // a caveat parameter's type.
                    name: format!("cav{i}s{seed}"),
                    params,
                    expression: conditions.join(joiner),
                }
            })
            .collect::<Vec<_>>();
        let names = RESOURCE_TYPES;
        let count = 2 + dice.below(2);
        // Member names first, so allowed subject sets and arrows can name any of them.
        let shapes: Vec<(String, usize, usize)> = names[..count]
            .iter()
            .map(|n| (n.to_string(), 1 + dice.below(3), dice.below(3)))
            .collect();
        let members_of = |ty: &str| -> Vec<String> {
            shapes
                .iter()
                .find(|(n, _, _)| n == ty)
                .map(|(_, r, p)| {
                    (0..*r)
                        .map(|i| format!("rel{i}"))
                        .chain((0..*p).map(|i| format!("per{i}")))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut definitions = vec![Definition {
            name: "user".to_string(),
            relations: Vec::new(),
            permissions: Vec::new(),
        }];
        for (name, relation_count, permission_count) in &shapes {
            let mut relations = Vec::new();
            for i in 0..*relation_count {
                let mut allowed: Vec<Allowed> = Vec::new();
                for _ in 0..1 + dice.below(3) {
                    let (subject_type, kind) = match dice.below(6) {
                        0 | 1 => ("user".to_string(), SubjectKind::Plain),
                        2 => ("user".to_string(), SubjectKind::Wildcard),
                        3 => (dice.pick(&shapes).0.clone(), SubjectKind::Plain),
                        _ => {
                            let ty = dice.pick(&shapes).0.clone();
                            let member = dice.pick(&members_of(&ty)).clone();
                            (ty, SubjectKind::Set(member))
                        }
                    };
                    if allowed
                        .iter()
                        .any(|a| a.subject_type == subject_type && a.kind == kind)
                    {
                        continue;
                    }
                    let caveat = (!caveats.is_empty() && dice.chance(1, 4))
                        .then(|| dice.below(caveats.len()));
                    let expiration = dice.chance(1, 6);
                    allowed.push(Allowed {
                        subject_type,
                        kind,
                        caveat,
                        expiration,
                    });
                }
                relations.push(Relation {
                    name: format!("rel{i}"),
                    allowed,
                });
            }
            let mut permissions = Vec::new();
            for i in 0..*permission_count {
                // Relations, earlier permissions, and arrows over relations that point at
                // objects with members (never over a relation allowing a wildcard).
                let mut leaves: Vec<Expr> = relations
                    .iter()
                    .map(|r| Expr::Ref(r.name.clone()))
                    .collect();
                leaves.extend((0..i).map(|j| Expr::Ref(format!("per{j}"))));
                // `self` in one permission in five: the object is its own subject.
                if dice.chance(1, 5) {
                    leaves.push(Expr::SelfRef);
                }
                for r in &relations {
                    if r.allowed.iter().any(|a| a.kind == SubjectKind::Wildcard) {
                        continue;
                    }
                    let targets: Vec<&Allowed> = r
                        .allowed
                        .iter()
                        .filter(|a| a.subject_type != "user")
                        .collect();
                    if targets.is_empty() {
                        continue;
                    }
                    let target = dice.pick(&targets).subject_type.clone();
                    let computed = dice.pick(&members_of(&target)).clone();
                    let mode = *dice.pick(&[ArrowMode::Plain, ArrowMode::Any, ArrowMode::All]);
                    leaves.push(Expr::Arrow {
                        tupleset: r.name.clone(),
                        mode,
                        computed,
                    });
                }
                let expr = random_expr(&mut dice, &leaves, 2);
                permissions.push(Permission {
                    name: format!("per{i}"),
                    expr,
                });
            }
            definitions.push(Definition {
                name: name.clone(),
                relations,
                permissions,
            });
        }
        let mut world = World {
            caveats,
            definitions,
            relationships: Vec::new(),
        };
        world.drop_wildcard_sets();
        world.relationships = random_relationships(&world, &mut dice);
        world
    }
}

impl World {
    /// SpiceDB refuses a subject set `T#r` when relation `r` can hold a wildcard, directly or
    /// through further subject sets: such allowed types are dropped (a relation left with
    /// none allows `user`).
    fn drop_wildcard_sets(&mut self) {
        loop {
            let mut wild: BTreeSet<(String, String)> = BTreeSet::new();
            for d in &self.definitions {
                for r in &d.relations {
                    if r.allowed.iter().any(|a| a.kind == SubjectKind::Wildcard) {
                        wild.insert((d.name.clone(), r.name.clone()));
                    }
                }
            }
            let mut changed = true;
            while changed {
                changed = false;
                for d in &self.definitions {
                    for r in &d.relations {
                        let key = (d.name.clone(), r.name.clone());
                        if wild.contains(&key) {
                            continue;
                        }
                        let reaches = r.allowed.iter().any(|a| match &a.kind {
                            SubjectKind::Set(m) => {
                                wild.contains(&(a.subject_type.clone(), m.clone()))
                            }
                            _ => false,
                        });
                        if reaches {
                            wild.insert(key);
                            changed = true;
                        }
                    }
                }
            }
            let mut dropped = false;
            for d in &mut self.definitions {
                for r in &mut d.relations {
                    let before = r.allowed.len();
                    r.allowed.retain(|a| match &a.kind {
                        SubjectKind::Set(m) => !wild.contains(&(a.subject_type.clone(), m.clone())),
                        _ => true,
                    });
                    dropped |= r.allowed.len() != before;
                    if r.allowed.is_empty() {
                        r.allowed.push(Allowed {
                            subject_type: "user".to_string(),
                            kind: SubjectKind::Plain,
                            caveat: None,
                            expiration: false,
                        });
                    }
                }
            }
            if !dropped {
                return;
            }
        }
    }
}

fn arrow_computes(expr: &Expr, member: &str) -> bool {
    match expr {
        Expr::Arrow { computed, .. } => computed == member,
        Expr::Op(_, a, b) => arrow_computes(a, member) || arrow_computes(b, member),
        _ => false,
    }
}

fn random_expr(dice: &mut Dice, leaves: &[Expr], depth: usize) -> Expr {
    if depth == 0 || dice.chance(1, 3) {
        if dice.chance(1, 15) {
            return Expr::Nil;
        }
        return dice.pick(leaves).clone();
    }
    let op = *dice.pick(&['+', '+', '&', '-']);
    Expr::Op(
        op,
        Box::new(random_expr(dice, leaves, depth - 1)),
        Box::new(random_expr(dice, leaves, depth - 1)),
    )
}

/// Where an object sits in the order that keeps data acyclic: its type's place in the schema,
/// then its id's place in the pool.
fn rank(world: &World, ty: &str, id: &str) -> (usize, usize) {
    let t = world
        .definitions
        .iter()
        .position(|d| d.name == ty)
        .unwrap_or(usize::MAX);
    (
        t,
        OBJECTS.iter().position(|o| *o == id).unwrap_or(usize::MAX),
    )
}

/// Relationships between objects point down the [`rank`] order, except that one world in four
/// gets a single edge pointing back up, closing cycles. SpiceDB v1.54 has no cycle detection:
/// on data with several cycles its walk branches at every turn until its depth budget and may
/// not come back for minutes; one back edge keeps cycles in the tests without that.
fn random_relationships(world: &World, dice: &mut Dice) -> Vec<Rel> {
    let mut out: Vec<Rel> = Vec::new();
    let mut back_edges = usize::from(dice.chance(1, 4));
    for def in &world.definitions {
        for relation in &def.relations {
            for _ in 0..dice.below(5) {
                let allowed = dice.pick(&relation.allowed);
                let pool: &[&str] = if allowed.subject_type == "user" {
                    &USERS
                } else {
                    &OBJECTS
                };
                let (subject_id, subject_relation) = match &allowed.kind {
                    SubjectKind::Plain => (dice.pick(pool).to_string(), None),
                    SubjectKind::Wildcard => ("*".to_string(), None),
                    SubjectKind::Set(m) => (dice.pick(pool).to_string(), Some(m.clone())),
                };
                let caveat = allowed.caveat.map(|c| {
                    let caveat = &world.caveats[c];
                    let mut context = Map::new();
                    let how = dice.below(3);
                    for (k, (name, ty)) in caveat.params.iter().enumerate() {
                        // Full context, the first parameter only, or none.
                        if how == 0 || (how == 1 && k == 0) {
                            context.insert(name.clone(), ty.value(dice));
                        }
                    }
                    (caveat.name.clone(), context)
                });
                let expiration =
                    allowed
                        .expiration
                        .then(|| if dice.chance(1, 2) { PAST } else { FUTURE });
                let resource_id = dice.pick(&OBJECTS).to_string();
                if allowed.subject_type != "user"
                    && rank(world, &allowed.subject_type, &subject_id)
                        <= rank(world, &def.name, &resource_id)
                {
                    if back_edges == 0 {
                        continue;
                    }
                    back_edges -= 1;
                }
                let rel = Rel {
                    resource_type: def.name.clone(),
                    resource_id,
                    relation: relation.name.clone(),
                    subject_type: allowed.subject_type.clone(),
                    subject_id,
                    subject_relation,
                    caveat,
                    expiration,
                };
                let same = |r: &Rel| {
                    r.resource_type == rel.resource_type
                        && r.resource_id == rel.resource_id
                        && r.relation == rel.relation
                        && r.subject_type == rel.subject_type
                        && r.subject_id == rel.subject_id
                        && r.subject_relation == rel.subject_relation
                };
                if !out.iter().any(same) {
                    out.push(rel);
                }
            }
        }
    }
    out
}

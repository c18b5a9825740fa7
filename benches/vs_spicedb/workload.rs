//! The workloads both engines get: one schema, the relationships (Frontier-like org, a 30-level
//! group chain, one user in 1,000 groups) and the query lists, all from a fixed seed.

use std::collections::HashSet;

use zanzi::tuple::{ObjectRef, SubjectRef};

/// One schema for every workload: Frontier's shape (org, nested groups, projects, resources).
pub const SCHEMA: &str = "definition user {}

definition group {
    relation member: user | group#member
}

definition organization {
    relation admin: user
}

definition project {
    relation org: organization
    relation editor: user | group#member
    relation viewer: user | group#member
    permission edit = editor + org->admin
    permission view = viewer + edit
}

definition resource {
    relation project: project
    relation owner: user
    relation viewer: user | group#member
    permission edit = owner + project->edit
    permission view = viewer + edit + project->view
}
";

/// Levels of group nesting in the Frontier workload.
const GROUP_LEVELS: usize = 5;
/// Length of the group chain.
pub const CHAIN_DEPTH: usize = 30;
/// Groups the fan-out user belongs to.
pub const FAN_GROUPS: usize = 1_000;

/// How big the Frontier-like organisation is.
#[derive(Debug, Clone, Copy)]
pub struct FrontierSize {
    /// Users.
    pub users: usize,
    /// Groups, spread over five nesting levels.
    pub groups: usize,
    /// Projects.
    pub projects: usize,
    /// Resources.
    pub resources: usize,
}

impl FrontierSize {
    /// The size the issue asks for.
    pub const FULL: FrontierSize = FrontierSize {
        users: 10_000,
        groups: 1_000,
        projects: 10_000,
        resources: 100_000,
    };

    /// A 25th of it (about 10k relationships), where SpiceDB's memory datastore stays usable.
    pub const SMALL: FrontierSize = FrontierSize {
        users: 400,
        groups: 40,
        projects: 400,
        resources: 4_000,
    };

    /// `10,000 users, 1,000 groups, ...`.
    pub fn describe(&self) -> String {
        format!(
            "{} users, {} groups nested {GROUP_LEVELS} deep, {} projects, {} resources",
            thousands(self.users),
            thousands(self.groups),
            thousands(self.projects),
            thousands(self.resources)
        )
    }
}

/// `12345` → `12,345`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A check: does `subject` have `permission` on `resource`?
#[derive(Debug, Clone)]
pub struct CheckQuery {
    /// The resource.
    pub resource: ObjectRef,
    /// Permission or relation name.
    pub permission: String,
    /// The subject.
    pub subject: SubjectRef,
}

/// Which resources of a type may the subject reach?
#[derive(Debug, Clone)]
pub struct ResourcesQuery {
    /// Resource type.
    pub resource_type: String,
    /// Permission.
    pub permission: String,
    /// The subject.
    pub subject: SubjectRef,
}

/// Which users reach the resource?
#[derive(Debug, Clone)]
pub struct SubjectsQuery {
    /// The resource.
    pub resource: ObjectRef,
    /// Permission.
    pub permission: String,
    /// Subject type.
    pub subject_type: String,
}

/// The queries of one workload.
#[derive(Debug, Clone, Default)]
pub struct Queries {
    /// Permission checks that walk nested groups and arrows.
    pub nested_checks: Vec<CheckQuery>,
    /// Checks of a relation held directly (one stored relationship or none).
    pub direct_checks: Vec<CheckQuery>,
    /// Lookup-resources queries.
    pub resources: Vec<ResourcesQuery>,
    /// Lookup-subjects queries.
    pub subjects: Vec<SubjectsQuery>,
}

/// Relationships (text form, no duplicates) and the queries over them.
#[derive(Debug, Default)]
pub struct Workload {
    /// Relationships in load order.
    pub relationships: Vec<String>,
    /// Queries.
    pub queries: Queries,
}

/// A small deterministic generator (xorshift), so the data is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        // n is far below u64::MAX; the result is below n, so it fits in usize.
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Collects relationships, dropping repeats (random picks can repeat).
#[derive(Default)]
struct Relationships {
    seen: HashSet<String>,
    list: Vec<String>,
}

impl Relationships {
    fn add(&mut self, text: String) {
        if self.seen.insert(text.clone()) {
            self.list.push(text);
        }
    }
}

fn object(object_type: &str, id: &str) -> ObjectRef {
    ObjectRef::new_unchecked(object_type, id)
}

fn user(id: &str) -> SubjectRef {
    SubjectRef {
        object: object("user", id),
        relation: None,
    }
}

fn check(resource: ObjectRef, permission: &str, subject: SubjectRef) -> CheckQuery {
    CheckQuery {
        resource,
        permission: permission.to_string(),
        subject,
    }
}

fn resources_of(subject: SubjectRef) -> ResourcesQuery {
    ResourcesQuery {
        resource_type: "resource".to_string(),
        permission: "view".to_string(),
        subject,
    }
}

fn users_of(resource: ObjectRef) -> SubjectsQuery {
    SubjectsQuery {
        resource,
        permission: "view".to_string(),
        subject_type: "user".to_string(),
    }
}

/// A Frontier-like organisation: users in groups nested five levels deep, projects in orgs
/// shared with groups, resources in projects with owners and some shared with a group.
/// `queries` is how many queries of each kind to draw.
pub fn frontier(size: FrontierSize, queries: usize) -> Workload {
    let mut rng = Rng(0x5eed_f00d);
    let mut rels = Relationships::default();
    let per_level = (size.groups / GROUP_LEVELS).max(1);
    let level_of = |g: usize| (g / per_level).min(GROUP_LEVELS - 1);

    // Level-0 groups hold users; each user is also in one random group of any level.
    let mut level0_users: Vec<Vec<usize>> = vec![Vec::new(); per_level];
    for u in 0..size.users {
        let g = u % per_level;
        level0_users[g].push(u);
        rels.add(format!("group:g{g}#member@user:u{u}"));
        let extra = rng.below(size.groups);
        rels.add(format!("group:g{extra}#member@user:u{u}"));
    }
    // A group of level l > 0 contains two groups of level l - 1.
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); size.groups];
    for (g, kids) in children.iter_mut().enumerate() {
        let level = level_of(g);
        if level == 0 {
            continue;
        }
        for _ in 0..2 {
            let child = (level - 1) * per_level + rng.below(per_level);
            kids.push(child);
            rels.add(format!("group:g{g}#member@group:g{child}#member"));
        }
    }
    // Organisations of 500 projects, each with two admins.
    let orgs = size.projects.div_ceil(500).max(1);
    for o in 0..orgs {
        for _ in 0..2 {
            rels.add(format!(
                "organization:o{o}#admin@user:u{}",
                rng.below(size.users)
            ));
        }
    }
    // Projects: an org, a viewer group, an editor group, and a direct editor on every fifth.
    let mut project_viewers = Vec::with_capacity(size.projects);
    for p in 0..size.projects {
        rels.add(format!("project:p{p}#org@organization:o{}", p % orgs));
        let viewers = rng.below(size.groups);
        project_viewers.push(viewers);
        rels.add(format!("project:p{p}#viewer@group:g{viewers}#member"));
        rels.add(format!(
            "project:p{p}#editor@group:g{}#member",
            rng.below(size.groups)
        ));
        if p % 5 == 0 {
            rels.add(format!(
                "project:p{p}#editor@user:u{}",
                rng.below(size.users)
            ));
        }
    }
    // Resources: a project and an owner each; every fifth is also shared with a group.
    let mut resource_project = Vec::with_capacity(size.resources);
    let mut resource_owner = Vec::with_capacity(size.resources);
    for r in 0..size.resources {
        let p = rng.below(size.projects);
        let owner = rng.below(size.users);
        resource_project.push(p);
        resource_owner.push(owner);
        rels.add(format!("resource:r{r}#project@project:p{p}"));
        rels.add(format!("resource:r{r}#owner@user:u{owner}"));
        if r % 5 == 0 {
            rels.add(format!(
                "resource:r{r}#viewer@group:g{}#member",
                rng.below(size.groups)
            ));
        }
    }

    // A user who reaches group `g` through its nesting: walk down to a level-0 group.
    let member_of = |mut g: usize, rng: &mut Rng| -> usize {
        while !children[g].is_empty() {
            g = children[g][rng.below(children[g].len())];
        }
        let users = &level0_users[g % per_level];
        users
            .get(rng.below(users.len()))
            .copied()
            .unwrap_or_default()
    };

    let mut q = Queries::default();
    for i in 0..queries {
        let r = rng.below(size.resources);
        let resource = object("resource", &format!("r{r}"));
        // Half the nested checks name a user the project's viewer group reaches; half a
        // random user (mostly a "no", which walks the whole tree).
        let who = if i % 2 == 0 {
            member_of(project_viewers[resource_project[r]], &mut rng)
        } else {
            rng.below(size.users)
        };
        q.nested_checks
            .push(check(resource.clone(), "view", user(&format!("u{who}"))));
        let owner = if i % 2 == 0 {
            resource_owner[r]
        } else {
            rng.below(size.users)
        };
        q.direct_checks
            .push(check(resource.clone(), "owner", user(&format!("u{owner}"))));
        q.resources
            .push(resources_of(user(&format!("u{}", rng.below(size.users)))));
        q.subjects.push(users_of(resource));
    }
    Workload {
        relationships: rels.list,
        queries: q,
    }
}

/// A chain of 30 groups, each a member of the next; a resource is shared with the last one.
pub fn chain() -> Workload {
    let mut rels = Relationships::default();
    rels.add("group:chain0#member@user:chain_deep".to_string());
    rels.add(format!(
        "group:chain{}#member@user:chain_mid",
        CHAIN_DEPTH / 2
    ));
    for i in 1..CHAIN_DEPTH {
        rels.add(format!("group:chain{i}#member@group:chain{}#member", i - 1));
    }
    rels.add(format!(
        "resource:chain#viewer@group:chain{}#member",
        CHAIN_DEPTH - 1
    ));
    let resource = object("resource", "chain");
    let queries = Queries {
        nested_checks: vec![
            check(resource.clone(), "view", user("chain_deep")),
            check(resource.clone(), "view", user("chain_mid")),
            check(resource.clone(), "view", user("chain_outsider")),
        ],
        direct_checks: Vec::new(),
        resources: vec![resources_of(user("chain_deep"))],
        subjects: vec![users_of(resource)],
    };
    Workload {
        relationships: rels.list,
        queries,
    }
}

/// One user in 1,000 groups, each group sharing its own resource; one resource shared with
/// all 1,000 groups, whose other member sits in the last group only.
pub fn fan_out() -> Workload {
    let mut rels = Relationships::default();
    for g in 0..FAN_GROUPS {
        rels.add(format!("group:fan{g}#member@user:fan"));
        rels.add(format!("resource:fan{g}#viewer@group:fan{g}#member"));
        rels.add(format!("resource:fan_shared#viewer@group:fan{g}#member"));
    }
    rels.add(format!("group:fan{}#member@user:fan_last", FAN_GROUPS - 1));
    let shared = object("resource", "fan_shared");
    let queries = Queries {
        nested_checks: vec![
            check(shared.clone(), "view", user("fan_last")),
            check(shared.clone(), "view", user("fan_outsider")),
            check(
                object("resource", &format!("fan{}", FAN_GROUPS / 2)),
                "view",
                user("fan"),
            ),
        ],
        direct_checks: Vec::new(),
        resources: vec![resources_of(user("fan"))],
        subjects: vec![users_of(shared)],
    };
    Workload {
        relationships: rels.list,
        queries,
    }
}

/// Relationships for the write benchmark: new, one per call.
pub fn writes(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("resource:written{i}#viewer@user:writer{}", i % 97))
        .collect()
}

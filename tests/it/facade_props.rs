//! Access that must end, ends, as properties over random organizations built through the
//! facades' own endpoints (in-process, on a real RocksDB store): Frontier groups (some
//! disabled, some bound on other groups), Bitwarden-style groups (some with `accessAll`),
//! collections with group and direct grants, projects, custom resources owned by members,
//! roles of every scope. Every property is checked over every permission of every type of
//! the built-in schema, with lookup-resources and check.
//!
//! - Leaving: after `DELETE /v1beta1/organizations/{org}/users/{user}` the user reaches
//!   exactly what they reached before the organization existed (their other organization's
//!   objects, nothing of this one), and every other member reaches exactly what they did.
//! - Suspension: while the organization is disabled no member reaches any object through it
//!   (superusers keep everything); while SCIM says one user is not `active`, that user reaches
//!   nothing through it and everyone else keeps exactly what they had; enabling (or
//!   `active: true`) gives back exactly what was there.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use zanzi::engine::Permissionship;

use crate::facade_support::{InProcess, Reach, ROOT};

/// Random organizations per property.
const CASES: u32 = 200;

/// Flags of one collection access entry: `(readOnly, hidePasswords, manage)`, valid only.
fn flags() -> impl Strategy<Value = (bool, bool, bool)> {
    prop_oneof![
        Just((true, true, false)),
        Just((true, false, false)),
        Just((false, true, false)),
        Just((false, false, false)),
        Just((false, false, true)),
    ]
}

/// `(readOnly, hidePasswords, manage)`.
type Flags = (bool, bool, bool);
/// A Frontier group: members, extra owners, disabled.
type FrontierGroup = (Vec<usize>, Vec<usize>, bool);
/// A project: policies `(to a group?, user or group index, role)`, resources.
type ProjectPlan = (Vec<(bool, usize, u8)>, Vec<ResourcePlan>);
/// A custom resource: its creator, policies `(user, role)`.
type ResourcePlan = (usize, Vec<(usize, u8)>);
/// A Bitwarden-style group: members, entries `(collection, flags)`, accessAll.
type VaultGroupPlan = (Vec<usize>, Vec<(usize, Flags)>, bool);

/// What a random organization is made of; user 0 creates it, indexes name users.
#[derive(Debug, Clone)]
struct Plan {
    users: usize,
    /// Per user (from 1): 0 viewer, 1 manager, 2 owner, 3 access manager.
    org_roles: Vec<u8>,
    /// Frontier groups: members, extra owners, disabled.
    groups: Vec<FrontierGroup>,
    /// `(principal group, bound group, owner?)`: a group bound on another group.
    nested: Vec<(usize, usize, bool)>,
    /// Projects: policies `(user or group, index, role 0 viewer 1 manager 2 owner)`, and
    /// resources `(creator, policies)`.
    projects: Vec<ProjectPlan>,
    /// Collections: direct entries `(user, flags)`.
    collections: Vec<Vec<(usize, Flags)>>,
    /// Bitwarden-style groups: members, entries `(collection, flags)`, accessAll.
    vault_groups: Vec<VaultGroupPlan>,
    /// Who leaves (from 1), and who is suspended by SCIM (from 1).
    victim: usize,
    inactive: usize,
}

fn plan() -> impl Strategy<Value = Plan> {
    (3usize..=5).prop_flat_map(|users| {
        let user = 1..users;
        let anyone = 0..users;
        let members = prop::collection::vec(anyone.clone(), 0..users);
        (
            prop::collection::vec(0u8..4, users - 1),
            prop::collection::vec(
                (
                    members.clone(),
                    prop::collection::vec(anyone.clone(), 0..2),
                    prop::bool::weighted(0.2),
                ),
                1..=3,
            ),
            prop::collection::vec((0usize..3, 0usize..3, any::<bool>()), 0..3),
            prop::collection::vec(
                (
                    prop::collection::vec((any::<bool>(), 0usize..6, 0u8..3), 0..4),
                    prop::collection::vec(
                        (
                            anyone.clone(),
                            prop::collection::vec((anyone.clone(), 0u8..3), 0..2),
                        ),
                        0..3,
                    ),
                ),
                1..=2,
            ),
            prop::collection::vec(
                prop::collection::vec((anyone.clone(), flags()), 0..3),
                1..=3,
            ),
            prop::collection::vec(
                (
                    members,
                    prop::collection::vec((0usize..3, flags()), 0..3),
                    prop::bool::weighted(0.3),
                ),
                0..=2,
            ),
            user.clone(),
            user,
        )
            .prop_map(
                move |(
                    org_roles,
                    groups,
                    nested,
                    projects,
                    collections,
                    vault_groups,
                    victim,
                    inactive,
                )| Plan {
                    users,
                    org_roles,
                    groups,
                    nested,
                    projects,
                    collections,
                    vault_groups,
                    victim,
                    inactive,
                },
            )
    })
}

/// Every object of an organization the facades made, as `type:id`.
#[derive(Debug, Default)]
struct World {
    org: String,
    objects: Vec<String>,
}

fn access(id: &str, (read_only, hide_passwords, manage): (bool, bool, bool)) -> Value {
    json!({"id": id, "readOnly": read_only, "hidePasswords": hide_passwords, "manage": manage})
}

fn id_of(body: &Value, pointer: &str) -> String {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer} in {body}"))
        .to_string()
}

const ORG_ROLES: [&str; 4] = [
    "app_organization_viewer",
    "app_organization_manager",
    "app_organization_owner",
    "app_organization_accessmanager",
];
const PROJECT_ROLES: [&str; 3] = [
    "app_project_viewer",
    "app_project_manager",
    "app_project_owner",
];

/// Builds the organization of `plan` for users `names` (each signed in already).
fn build(f: &InProcess, plan: &Plan, names: &[String], tag: &str) -> World {
    let owner = &names[0];
    let name = |i: usize| &names[i % names.len()];
    let org = id_of(
        &f.ok(
            owner,
            "POST",
            "/v1beta1/organizations",
            &json!({"name": tag}),
        ),
        "/organization/id",
    );
    let mut world = World {
        objects: vec![format!("app/organization:{org}")],
        org: org.clone(),
    };
    let others: Vec<&String> = names.iter().skip(1).collect();
    f.ok(
        owner,
        "POST",
        &format!("/v1beta1/organizations/{org}/users"),
        &json!({ "userIds": others }),
    );
    let policy = |role: &str, resource: String, principal: String| {
        f.ok(
            owner,
            "POST",
            "/v1beta1/policies",
            &json!({"roleId": role, "resource": resource, "principal": principal}),
        );
    };
    for (at, role) in plan.org_roles.iter().enumerate() {
        if *role > 0 {
            policy(
                ORG_ROLES[usize::from(*role)],
                format!("app/organization:{org}"),
                format!("app/user:{}", name(at + 1)),
            );
        }
    }
    let mut groups = Vec::new();
    for (at, (members, owners, _)) in plan.groups.iter().enumerate() {
        let path = format!("/v1beta1/organizations/{org}/groups");
        let group = id_of(
            &f.ok(owner, "POST", &path, &json!({"name": format!("g{at}")})),
            "/group/id",
        );
        let members: BTreeSet<&String> = members.iter().map(|m| name(*m)).collect();
        if !members.is_empty() {
            f.ok(
                owner,
                "POST",
                &format!("{path}/{group}/users"),
                &json!({ "userIds": members }),
            );
        }
        for extra in owners {
            policy(
                "app_group_owner",
                format!("app/group:{group}"),
                format!("app/user:{}", name(*extra)),
            );
        }
        world.objects.push(format!("app/group:{group}"));
        groups.push(group);
    }
    for (principal, bound, as_owner) in &plan.nested {
        let (principal, bound) = (
            &groups[principal % groups.len()],
            &groups[bound % groups.len()],
        );
        let role = if *as_owner {
            "app_group_owner"
        } else {
            "app_group_member"
        };
        policy(
            role,
            format!("app/group:{bound}"),
            format!("app/group:{principal}"),
        );
    }
    for (at, (policies, resources)) in plan.projects.iter().enumerate() {
        let project = id_of(
            &f.ok(
                owner,
                "POST",
                "/v1beta1/projects",
                &json!({"name": format!("p{at}"), "orgId": org}),
            ),
            "/project/id",
        );
        world.objects.push(format!("app/project:{project}"));
        for (to_group, index, role) in policies {
            let principal = if *to_group {
                format!("app/group:{}", groups[index % groups.len()])
            } else {
                format!("app/user:{}", name(*index))
            };
            policy(
                PROJECT_ROLES[usize::from(*role)],
                format!("app/project:{project}"),
                principal,
            );
        }
        for (number, (creator, grants)) in resources.iter().enumerate() {
            let creator = name(*creator);
            if creator != owner {
                policy(
                    "app_project_owner",
                    format!("app/project:{project}"),
                    format!("app/user:{creator}"),
                );
            }
            let resource = id_of(
                &f.ok(
                    creator,
                    "POST",
                    &format!("/v1beta1/projects/{project}/resources"),
                    &json!({"name": format!("r{number}"), "namespace": "compute/instance"}),
                ),
                "/resource/id",
            );
            world.objects.push(format!("compute/instance:{resource}"));
            for (user, role) in grants {
                f.ok(
                    owner,
                    "POST",
                    &format!("/v1beta1/resources/{resource}/policies"),
                    &json!({
                        "roleId": PROJECT_ROLES[usize::from(*role)],
                        "principal": format!("app/user:{}", name(*user)),
                    }),
                );
            }
        }
    }
    let mut collections = Vec::new();
    for (at, entries) in plan.collections.iter().enumerate() {
        let mut seen = BTreeSet::new();
        let users: Vec<Value> = entries
            .iter()
            .filter(|(user, _)| seen.insert(*user))
            .map(|(user, flags)| access(name(*user), *flags))
            .collect();
        let created = f.ok(
            owner,
            "POST",
            &format!("/api/organizations/{org}/collections"),
            &json!({"name": format!("c{at}"), "users": users}),
        );
        let collection = id_of(&created, "/id");
        world.objects.push(format!("app/collection:{collection}"));
        collections.push(collection);
    }
    for (at, (members, entries, access_all)) in plan.vault_groups.iter().enumerate() {
        let mut seen = BTreeSet::new();
        let entries: Vec<Value> = entries
            .iter()
            .map(|(c, flags)| (&collections[c % collections.len()], flags))
            .filter(|(c, _)| seen.insert((*c).clone()))
            .map(|(c, flags)| access(c, *flags))
            .collect();
        let members: BTreeSet<&String> = members.iter().map(|m| name(*m)).collect();
        let created = f.ok(
            owner,
            "POST",
            &format!("/api/organizations/{org}/groups"),
            &json!({"name": format!("vault {at}"), "collections": entries, "users": members, "accessAll": access_all}),
        );
        world
            .objects
            .push(format!("app/group:{}", id_of(&created, "/id")));
    }
    for ((_, _, disabled), group) in plan.groups.iter().zip(&groups) {
        if *disabled {
            f.ok(
                owner,
                "POST",
                &format!("/v1beta1/organizations/{org}/groups/{group}/disable"),
                &Value::Null,
            );
        }
    }
    world
}

/// A second, small organization holding `users` (who keep what they have there).
fn other_org(f: &InProcess, owner: &str, users: &[&String], tag: &str) -> World {
    let plan = Plan {
        users: 1,
        org_roles: Vec::new(),
        groups: vec![((1..=users.len()).collect(), Vec::new(), false)],
        nested: Vec::new(),
        projects: vec![(vec![(true, 0, 0)], Vec::new())],
        collections: vec![Vec::new()],
        vault_groups: vec![(
            (1..=users.len()).collect(),
            vec![(0, (false, true, false))],
            false,
        )],
        victim: 0,
        inactive: 0,
    };
    let mut names = vec![owner.to_string()];
    names.extend(users.iter().map(|u| (*u).clone()));
    build(f, &plan, &names, tag)
}

/// The permissions that grant something: every one of every type, but the role bindings'
/// (the slugs a binding carries, read by the resources' permissions, which are all here),
/// the platform's (not part of any organization), and the `suspended` marker itself.
fn grants(f: &InProcess) -> Vec<(String, String)> {
    f.permissions(|object_type, permission| {
        !["app/rolebinding", "app/platform"].contains(&object_type) && permission != "suspended"
    })
}

/// `reach` without the objects of `world`.
fn outside(reach: &Reach, world: &World) -> Reach {
    reach
        .iter()
        .filter(|(t, _, id)| !world.objects.contains(&format!("{t}:{id}")))
        .cloned()
        .collect()
}

/// Every permission of every object of `world` for `user` is NO.
fn assert_no_access(f: &InProcess, world: &World, user: &str, pairs: &[(String, String)]) {
    for object in &world.objects {
        let object_type = object.split(':').next().unwrap_or_default();
        for (t, permission) in pairs.iter().filter(|(t, _)| t == object_type) {
            assert_eq!(
                f.check(object, permission, user),
                Permissionship::No,
                "{user} still has {t}#{permission} on {object}"
            );
        }
    }
}

/// The `(object, permission)` pairs of `world` that `user` has, checked one by one.
fn checks(
    f: &InProcess,
    world: &World,
    user: &str,
    pairs: &[(String, String)],
) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for object in &world.objects {
        let object_type = object.split(':').next().unwrap_or_default();
        for (_, permission) in pairs.iter().filter(|(t, _)| t == object_type) {
            if f.check(object, permission, user) != Permissionship::No {
                out.insert((object.clone(), permission.clone()));
            }
        }
    }
    out
}

static CASE: AtomicUsize = AtomicUsize::new(0);

/// Signs in the users of one case, named after it.
fn people(f: &InProcess, count: usize, case: usize) -> Vec<String> {
    let names: Vec<String> = (0..count).map(|i| format!("c{case}-u{i}")).collect();
    for name in &names {
        f.sign_in(name);
    }
    names
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        max_shrink_iters: 0,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn leaving_an_organization_ends_every_grant_in_it_and_nothing_else() {
    let f = InProcess::start();
    let all = f.permissions(|_, _| true);
    runner()
        .run(&plan(), |plan| {
            let case = CASE.fetch_add(1, Ordering::Relaxed);
            let names = people(&f, plan.users + 1, case);
            let (stranger, names) = names.split_last().unwrap();
            let victim = &names[plan.victim];
            // The victim and one more member also belong to another organization.
            let keeps: Vec<&String> = vec![victim, &names[0]];
            other_org(&f, stranger, &keeps, &format!("c{case}-other"));
            let before_org = f.reach(victim, &all);
            let world = build(&f, &plan, names, &format!("c{case}-org"));
            let before: Vec<Reach> = names.iter().map(|u| f.reach(u, &all)).collect();
            f.ok(
                &names[0],
                "DELETE",
                &format!("/v1beta1/organizations/{}/users/{victim}", world.org),
                &Value::Null,
            );
            for (user, before) in names.iter().zip(&before) {
                let after = f.reach(user, &all);
                if user == victim {
                    prop_assert_eq!(
                        &after,
                        &before_org,
                        "{} kept access in the organization",
                        user
                    );
                    assert_no_access(&f, &world, user, &all);
                } else {
                    prop_assert_eq!(&after, before, "{} lost or gained access", user);
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn suspension_ends_every_permission_through_the_organization_and_is_undone_exactly() {
    let f = InProcess::start();
    let all = f.permissions(|_, _| true);
    let granting = grants(&f);
    runner()
        .run(&plan(), |plan| {
            let case = CASE.fetch_add(1, Ordering::Relaxed);
            let names = people(&f, plan.users + 1, case);
            let (stranger, names) = names.split_last().unwrap();
            other_org(&f, stranger, &[&names[0]], &format!("c{case}-other"));
            let world = build(&f, &plan, names, &format!("c{case}-org"));
            let org = world.org.clone();
            let before: Vec<Reach> = names.iter().map(|u| f.reach(u, &all)).collect();
            let root_before = checks(&f, &world, ROOT, &granting);

            // The organization disabled: nobody reaches anything in it, superusers do.
            f.ok(
                ROOT,
                "POST",
                &format!("/v1beta1/organizations/{org}/disable"),
                &Value::Null,
            );
            for (user, before) in names.iter().zip(&before) {
                let during = f.reach(user, &granting);
                let kept: Reach = outside(before, &world)
                    .into_iter()
                    .filter(|(t, p, _)| granting.contains(&(t.clone(), p.clone())))
                    .collect();
                prop_assert_eq!(
                    &during,
                    &kept,
                    "{} reaches into a disabled organization",
                    user
                );
                assert_no_access(&f, &world, user, &granting);
            }
            let root_during = checks(&f, &world, ROOT, &granting);
            let gained: Vec<_> = root_during.difference(&root_before).collect();
            let lost: Vec<_> = root_before.difference(&root_during).collect();
            prop_assert!(
                gained.is_empty() && lost.is_empty(),
                "a superuser gained {:?} and lost {:?}",
                gained,
                lost
            );
            f.ok(
                ROOT,
                "POST",
                &format!("/v1beta1/organizations/{org}/enable"),
                &Value::Null,
            );
            for (user, before) in names.iter().zip(&before) {
                prop_assert_eq!(&f.reach(user, &all), before, "{} after enable", user);
            }

            // One user made inactive by SCIM: only they lose the organization, until active.
            let key = id_of(
                &f.ok(
                    &names[0],
                    "POST",
                    &format!("/api/organizations/{org}/scim-key"),
                    &Value::Null,
                ),
                "/apiKey",
            );
            let inactive = &names[plan.inactive];
            let path = format!("/scim/v2/{org}/Users/{inactive}");
            let patch = |active: bool| {
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": active}],
                })
            };
            f.ok_key(&key, "PATCH", &path, &patch(false));
            for (user, before) in names.iter().zip(&before) {
                if user == inactive {
                    let during = f.reach(user, &granting);
                    let kept: Reach = outside(before, &world)
                        .into_iter()
                        .filter(|(t, p, _)| granting.contains(&(t.clone(), p.clone())))
                        .collect();
                    prop_assert_eq!(&during, &kept, "inactive {} reaches in", user);
                    assert_no_access(&f, &world, user, &granting);
                } else {
                    prop_assert_eq!(&f.reach(user, &all), before, "{} changed", user);
                }
            }
            let shown = f.ok_key(&key, "GET", &path, &Value::Null);
            prop_assert_eq!(&shown["active"], &json!(false));
            f.ok_key(&key, "PATCH", &path, &patch(true));
            for (user, before) in names.iter().zip(&before) {
                prop_assert_eq!(&f.reach(user, &all), before, "{} after active", user);
            }
            Ok(())
        })
        .unwrap();
}

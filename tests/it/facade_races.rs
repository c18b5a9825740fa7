//! The facades' invariants under concurrent writers, with no process-local lock: each call
//! builds its transaction from reads of the head inside the store's write transaction, so
//! unique names, the last owner, one current key per organization, one user record and one
//! SCIM membership hold when many threads race for them (in-process, many threads).

use std::sync::Barrier;

use serde_json::{json, Value};

use crate::facade_support::{InProcess, Reply};

const THREADS: usize = 8;

/// Runs `call(i)` on `THREADS` threads released together; their replies in thread order.
fn race(call: impl Fn(usize) -> Reply + Sync) -> Vec<Reply> {
    let barrier = Barrier::new(THREADS);
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (barrier, call) = (&barrier, &call);
                scope.spawn(move || {
                    barrier.wait();
                    call(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| panic!("a racing thread panicked"))
            })
            .collect()
    });
    for reply in &replies {
        assert!(
            reply.status < 500,
            "a racing call failed: {} {}",
            reply.status,
            reply.body
        );
    }
    replies
}

fn statuses(replies: &[Reply]) -> Vec<u16> {
    let mut out: Vec<u16> = replies.iter().map(|r| r.status).collect();
    out.sort_unstable();
    out
}

fn org(f: &InProcess, owner: &str, name: &str) -> String {
    f.ok(
        owner,
        "POST",
        "/v1beta1/organizations",
        &json!({"name": name}),
    )["organization"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn racing_creates_of_one_name_leave_exactly_one() {
    let f = InProcess::start();
    f.sign_in("alice");
    // Organization names are unique across the store.
    let replies = race(|_| {
        f.call(
            "alice",
            "POST",
            "/v1beta1/organizations",
            Some(&json!({"name": "contested"})),
        )
    });
    let mut expected = vec![200];
    expected.extend([409; THREADS - 1]);
    assert_eq!(statuses(&replies), expected);
    let org = replies
        .iter()
        .find(|r| r.status == 200)
        .and_then(|r| r.body["organization"]["id"].as_str())
        .unwrap()
        .to_string();
    // Group and project names are unique per organization.
    let groups = format!("/v1beta1/organizations/{org}/groups");
    let replies = race(|_| f.call("alice", "POST", &groups, Some(&json!({"name": "eng"}))));
    assert_eq!(statuses(&replies), expected);
    let listed = f.ok("alice", "GET", &groups, &Value::Null);
    assert_eq!(listed["groups"].as_array().unwrap().len(), 1);
    let replies = race(|_| {
        f.call(
            "alice",
            "POST",
            "/v1beta1/projects",
            Some(&json!({"name": "web", "orgId": org})),
        )
    });
    assert_eq!(statuses(&replies), expected);
    // Bitwarden-style external ids are unique per organization too.
    let replies = race(|i| {
        f.call(
            "alice",
            "POST",
            &format!("/api/organizations/{org}/groups"),
            Some(&json!({"name": format!("team {i}"), "externalId": "dir-1"})),
        )
    });
    assert_eq!(statuses(&replies), expected);
}

#[test]
fn racing_removals_never_leave_an_organization_or_a_group_without_an_owner() {
    let f = InProcess::start();
    let owners: Vec<String> = (0..THREADS).map(|i| format!("owner-{i}")).collect();
    for owner in &owners {
        f.sign_in(owner);
    }
    for round in 0..3 {
        let org = org(&f, &owners[0], &format!("round-{round}"));
        let others: Vec<&String> = owners.iter().skip(1).collect();
        f.ok(
            &owners[0],
            "POST",
            &format!("/v1beta1/organizations/{org}/users"),
            &json!({ "userIds": others }),
        );
        let group = f.ok(
            &owners[0],
            "POST",
            &format!("/v1beta1/organizations/{org}/groups"),
            &json!({"name": "eng"}),
        )["group"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        for owner in &owners[1..] {
            for (role, resource) in [
                ("app_organization_owner", format!("app/organization:{org}")),
                ("app_group_owner", format!("app/group:{group}")),
            ] {
                f.ok(
                    &owners[0],
                    "POST",
                    "/v1beta1/policies",
                    &json!({"roleId": role, "resource": resource, "principal": format!("app/user:{owner}")}),
                );
            }
        }
        // Every owner removes themselves from the group, and leaves the organization.
        let replies = race(|i| {
            f.call(
                &owners[i],
                "DELETE",
                &format!(
                    "/v1beta1/organizations/{org}/groups/{group}/users/{}",
                    owners[i]
                ),
                None,
            )
        });
        let mut expected = vec![200; THREADS - 1];
        expected.push(400);
        assert_eq!(statuses(&replies), expected, "round {round}, group");
        let replies = race(|i| {
            f.call(
                &owners[i],
                "DELETE",
                &format!("/v1beta1/organizations/{org}/users/{}", owners[i]),
                None,
            )
        });
        assert_eq!(statuses(&replies), expected, "round {round}, organization");
        let last = replies.iter().position(|r| r.status == 400).unwrap();
        let users = f.ok(
            &owners[last],
            "GET",
            &format!("/v1beta1/organizations/{org}/users"),
            &Value::Null,
        );
        assert_eq!(users["users"].as_array().unwrap().len(), 1, "{users}");
    }
}

#[test]
fn racing_key_rotations_leave_exactly_one_working_key() {
    let f = InProcess::start();
    f.sign_in("alice");
    let org = org(&f, "alice", "keys");
    for path in ["api-key", "scim-key"] {
        let replies = race(|_| {
            f.call(
                "alice",
                "POST",
                &format!("/api/organizations/{org}/{path}"),
                None,
            )
        });
        assert_eq!(statuses(&replies), vec![200; THREADS]);
        let probe = if path == "api-key" {
            "/public/groups".to_string()
        } else {
            format!("/scim/v2/{org}/Groups")
        };
        let working = replies
            .iter()
            .map(|r| r.body["apiKey"].as_str().unwrap().to_string())
            .filter(|key| {
                f.raw(Some(&format!("Bearer {key}")), "GET", &probe, None)
                    .status
                    == 200
            })
            .count();
        assert_eq!(working, 1, "{path}");
    }
}

#[test]
fn racing_first_calls_and_scim_creates_make_one_record_each() {
    let f = InProcess::start();
    // A new user's first calls, all at once: one record, every call answered.
    let replies = race(|_| f.call("newcomer", "GET", "/v1beta1/users/self", None));
    assert_eq!(statuses(&replies), vec![200; THREADS]);
    f.sign_in("alice");
    let org = org(&f, "alice", "scim");
    let key = f.ok(
        "alice",
        "POST",
        &format!("/api/organizations/{org}/scim-key"),
        &Value::Null,
    )["apiKey"]
        .as_str()
        .unwrap()
        .to_string();
    let replies = race(|_| {
        f.raw(
            Some(&format!("Bearer {key}")),
            "POST",
            &format!("/scim/v2/{org}/Users"),
            Some(&json!({"userName": "newcomer"})),
        )
    });
    let mut expected = vec![201];
    expected.extend([409; THREADS - 1]);
    assert_eq!(statuses(&replies), expected);
}

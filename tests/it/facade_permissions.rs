//! One permission per act (the table in `docs/facade.md`): every path that removes an
//! owner binding asks for the permission deleting that binding as a policy asks for. Each
//! row runs with a caller holding roles that give its permissions (200, the binding gone)
//! and with callers holding every other role but one that gives a permission it needs (403,
//! nothing changed).

use serde_json::{json, Value};

use crate::facade_support::InProcess;

/// Where a role is bound.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Org,
    Project,
    Group,
}

use Scope::{Group, Org, Project};

/// Every predefined role, where it is bound.
const ALL_ROLES: [(Scope, &str); 9] = [
    (Org, "app_organization_owner"),
    (Org, "app_organization_manager"),
    (Org, "app_organization_accessmanager"),
    (Org, "app_organization_viewer"),
    (Project, "app_project_owner"),
    (Project, "app_project_manager"),
    (Project, "app_project_viewer"),
    (Group, "app_group_owner"),
    (Group, "app_group_member"),
];

/// What a row removes from the victim.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// `DELETE /v1beta1/policies/{id}` of the victim's owner binding on the scope.
    DeletePolicy(Scope),
    /// `DELETE /v1beta1/organizations/{org}/users/{victim}`, the victim holding the owner
    /// role on the scope (a viewer of the organization otherwise).
    LeaveOrganization(Option<Scope>),
    /// `DELETE /v1beta1/organizations/{org}/groups/{group}/users/{victim}`, the victim an
    /// owner of the group.
    LeaveGroup,
}

/// One row: the act, the roles that give every permission it needs, and for each of those
/// permissions the roles that give it (the "every other role" callers leave them out).
struct Row {
    act: Act,
    holder: &'static [(Scope, &'static str)],
    needs: &'static [(&'static str, &'static [&'static str])],
}

const ROWS: &[Row] = &[
    Row {
        act: Act::DeletePolicy(Org),
        holder: &[(Org, "app_organization_accessmanager")],
        needs: &[(
            "policymanage on the organization",
            &["app_organization_owner", "app_organization_accessmanager"],
        )],
    },
    Row {
        act: Act::DeletePolicy(Project),
        holder: &[(Project, "app_project_owner")],
        needs: &[(
            "policymanage on the project",
            &["app_organization_owner", "app_project_owner"],
        )],
    },
    Row {
        act: Act::DeletePolicy(Group),
        holder: &[(Group, "app_group_owner")],
        needs: &[(
            "delete on the group",
            &["app_organization_owner", "app_group_owner"],
        )],
    },
    Row {
        act: Act::LeaveOrganization(None),
        holder: &[(Org, "app_organization_manager")],
        needs: &[(
            "update on the organization",
            &["app_organization_owner", "app_organization_manager"],
        )],
    },
    Row {
        act: Act::LeaveOrganization(Some(Org)),
        holder: &[
            (Org, "app_organization_manager"),
            (Org, "app_organization_accessmanager"),
        ],
        needs: &[
            (
                "update on the organization",
                &["app_organization_owner", "app_organization_manager"],
            ),
            (
                "policymanage on the organization",
                &["app_organization_owner", "app_organization_accessmanager"],
            ),
        ],
    },
    Row {
        act: Act::LeaveOrganization(Some(Project)),
        holder: &[
            (Org, "app_organization_manager"),
            (Project, "app_project_owner"),
        ],
        needs: &[
            (
                "update on the organization",
                &["app_organization_owner", "app_organization_manager"],
            ),
            (
                "policymanage on the project",
                &["app_organization_owner", "app_project_owner"],
            ),
        ],
    },
    Row {
        act: Act::LeaveGroup,
        holder: &[(Group, "app_group_owner")],
        needs: &[
            (
                "update on the group",
                &["app_organization_owner", "app_group_owner"],
            ),
            (
                "delete on the group",
                &["app_organization_owner", "app_group_owner"],
            ),
        ],
    },
];

/// An organization with a project and a group, the victim's binding the act removes, and a
/// caller holding `roles`.
struct Stage {
    org: String,
    project: String,
    group: String,
    /// The victim's binding the act removes.
    binding: Option<String>,
}

fn id(body: &Value, pointer: &str) -> String {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap()
        .to_string()
}

fn resource(stage: &Stage, scope: Scope) -> String {
    match scope {
        Org => format!("app/organization:{}", stage.org),
        Project => format!("app/project:{}", stage.project),
        Group => format!("app/group:{}", stage.group),
    }
}

fn owner_role(scope: Scope) -> &'static str {
    match scope {
        Org => "app_organization_owner",
        Project => "app_project_owner",
        Group => "app_group_owner",
    }
}

fn stage(f: &InProcess, tag: &str, act: Act, roles: &[(Scope, &str)]) -> Stage {
    let (owner, victim, caller) = ("owner", "victim", "caller");
    let org = id(
        &f.ok(
            owner,
            "POST",
            "/v1beta1/organizations",
            &json!({"name": tag}),
        ),
        "/organization/id",
    );
    f.ok(
        owner,
        "POST",
        &format!("/v1beta1/organizations/{org}/users"),
        &json!({"userIds": [victim, caller]}),
    );
    let project = id(
        &f.ok(
            owner,
            "POST",
            "/v1beta1/projects",
            &json!({"name": "web", "orgId": org}),
        ),
        "/project/id",
    );
    let group = id(
        &f.ok(
            owner,
            "POST",
            &format!("/v1beta1/organizations/{org}/groups"),
            &json!({"name": "eng"}),
        ),
        "/group/id",
    );
    let mut stage = Stage {
        org,
        project,
        group,
        binding: None,
    };
    let grant = |scope: Scope, role: &str, user: &str| -> String {
        id(
            &f.ok(
                owner,
                "POST",
                "/v1beta1/policies",
                &json!({"roleId": role, "resource": resource(&stage, scope), "principal": format!("app/user:{user}")}),
            ),
            "/policy/id",
        )
    };
    let victim_scope = match act {
        Act::DeletePolicy(scope) | Act::LeaveOrganization(Some(scope)) => Some(scope),
        Act::LeaveGroup => Some(Group),
        Act::LeaveOrganization(None) => None,
    };
    let binding = victim_scope.map(|scope| grant(scope, owner_role(scope), victim));
    for (scope, role) in roles {
        grant(*scope, role, caller);
    }
    stage.binding = binding;
    stage
}

fn run(f: &InProcess, stage: &Stage, act: Act) -> u16 {
    let path = match act {
        Act::DeletePolicy(_) => format!("/v1beta1/policies/{}", stage.binding.as_deref().unwrap()),
        Act::LeaveOrganization(_) => format!("/v1beta1/organizations/{}/users/victim", stage.org),
        Act::LeaveGroup => format!(
            "/v1beta1/organizations/{}/groups/{}/users/victim",
            stage.org, stage.group
        ),
    };
    f.call("caller", "DELETE", &path, None).status
}

/// Whether the victim still holds what the act removes.
fn victim_kept(f: &InProcess, stage: &Stage, act: Act) -> bool {
    let policy = |id: &str| {
        f.call("owner", "GET", &format!("/v1beta1/policies/{id}"), None)
            .status
            == 200
    };
    match (act, &stage.binding) {
        (Act::LeaveOrganization(None), _) => {
            let users = f.ok(
                "owner",
                "GET",
                &format!("/v1beta1/organizations/{}/users", stage.org),
                &Value::Null,
            );
            users["users"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["id"] == "victim")
        }
        (_, Some(binding)) => policy(binding),
        (_, None) => unreachable!(),
    }
}

#[test]
fn every_path_that_removes_an_owner_asks_what_deleting_the_policy_asks() {
    let f = InProcess::start();
    for user in ["owner", "victim", "caller"] {
        f.sign_in(user);
    }
    let mut scenario = 0;
    for row in ROWS {
        scenario += 1;
        let holder = stage(&f, &format!("row-{scenario}"), row.act, row.holder);
        assert_eq!(
            run(&f, &holder, row.act),
            200,
            "{:?} by {:?}",
            row.act,
            row.holder
        );
        assert!(!victim_kept(&f, &holder, row.act), "{:?}", row.act);
        for (permission, givers) in row.needs {
            scenario += 1;
            let others: Vec<(Scope, &str)> = ALL_ROLES
                .iter()
                .filter(|(_, role)| !givers.contains(role))
                .copied()
                .collect();
            let lacking = stage(&f, &format!("row-{scenario}"), row.act, &others);
            assert_eq!(
                run(&f, &lacking, row.act),
                403,
                "{:?} without {permission} (roles {others:?})",
                row.act
            );
            assert!(victim_kept(&f, &lacking, row.act), "{:?}", row.act);
        }
    }
}

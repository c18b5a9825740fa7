//! `zanzi expand`: the tree of subject sets that make up a permission, printed as a tree.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::output::line;
use crate::{Backend, Target};
use zanzi::api::wire::PermissionRelationshipTree;
use zanzi::tuple::ObjectRef;

/// Runs `zanzi expand resource#permission`.
pub fn run(target: &Target, text: &str) -> Result<ExitCode> {
    let (resource, permission) = text
        .split_once('#')
        .with_context(|| format!("expected `resource#permission`, got `{text}`"))?;
    let resource = ObjectRef::parse(resource)?;
    let tree = match Backend::open(target)? {
        Backend::Local(engine) => {
            let (tree, _) = engine.expand(&resource, permission, false)?;
            serde_json::to_value(PermissionRelationshipTree::from_domain(&tree))?
        }
        Backend::Remote(client) => client.expand(&resource, permission)?,
    };
    let mut lines = Vec::new();
    render(&tree, "", "", &mut lines);
    for text in lines {
        line(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn object(value: &Value) -> String {
    format!(
        "{}:{}",
        value["objectType"].as_str().unwrap_or_default(),
        value["objectId"].as_str().unwrap_or_default()
    )
}

/// One node (from the wire form of an expand tree) and its children, drawn with box lines.
fn render(node: &Value, first: &str, rest: &str, out: &mut Vec<String>) {
    let name = format!(
        "{}#{}",
        object(&node["expandedObject"]),
        node["expandedRelation"].as_str().unwrap_or_default()
    );
    let mut children: Vec<Child<'_>> = Vec::new();
    let label = if let Some(set) = node.get("intermediate") {
        let operation = set["operation"].as_str().unwrap_or_default();
        for child in set["children"].as_array().into_iter().flatten() {
            children.push(Child::Node(child));
        }
        match operation {
            "OPERATION_UNION" => "union",
            "OPERATION_INTERSECTION" => "intersection",
            "OPERATION_EXCLUSION" => "exclusion (first minus the rest)",
            other => other,
        }
        .to_string()
    } else {
        for subject in node["leaf"]["subjects"].as_array().into_iter().flatten() {
            let mut text = object(&subject["object"]);
            if let Some(relation) = subject["optionalRelation"]
                .as_str()
                .filter(|r| !r.is_empty())
            {
                text = format!("{text}#{relation}");
            }
            children.push(Child::Subject(text));
        }
        if children.is_empty() {
            "no subjects".to_string()
        } else {
            String::new()
        }
    };
    out.push(if label.is_empty() {
        format!("{first}{name}")
    } else {
        format!("{first}{name} ({label})")
    });
    let count = children.len();
    for (i, child) in children.into_iter().enumerate() {
        let last = i + 1 == count;
        let (branch, indent) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        match child {
            Child::Node(node) => render(
                node,
                &format!("{rest}{branch}"),
                &format!("{rest}{indent}"),
                out,
            ),
            Child::Subject(text) => out.push(format!("{rest}{branch}{text}")),
        }
    }
}

enum Child<'a> {
    Node(&'a Value),
    Subject(String),
}

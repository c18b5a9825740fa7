//! The web playground at `/ui` in a real browser: headless Chromium driven through
//! chromedriver (WebDriver) against a real server on loopback. Signs in with the keyboard,
//! writes a schema with an error and finds it at its line and column, fixes it, adds
//! relationships, runs a granted and a denied check and reads the explain tree and the drawn
//! path, looks resources up, runs a validation file on a scratch store, follows the change
//! feed, and signs out. A screenshot of each step goes to `$CARGO_TARGET_TMPDIR/playground/`
//! (the ones in `docs/playground.md` are copies).

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::server_support::{object, TestServer};
use crate::webdriver::Browser;

/// WebDriver's code for the Enter key, and for Alt.
const ENTER: &str = "\u{E007}";
const ALT: &str = "\u{E00A}";

const BROKEN_SCHEMA: &str = "definition user {}

definition group {
    relation member: user | group#member
}

definition doc {
    relation owner: user
    relation viewer: user | group#member
    permission view = viewer + owner + editor
}";

const SCHEMA: &str = "definition user {}

definition group {
    relation member: user | group#member
}

definition doc {
    relation owner: user
    relation viewer: user | group#member
    permission edit = owner
    permission view = viewer + edit
}";

const RELATIONSHIPS: &str = "doc:readme#owner@user:ann
doc:readme#viewer@group:eng#member
group:eng#member@user:bob
doc:spec#viewer@user:cid";

const VALIDATION: &str = "schema: |-
  definition user {}
  definition doc {
    relation viewer: user
    permission view = viewer
  }
relationships: |-
  doc:1#viewer@user:ann
assertions:
  assertTrue:
    - doc:1#view@user:ann
  assertFalse:
    - doc:1#view@user:bob
    - doc:1#view@user:ann
validation:
  doc:1#view:
    - \"[user:ann] is <doc:1#viewer>\"
";

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("playground");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The explain tree's lines without the time each step took.
fn tree_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| match line.rfind(" (") {
            Some(at) if line.ends_with("s)") => line[..at].to_string(),
            _ => line.to_string(),
        })
        .collect()
}

/// `(object, class)` of a node of the drawn path.
type Node = (String, String);
/// `(from, label, to)` of an edge of the drawn path.
type Edge = (String, String, String);

/// Every node and every edge of the drawn path.
fn drawing(browser: &Browser) -> (Vec<Node>, Vec<Edge>) {
    let nodes = browser.run(
        "return [...document.querySelectorAll('#check-path g.node')].map(g => [g.dataset.object, g.getAttribute('class')]);",
        &[],
    );
    let edges = browser.run(
        "return [...document.querySelectorAll('#check-path g.edge')].map(g => [g.dataset.from, g.dataset.label, g.dataset.to]);",
        &[],
    );
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    (
        nodes
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                let n = strings(n);
                (n[0].clone(), n[1].clone())
            })
            .collect(),
        edges
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let e = strings(e);
                (e[0].clone(), e[1].clone(), e[2].clone())
            })
            .collect(),
    )
}

fn type_into(browser: &Browser, selector: &str, text: &str) {
    let element = browser.find(selector);
    element.clear();
    element.type_text(text);
}

#[test]
fn playground_in_a_real_browser() {
    let server = TestServer::start();
    let shots = shots();
    let browser = Browser::start(1366, 900);

    // The page loads with nothing from the store, and asks for the key.
    browser.goto(&server.url("/ui"));
    browser.wait_for(
        "the sign-in form",
        "return document.activeElement && document.activeElement.id === 'key';",
    );
    assert_eq!(
        browser.run("return document.getElementById('app').hidden;", &[]),
        json!(true)
    );
    browser.screenshot(&shots.join("01-signin.png"));

    // A wrong key is refused; the right one, typed and entered from the keyboard, signs in.
    browser
        .find("#key")
        .type_text(&format!("not-the-key{ENTER}"));
    browser.wait_for(
        "the refusal",
        "return document.getElementById('signin-error').textContent.includes('refused');",
    );
    type_into(&browser, "#key", &format!("{}{ENTER}", server.key));
    // The schema pane has read the store (no schema yet) before anything is typed into it.
    browser.wait_for(
        "the app",
        "return !document.getElementById('app').hidden && document.getElementById('schema-result').textContent === 'No schema has been written yet.';",
    );
    assert_eq!(
        browser.run("return sessionStorage.getItem('zanzi-key');", &[]),
        json!(server.key)
    );

    // A schema with an error: the error names its line and column, and the gutter marks it.
    let error = &zanzi::schema::compile(BROKEN_SCHEMA).unwrap_err().0[0];
    assert_eq!(
        error.line, 10,
        "the broken schema's error is on the `editor` line"
    );
    type_into(&browser, "#schema-text", BROKEN_SCHEMA);
    browser.find("#schema-write").click();
    let shown = browser.wait_for(
        "the schema error",
        "const b = document.querySelector('#schema-errors button'); return b && b.textContent;",
    );
    assert_eq!(
        shown,
        json!(format!(
            "line {}, column {}: {}",
            error.line, error.column, error.message
        ))
    );
    assert_eq!(
        browser.run(
            "return [...document.querySelectorAll('#schema-gutter .bad')].map(e => e.textContent);",
            &[]
        ),
        json!(["10"])
    );
    // Clicking the error puts the caret on it.
    browser.find("#schema-errors button").click();
    let caret = browser.run(
        "const t = document.getElementById('schema-text'); return [document.activeElement === t, t.value.slice(0, t.selectionStart).split('\\n').length, t.selectionStart - t.value.lastIndexOf('\\n', t.selectionStart - 1)];",
        &[],
    );
    assert_eq!(caret, json!([true, error.line, error.column]));
    browser.screenshot(&shots.join("02-schema-error.png"));
    let (status, _) = server.post("/v1/schema/read", &json!({}));
    assert_eq!(status, 404, "a schema with an error was written");

    // Fixed, it is written.
    type_into(&browser, "#schema-text", SCHEMA);
    browser.find("#schema-write").click();
    browser.wait_for(
        "the schema written",
        "return document.getElementById('schema-result').textContent.startsWith('Schema written');",
    );
    assert_eq!(browser.text("#schema-errors"), "");
    assert_eq!(
        server.ok("/v1/schema/read", &json!({}))["schemaText"],
        json!(SCHEMA)
    );
    browser.screenshot(&shots.join("03-schema-written.png"));

    // Relationships: added in the Relationships pane (reached with Alt+2), listed in a page.
    browser.press_with(ALT, "2");
    browser.wait_for(
        "the relationships pane",
        "return !document.getElementById('pane-relationships').hidden && document.activeElement.id === 'rel-add';",
    );
    browser.find("#rel-add").type_text(RELATIONSHIPS);
    browser.find("#rel-add-button").click();
    browser.wait_for(
        "the write",
        "return document.getElementById('rel-add-result').textContent === 'Wrote 4 relationships.';",
    );
    browser.wait_for(
        "the listed relationships",
        "return document.querySelectorAll('#rel-rows tr').length === 4;",
    );
    let listed = browser.run(
        "return [...document.querySelectorAll('#rel-rows tr td:first-child')].map(e => e.textContent).sort();",
        &[],
    );
    let mut expected: Vec<&str> = RELATIONSHIPS.lines().collect();
    expected.sort_unstable();
    assert_eq!(listed, json!(expected));
    browser.screenshot(&shots.join("04-relationships.png"));

    // A granted check: the answer, the explain tree and the drawing of the granting path.
    browser.press_with(ALT, "3");
    browser.wait_for(
        "the check pane",
        "return document.activeElement.id === 'check-text';",
    );
    browser
        .find("#check-text")
        .type_text(&format!("doc:readme#view@user:bob{ENTER}"));
    browser.wait_for(
        "the granted answer",
        "return document.getElementById('check-answer').textContent === '✓ has permission';",
    );
    assert_eq!(
        tree_lines(&browser.text("#check-tree")),
        [
            "✓ doc:readme view [union]",
            "└── ✓ doc:readme viewer",
            "    └── ✓ group:eng member (group index)",
            "        └── user:bob",
        ]
    );
    let (nodes, edges) = drawing(&browser);
    assert_eq!(
        nodes,
        [
            ("doc:readme".to_string(), "node has".to_string()),
            ("group:eng".to_string(), "node has".to_string()),
            ("user:bob".to_string(), "node subject".to_string()),
        ]
    );
    assert_eq!(
        edges,
        [
            (
                "doc:readme".to_string(),
                "viewer".to_string(),
                "group:eng".to_string()
            ),
            (
                "group:eng".to_string(),
                "member (group index)".to_string(),
                "user:bob".to_string()
            ),
        ]
    );
    browser.screenshot(&shots.join("05-check-granted.png"));

    // A denied check shows every step walked, none granting.
    type_into(
        &browser,
        "#check-text",
        &format!("doc:spec#view@user:bob{ENTER}"),
    );
    browser.wait_for(
        "the denied answer",
        "return document.getElementById('check-answer').textContent === '⨉ no permission';",
    );
    assert_eq!(
        tree_lines(&browser.text("#check-tree")),
        [
            "⨉ doc:spec view [union]",
            "├── ⨉ doc:spec viewer",
            "└── ⨉ doc:spec edit [computed]",
            "    └── ⨉ doc:spec owner",
        ]
    );
    let (nodes, edges) = drawing(&browser);
    assert_eq!(nodes, [("doc:spec".to_string(), "node no".to_string())]);
    assert!(edges.is_empty(), "{edges:?}");
    assert_eq!(
        browser.text("#check-path svg g.node .members"),
        "view › viewer › edit › owner"
    );
    browser.screenshot(&shots.join("06-check-denied.png"));

    // Lookups, one page at a time.
    browser.press_with(ALT, "4");
    type_into(&browser, "#lr-type", "doc");
    type_into(&browser, "#lr-permission", "view");
    type_into(&browser, "#lr-subject", "user:bob");
    type_into(&browser, "#lr-limit", &format!("1{ENTER}"));
    browser.wait_for(
        "the first page of resources",
        "return document.querySelectorAll('#lr-results li').length === 1 && !document.getElementById('lr-more').hidden;",
    );
    browser.find("#lr-more").click();
    browser.wait_for(
        "the end of the resources",
        "return document.getElementById('lr-more').hidden;",
    );
    assert_eq!(
        browser.run(
            "return [...document.querySelectorAll('#lr-results li')].map(e => e.textContent);",
            &[]
        ),
        json!(["doc:readme"])
    );
    type_into(&browser, "#ls-resource", "doc:readme");
    type_into(&browser, "#ls-permission", "view");
    type_into(&browser, "#ls-type", &format!("user{ENTER}"));
    browser.wait_for(
        "the subjects",
        "return document.querySelectorAll('#ls-results li').length === 2;",
    );
    assert_eq!(
        browser.run(
            "return [...document.querySelectorAll('#ls-results li')].map(e => e.textContent);",
            &[]
        ),
        json!(["user:ann", "user:bob"])
    );
    browser.screenshot(&shots.join("07-lookup.png"));

    // A validation file runs on a scratch store: each assertion passes or fails on its own.
    browser.press_with(ALT, "5");
    browser.find("#validate-text").type_text(VALIDATION);
    browser.find("#validate-run").click();
    browser.wait_for(
        "the validation results",
        "return document.querySelectorAll('#validate-results li').length === 4;",
    );
    let results = browser.run(
        "return [...document.querySelectorAll('#validate-results li')].map(e => [e.className, e.querySelector('.kind').textContent + e.childNodes[2].textContent]);",
        &[],
    );
    assert_eq!(
        results,
        json!([
            ["pass", "assertTrue: doc:1#view@user:ann"],
            ["pass", "assertFalse: doc:1#view@user:bob"],
            ["fail", "assertFalse: doc:1#view@user:ann"],
            ["pass", "validation: doc:1#view"],
        ])
    );
    assert!(browser
        .text("#validate-summary")
        .starts_with("Failed: 3 of 4 passed"));
    browser.screenshot(&shots.join("08-validate.png"));
    let live = server.stream(
        "/v1/relationships/read",
        &json!({"relationshipFilter": {"resourceType": "doc", "optionalResourceId": "1"}}),
    );
    assert!(
        live.is_empty(),
        "the validation file reached the live store: {live:?}"
    );

    // The change feed saw the four writes (newest first).
    browser.press_with(ALT, "6");
    browser.wait_for(
        "the change feed",
        "return document.querySelectorAll('#watch-list li').length === 4;",
    );
    let mut feed: Vec<String> = browser
        .run(
            "return [...document.querySelectorAll('#watch-list li')].map(e => e.textContent);",
            &[],
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    feed.sort();
    let mut touched: Vec<String> = RELATIONSHIPS.lines().map(|l| format!("TOUCH{l}")).collect();
    touched.sort();
    assert_eq!(feed, touched);
    // A write from elsewhere shows up live.
    server.ok(
        "/v1/relationships/write",
        &json!({"updates": [{"operation": "OPERATION_DELETE", "relationship": {
            "resource": object("doc:spec"), "relation": "viewer",
            "subject": {"object": object("user:cid")}}}]}),
    );
    browser.wait_for(
        "the live delete",
        "const f = document.querySelector('#watch-list li'); return f && f.textContent === 'DELETEdoc:spec#viewer@user:cid';",
    );
    browser.screenshot(&shots.join("09-watch.png"));

    // Signing out forgets the key and clears what was shown.
    browser.find("#signout").click();
    browser.wait_for(
        "the sign-in form again",
        "return !document.getElementById('signin').hidden && document.getElementById('app').hidden;",
    );
    assert_eq!(
        browser.run(
            "return [sessionStorage.getItem('zanzi-key'), document.getElementById('schema-text').value, document.querySelectorAll('#rel-rows tr').length];",
            &[]
        ),
        json!([null, "", 0])
    );
}

//! The Bitwarden-style records (groups, collections) and the operations the three APIs
//! share: validating a group, writing its collection access as flag tuples (see
//! `schema/vault.zed`) under Bitwarden's "can manage" rule, replacing its members, and the
//! delete cascade. Access is only ever tuples; the records hold names, external ids and
//! timestamps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::VaultError;
use crate::facade::core::bindings::{GROUP_TYPE, ORG_TYPE};
use crate::facade::core::error::FacadeError;
use crate::facade::core::graph;
use crate::facade::core::organizations as orgs;
use crate::facade::core::records::{Keyspace, Tx};
use crate::facade::core::runner::{new_id, now, object, Cx, USER_TYPE};
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

/// The collection type.
pub const COLLECTION_TYPE: &str = "app/collection";
/// The per-organization vault object (id = organization id) holding `access_all`.
pub const VAULT_TYPE: &str = "app/vault";

/// A Bitwarden-style group record (its `app/group:{id}` object carries the tuples).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VaultGroup {
    /// Id (UUID).
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// Display name (1 to 100 characters).
    pub name: String,
    /// Directory id (up to 300 characters), unique per organization ignoring case.
    pub external_id: Option<String>,
    /// Whether the group reaches every collection of the organization.
    pub access_all: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub revision_date: String,
}

/// A collection record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Collection {
    /// Id (UUID).
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// Name (1 to 100 characters).
    pub name: String,
    /// Directory id.
    pub external_id: Option<String>,
}

/// Groups by id.
pub const VAULT_GROUPS: Keyspace<VaultGroup> = Keyspace::new("vault_group");
/// Group ids by `{org}/{id}`.
pub const ORG_VAULT_GROUPS: Keyspace<String> = Keyspace::new("vault_org_group");
/// Group ids by `{org}/{lowercased externalId}` (the uniqueness index).
pub const GROUP_EXTERNAL_IDS: Keyspace<String> = Keyspace::new("vault_group_external");
/// Collections by id.
pub const COLLECTIONS: Keyspace<Collection> = Keyspace::new("vault_collection");
/// Collection ids by `{org}/{id}`.
pub const ORG_COLLECTIONS: Keyspace<String> = Keyspace::new("vault_org_collection");

/// One access entry `{id, readOnly, hidePasswords, manage}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    /// The collection (or, on a collection, the group or user).
    pub id: String,
    /// Can view only.
    #[serde(default)]
    pub read_only: bool,
    /// Cannot see passwords.
    #[serde(default)]
    pub hide_passwords: bool,
    /// Can manage.
    #[serde(default)]
    pub manage: bool,
}

/// Who an access entry is for: a group's active members or one user directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grantee {
    /// `*_group` relations, subject `app/group:G#active_member`.
    Group,
    /// `*_user` relations, subject `app/user:U`.
    User,
}

impl Grantee {
    fn relation(self, flag: &str) -> String {
        match self {
            Self::Group => format!("{flag}_group"),
            Self::User => format!("{flag}_user"),
        }
    }

    /// The subject of an entry for `id`.
    pub fn subject(self, id: &str) -> Result<SubjectRef, FacadeError> {
        Ok(match self {
            Self::Group => SubjectRef::new(GROUP_TYPE, id, Some("active_member"))?,
            Self::User => SubjectRef::new(USER_TYPE, id, None)?,
        })
    }
}

/// The four flag names, in the order of `schema/vault.zed`.
const FLAGS: [&str; 4] = ["assigned", "edit", "showpw", "manage"];

impl Access {
    /// 400 when `manage` comes with `readOnly` or `hidePasswords`.
    pub fn check(&self) -> Result<(), VaultError> {
        if self.manage && (self.read_only || self.hide_passwords) {
            return Err(VaultError::invalid(
                "Collections",
                format!(
                    "`manage` cannot be combined with `readOnly` or `hidePasswords` (collection `{}`)",
                    self.id
                ),
            ));
        }
        Ok(())
    }

    /// The flags this entry writes (`assigned` always).
    fn flags(&self) -> [bool; 4] {
        [true, !self.read_only, !self.hide_passwords, self.manage]
    }
}

/// Name: 1 to 100 characters after trimming.
pub fn check_name(name: Option<&str>) -> Result<String, VaultError> {
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(VaultError::invalid("Name", "the name is required"));
    }
    if name.chars().count() > 100 {
        return Err(VaultError::invalid(
            "Name",
            "the name must be at most 100 characters",
        ));
    }
    Ok(name.to_string())
}

/// External id: absent/empty = none, at most 300 characters.
pub fn check_external_id(external_id: Option<&str>) -> Result<Option<String>, VaultError> {
    match external_id.map(str::trim).filter(|e| !e.is_empty()) {
        None => Ok(None),
        Some(e) if e.chars().count() > 300 => Err(VaultError::invalid(
            "ExternalId",
            "the external id must be at most 300 characters",
        )),
        Some(e) => Ok(Some(e.to_string())),
    }
}

/// Access entries: each valid, each id once.
pub fn check_access(entries: &[Access]) -> Result<(), VaultError> {
    for (at, entry) in entries.iter().enumerate() {
        entry.check()?;
        if entries.iter().take(at).any(|e| e.id == entry.id) {
            return Err(VaultError::invalid(
                "Collections",
                format!("`{}` is listed twice", entry.id),
            ));
        }
    }
    Ok(())
}

fn key(org: &str, id: &str) -> String {
    format!("{org}/{id}")
}

/// The group `id` of `org`: 404 when missing or in another organization.
pub fn load_group(cx: &Cx<'_>, org: &str, id: &str) -> Result<VaultGroup, FacadeError> {
    VAULT_GROUPS
        .get(cx.view, id)?
        .filter(|g| g.org_id == org)
        .ok_or_else(|| FacadeError::not_found("group"))
}

/// The collection `id` of `org`: 404 when missing or in another organization.
pub fn load_collection(cx: &Cx<'_>, org: &str, id: &str) -> Result<Collection, FacadeError> {
    COLLECTIONS
        .get(cx.view, id)?
        .filter(|c| c.org_id == org)
        .ok_or_else(|| FacadeError::not_found("collection"))
}

/// Every record of `records` listed under `{org}/` in `index`, in id order.
fn in_org<T: Serialize + serde::de::DeserializeOwned>(
    cx: &Cx<'_>,
    index: &Keyspace<String>,
    records: &Keyspace<T>,
    org: &str,
) -> Result<Vec<T>, FacadeError> {
    let mut out = Vec::new();
    for (_, id) in index.scan(cx.view, &format!("{org}/"))? {
        if let Some(record) = records.get(cx.view, &id)? {
            out.push(record);
        }
    }
    Ok(out)
}

/// Every group of `org`, in id order.
pub fn groups_in_org(cx: &Cx<'_>, org: &str) -> Result<Vec<VaultGroup>, FacadeError> {
    in_org(cx, &ORG_VAULT_GROUPS, &VAULT_GROUPS, org)
}

/// Every collection of `org`, in id order.
pub fn collections_in_org(cx: &Cx<'_>, org: &str) -> Result<Vec<Collection>, FacadeError> {
    in_org(cx, &ORG_COLLECTIONS, &COLLECTIONS, org)
}

/// The collection access entries of group `id` (decoded from its flag tuples).
pub fn group_access(cx: &Cx<'_>, id: &str) -> Result<Vec<Access>, FacadeError> {
    let subject = Grantee::Group.subject(id)?;
    let mut found: BTreeMap<String, [bool; 4]> = BTreeMap::new();
    for (at, flag) in FLAGS.iter().enumerate() {
        let relation = Grantee::Group.relation(flag);
        for rel in cx.resources_of(&subject, COLLECTION_TYPE, &relation)? {
            let flags = found.entry(rel.resource.object_id).or_default();
            if let Some(value) = flags.get_mut(at) {
                *value = true;
            }
        }
    }
    Ok(found
        .into_iter()
        .filter(|(_, [assigned, ..])| *assigned)
        .map(|(id, [_, edit, showpw, manage])| Access {
            id,
            read_only: !edit,
            hide_passwords: !showpw,
            manage,
        })
        .collect())
}

/// The access entries on collection `id` for `grantee`s (group or user ids).
pub fn collection_access(
    cx: &Cx<'_>,
    id: &str,
    grantee: Grantee,
) -> Result<Vec<Access>, FacadeError> {
    let collection = object(COLLECTION_TYPE, id)?;
    cx.subjects(&collection, &grantee.relation("assigned"))?
        .into_iter()
        .map(|rel| {
            let who = rel.subject.object.object_id.clone();
            entry_of(cx, &rel, grantee, who)
        })
        .collect()
}

/// The entry an `assigned_*` tuple stands for, named `id`: its other flags read back.
fn entry_of(
    cx: &Cx<'_>,
    assigned: &Relationship,
    grantee: Grantee,
    id: String,
) -> Result<Access, FacadeError> {
    let has = |flag: &str| -> Result<bool, FacadeError> {
        cx.exists(&Relationship::new(
            assigned.resource.clone(),
            &grantee.relation(flag),
            assigned.subject.clone(),
        ))
    };
    Ok(Access {
        read_only: !has("edit")?,
        hide_passwords: !has("showpw")?,
        manage: has("manage")?,
        id,
    })
}

/// Deletes every flag tuple `collection#*@subject`.
fn clear_flags(tx: &mut Tx, collection: &ObjectRef, grantee: Grantee, subject: &SubjectRef) {
    for flag in FLAGS {
        tx.delete(Relationship::new(
            collection.clone(),
            &grantee.relation(flag),
            subject.clone(),
        ));
    }
}

/// Writes the flag tuples of one entry (after clearing the old ones, so the last write wins).
fn write_flags(
    tx: &mut Tx,
    collection: &ObjectRef,
    grantee: Grantee,
    subject: &SubjectRef,
    entry: &Access,
) {
    clear_flags(tx, collection, grantee, subject);
    for (flag, on) in FLAGS.iter().zip(entry.flags()) {
        if on {
            tx.touch(Relationship::new(
                collection.clone(),
                &grantee.relation(flag),
                subject.clone(),
            ));
        }
    }
}

/// How a group edit treats collections the caller may not manage
/// (`app/collection#manage_access`), as Bitwarden's web vault API does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// No rule (organization keys, whose service user manages everything anyway).
    Off,
    /// Creating a group: granting such a collection is a 404, as Bitwarden answers.
    Create,
    /// Updating a group: entries on such collections stay as they are, whatever was posted.
    Update,
}

/// Replaces group `id`'s collection access with `entries`; every collection must be in
/// `org` (404). Under a [`Guard`], a collection whose entry would change needs
/// `manage_access` by the caller.
pub fn set_group_access(
    cx: &Cx<'_>,
    tx: &mut Tx,
    org: &str,
    id: &str,
    entries: &[Access],
    guard: Guard,
) -> Result<(), FacadeError> {
    let subject = Grantee::Group.subject(id)?;
    let current = group_access(cx, id)?;
    let mut wanted: Vec<Access> = Vec::new();
    for entry in entries {
        load_collection(cx, org, &entry.id)?;
        wanted.push(entry.clone());
    }
    if guard != Guard::Off {
        let mut changed: Vec<&str> = Vec::new();
        for entry in &wanted {
            if !current.contains(entry) {
                changed.push(&entry.id);
            }
        }
        for entry in &current {
            if !wanted.contains(entry) && !changed.contains(&entry.id.as_str()) {
                changed.push(&entry.id);
            }
        }
        let mut kept: Vec<String> = Vec::new();
        for collection in changed {
            if cx.can(&object(COLLECTION_TYPE, collection)?, "manage_access")? {
                continue;
            }
            if guard == Guard::Create {
                return Err(FacadeError::not_found("collection"));
            }
            kept.push(collection.to_string());
        }
        wanted.retain(|e| !kept.contains(&e.id));
        wanted.extend(current.iter().filter(|e| kept.contains(&e.id)).cloned());
    }
    for entry in &current {
        clear_flags(
            tx,
            &object(COLLECTION_TYPE, &entry.id)?,
            Grantee::Group,
            &subject,
        );
    }
    for entry in &wanted {
        write_flags(
            tx,
            &object(COLLECTION_TYPE, &entry.id)?,
            Grantee::Group,
            &subject,
            entry,
        );
    }
    Ok(())
}

/// Replaces the `grantee` entries on collection `id` with `entries`; each group must be in
/// `org` (404), each user a member of it (400).
pub fn set_collection_access(
    cx: &Cx<'_>,
    tx: &mut Tx,
    org: &str,
    id: &str,
    grantee: Grantee,
    entries: &[Access],
) -> Result<(), VaultError> {
    let collection = object(COLLECTION_TYPE, id)?;
    for current in collection_access(cx, id, grantee)? {
        clear_flags(tx, &collection, grantee, &grantee.subject(&current.id)?);
    }
    for entry in entries {
        match grantee {
            Grantee::Group => {
                load_group(cx, org, &entry.id)?;
            }
            Grantee::User => require_org_user(cx, org, &entry.id)?,
        }
        write_flags(
            tx,
            &collection,
            grantee,
            &grantee.subject(&entry.id)?,
            entry,
        );
    }
    Ok(())
}

/// 400 unless `user` is a member of the organization (an organization user id is the
/// user's id).
pub fn require_org_user(cx: &Cx<'_>, org: &str, user: &str) -> Result<(), VaultError> {
    if orgs::is_member(cx, org, user)? {
        Ok(())
    } else {
        Err(VaultError::invalid(
            "Users",
            format!("`{user}` is not a user of the organization"),
        ))
    }
}

/// The member ids of group `id`.
pub fn members(cx: &Cx<'_>, id: &str) -> Result<Vec<String>, FacadeError> {
    Ok(cx
        .subjects(&object(GROUP_TYPE, id)?, "member")?
        .into_iter()
        .filter(|r| r.subject.object.object_type == USER_TYPE)
        .map(|r| r.subject.object.object_id)
        .collect())
}

fn member_tuple(id: &str, user: &str) -> Result<Relationship, FacadeError> {
    Ok(Relationship::new(
        object(GROUP_TYPE, id)?,
        "member",
        SubjectRef::new(USER_TYPE, user, None)?,
    ))
}

/// Adds `users` to group `id` (each an organization user: 400 otherwise).
pub fn add_members(
    cx: &Cx<'_>,
    tx: &mut Tx,
    org: &str,
    id: &str,
    users: &[String],
) -> Result<(), VaultError> {
    for user in users {
        require_org_user(cx, org, user)?;
        tx.touch(member_tuple(id, user)?);
    }
    Ok(())
}

/// Removes `users` from group `id` (non-members are ignored).
pub fn remove_members(tx: &mut Tx, id: &str, users: &[String]) -> Result<(), FacadeError> {
    for user in users {
        if crate::tuple::validate_object_id(user).is_ok() {
            tx.delete(member_tuple(id, user)?);
        }
    }
    Ok(())
}

/// Replaces group `id`'s members with `users`.
pub fn set_members(
    cx: &Cx<'_>,
    tx: &mut Tx,
    org: &str,
    id: &str,
    users: &[String],
) -> Result<(), VaultError> {
    let current = members(cx, id)?;
    let gone: Vec<String> = current.into_iter().filter(|u| !users.contains(u)).collect();
    remove_members(tx, id, &gone)?;
    add_members(cx, tx, org, id, users)
}

fn access_all_tuple(org: &str, id: &str) -> Result<Relationship, FacadeError> {
    Ok(Relationship::new(
        object(VAULT_TYPE, org)?,
        "access_all",
        Grantee::Group.subject(id)?,
    ))
}

/// The tuples tying `org`'s vault object to the organization (written with the first
/// collection or group, touched again harmlessly).
fn vault_of(tx: &mut Tx, org: &str) -> Result<ObjectRef, FacadeError> {
    let vault = object(VAULT_TYPE, org)?;
    tx.touch(Relationship::new(
        vault.clone(),
        "org",
        SubjectRef::new(ORG_TYPE, org, None)?,
    ));
    Ok(vault)
}

/// What a create or a full update writes for a group.
#[derive(Debug, Clone, Default)]
pub struct GroupInput {
    /// Checked name.
    pub name: String,
    /// Checked external id.
    pub external_id: Option<String>,
    /// `accessAll`.
    pub access_all: bool,
}

/// Records (and indexes) group `group`, replacing `old` if given: 409 when the external id is
/// taken by another group of the organization.
fn put_group(
    cx: &Cx<'_>,
    tx: &mut Tx,
    group: &VaultGroup,
    old: Option<&VaultGroup>,
) -> Result<(), FacadeError> {
    let old_external = old
        .and_then(|g| g.external_id.as_ref())
        .map(|e| e.to_lowercase());
    let new_external = group.external_id.as_ref().map(|e| e.to_lowercase());
    if old_external != new_external {
        if let Some(old) = &old_external {
            tx.remove(&GROUP_EXTERNAL_IDS, &key(&group.org_id, old));
        }
        if let Some(new) = &new_external {
            let index = key(&group.org_id, new);
            if GROUP_EXTERNAL_IDS.get(cx.view, &index)?.is_some() {
                return Err(FacadeError::AlreadyExists(format!(
                    "a group with external id `{}` already exists",
                    group.external_id.as_deref().unwrap_or_default()
                )));
            }
            tx.require_absent(&GROUP_EXTERNAL_IDS, &index);
            tx.put(&GROUP_EXTERNAL_IDS, &index, &group.id)?;
        }
    }
    let access_all = access_all_tuple(&group.org_id, &group.id)?;
    if group.access_all {
        vault_of(tx, &group.org_id)?;
        tx.touch(access_all);
    } else {
        tx.delete(access_all);
    }
    tx.put(&ORG_VAULT_GROUPS, &key(&group.org_id, &group.id), &group.id)?;
    tx.put(&VAULT_GROUPS, &group.id, group)?;
    Ok(())
}

/// Creates a group in `org` (the organization must exist: 404).
pub fn create_group(
    cx: &Cx<'_>,
    tx: &mut Tx,
    org: &str,
    input: GroupInput,
) -> Result<VaultGroup, FacadeError> {
    orgs::load(cx, org)?;
    let at = now();
    let group = VaultGroup {
        id: new_id(),
        org_id: org.to_string(),
        name: input.name,
        external_id: input.external_id,
        access_all: input.access_all,
        created_at: at.clone(),
        revision_date: at,
    };
    tx.touch(Relationship::new(
        object(GROUP_TYPE, &group.id)?,
        "org",
        SubjectRef::new(ORG_TYPE, org, None)?,
    ));
    put_group(cx, tx, &group, None)?;
    Ok(group)
}

/// Replaces a group's name, external id and `accessAll`.
pub fn update_group(
    cx: &Cx<'_>,
    tx: &mut Tx,
    old: &VaultGroup,
    input: GroupInput,
) -> Result<VaultGroup, FacadeError> {
    let group = VaultGroup {
        name: input.name,
        external_id: input.external_id,
        access_all: input.access_all,
        revision_date: now(),
        ..old.clone()
    };
    put_group(cx, tx, &group, Some(old))?;
    Ok(group)
}

/// The group's cascade: its tuples, every grant to it (collection flags, `accessAll`, role
/// bindings it bears), its records.
pub fn delete_group(cx: &Cx<'_>, tx: &mut Tx, group: &VaultGroup) -> Result<(), FacadeError> {
    graph::forget(cx, tx, &object(GROUP_TYPE, &group.id)?)?;
    remove_group_records(tx, group);
    Ok(())
}

fn remove_group_records(tx: &mut Tx, group: &VaultGroup) {
    if let Some(external) = &group.external_id {
        tx.remove(
            &GROUP_EXTERNAL_IDS,
            &key(&group.org_id, &external.to_lowercase()),
        );
    }
    tx.remove(&ORG_VAULT_GROUPS, &key(&group.org_id, &group.id));
    tx.remove(&VAULT_GROUPS, &group.id);
}

/// The records of `org`'s groups and collections (their tuples go with the organization's).
pub fn remove_org_records(cx: &Cx<'_>, tx: &mut Tx, org: &str) -> Result<(), FacadeError> {
    for group in groups_in_org(cx, org)? {
        remove_group_records(tx, &group);
    }
    for collection in collections_in_org(cx, org)? {
        tx.remove(&ORG_COLLECTIONS, &key(org, &collection.id));
        tx.remove(&COLLECTIONS, &collection.id);
    }
    Ok(())
}

/// The collection access entries user `user` holds directly, on `org`'s collections.
pub fn user_access(cx: &Cx<'_>, org: &str, user: &str) -> Result<Vec<Access>, FacadeError> {
    let mut out = Vec::new();
    for rel in cx.resources_of(
        &Grantee::User.subject(user)?,
        COLLECTION_TYPE,
        &Grantee::User.relation("assigned"),
    )? {
        let id = rel.resource.object_id.clone();
        if COLLECTIONS
            .get(cx.view, &id)?
            .is_some_and(|c| c.org_id == org)
        {
            out.push(entry_of(cx, &rel, Grantee::User, id)?);
        }
    }
    Ok(out)
}

/// Replaces user `user`'s direct entries on `org`'s collections with `entries` (each
/// collection in `org`: 404).
pub fn set_user_access(
    cx: &Cx<'_>,
    tx: &mut Tx,
    org: &str,
    user: &str,
    entries: &[Access],
) -> Result<(), FacadeError> {
    let subject = Grantee::User.subject(user)?;
    for current in user_access(cx, org, user)? {
        clear_flags(
            tx,
            &object(COLLECTION_TYPE, &current.id)?,
            Grantee::User,
            &subject,
        );
    }
    for entry in entries {
        load_collection(cx, org, &entry.id)?;
        write_flags(
            tx,
            &object(COLLECTION_TYPE, &entry.id)?,
            Grantee::User,
            &subject,
            entry,
        );
    }
    Ok(())
}

/// Creates a collection in `org`: its record and its `org` and `vault` tuples.
pub fn create_collection(
    cx: &Cx<'_>,
    tx: &mut Tx,
    org: &str,
    name: String,
    external_id: Option<String>,
) -> Result<Collection, FacadeError> {
    orgs::load(cx, org)?;
    let collection = Collection {
        id: new_id(),
        org_id: org.to_string(),
        name,
        external_id,
    };
    let resource = object(COLLECTION_TYPE, &collection.id)?;
    tx.touch(Relationship::new(
        resource.clone(),
        "org",
        SubjectRef::new(ORG_TYPE, org, None)?,
    ));
    let vault = vault_of(tx, org)?;
    tx.touch(Relationship::new(
        resource,
        "vault",
        SubjectRef::new(VAULT_TYPE, &vault.object_id, None)?,
    ));
    tx.put(&ORG_COLLECTIONS, &key(org, &collection.id), &collection.id)?;
    tx.put(&COLLECTIONS, &collection.id, &collection)?;
    Ok(collection)
}

/// `{id, name, externalId, organizationId, object: "collection"}`.
pub fn collection_json(collection: &Collection) -> Value {
    json!({
        "object": "collection",
        "id": collection.id,
        "organizationId": collection.org_id,
        "name": collection.name,
        "externalId": collection.external_id,
    })
}

/// What an organization keeps about one of its users (from SCIM or the public API): never
/// shown to another organization, never written to the user's own record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrgUser {
    /// The directory's id for the user.
    #[serde(default)]
    pub external_id: Option<String>,
    /// A display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// E-mail addresses, the primary one first.
    #[serde(default)]
    pub emails: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// Organization users by `{org}/{user}`.
pub const ORG_USERS: Keyspace<OrgUser> = Keyspace::new("vault_org_user");

/// The record key of `user` in `org`.
pub fn org_user_key(org: &str, user: &str) -> String {
    key(org, user)
}

/// What `org` keeps about `user` (an empty record when nothing).
pub fn org_user(cx: &Cx<'_>, org: &str, user: &str) -> Result<OrgUser, FacadeError> {
    Ok(ORG_USERS
        .get(cx.view, &org_user_key(org, user))?
        .unwrap_or_default())
}

/// Stages `record` as what `org` keeps about `user`.
pub fn put_org_user(
    tx: &mut Tx,
    org: &str,
    user: &str,
    record: &OrgUser,
) -> Result<(), FacadeError> {
    tx.put(&ORG_USERS, &org_user_key(org, user), record)
}

/// The ids of `org`'s Bitwarden-style groups that `user` is a member of.
pub fn groups_of(cx: &Cx<'_>, org: &str, user: &str) -> Result<Vec<String>, FacadeError> {
    let mut out = Vec::new();
    let subject = SubjectRef::new(USER_TYPE, user, None)?;
    for rel in cx.resources_of(&subject, GROUP_TYPE, "member")? {
        let id = rel.resource.object_id;
        if VAULT_GROUPS
            .get(cx.view, &id)?
            .is_some_and(|g| g.org_id == org)
        {
            out.push(id);
        }
    }
    Ok(out)
}

/// Makes `user` a member of exactly the groups `wanted` among `org`'s groups (each must be
/// a group of `org`: 404).
pub fn set_groups_of(
    cx: &Cx<'_>,
    tx: &mut Tx,
    org: &str,
    user: &str,
    wanted: &[String],
) -> Result<(), FacadeError> {
    for id in wanted {
        load_group(cx, org, id)?;
        tx.touch(member_tuple(id, user)?);
    }
    for id in groups_of(cx, org, user)? {
        if !wanted.contains(&id) {
            tx.delete(member_tuple(&id, user)?);
        }
    }
    Ok(())
}

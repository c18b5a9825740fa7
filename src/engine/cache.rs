//! The check cache: answers of (resource, permission, subject, request context) kept with the
//! revision and the instant they were computed at.
//!
//! An entry never decides by itself whether it may answer: the caller asks the write tracker
//! whether any relation the answer depends on was written between the entry's revision and the
//! request's (see `freshness`), and the entry's own fields say whether it is still inside its
//! expiration, was computed at or before the request's "now", and needed no more depth than the
//! request has left. Errors are never stored. The cache is bounded by an estimate of its bytes;
//! an entry that rests on an expiring relationship is dropped no later than that expiration, and
//! reading an entry never extends its life.
//!
//! Invariant: a cache hit never changes an answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use moka::sync::Cache;
use moka::Expiry;

use super::Permissionship;
use crate::revision::Revision;
use crate::tuple::{ObjectRef, SubjectRef};

/// Hit and miss counts and the size of the check cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Look-ups answered from the cache.
    pub hits: u64,
    /// Look-ups that found nothing usable (absent, stale, expired, or needing more depth).
    pub misses: u64,
    /// Entries held (approximate: the cache applies its bookkeeping lazily).
    pub entries: u64,
    /// Estimated bytes held (approximate, like `entries`).
    pub bytes: u64,
    /// The configured bound in bytes (0 when the cache is off).
    pub capacity_bytes: u64,
}

/// What identifies an answer: schema generation, the question, and the request context.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    generation: u64,
    /// `resource_type 0 resource_id 0 member 0 subject_type 0 subject_id 0 subject_relation`
    /// (names and ids never contain a NUL byte, so the text is unambiguous).
    question: Box<str>,
    /// The request context as JSON, shared by every key of one request; empty when the schema
    /// has no caveats (then no answer depends on it).
    context: Arc<str>,
}

impl CacheKey {
    pub(crate) fn new(
        generation: u64,
        resource: &ObjectRef,
        member: &str,
        subject: &SubjectRef,
        context: &Arc<str>,
    ) -> Self {
        let relation = subject.relation.as_deref().unwrap_or("");
        let mut question = String::with_capacity(
            resource.object_type.len()
                + resource.object_id.len()
                + member.len()
                + subject.object.object_type.len()
                + subject.object.object_id.len()
                + relation.len()
                + 5,
        );
        for (i, part) in [
            resource.object_type.as_str(),
            resource.object_id.as_str(),
            member,
            subject.object.object_type.as_str(),
            subject.object.object_id.as_str(),
            relation,
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                question.push('\0');
            }
            question.push_str(part);
        }
        Self {
            generation,
            question: question.into_boxed_str(),
            context: Arc::clone(context),
        }
    }
}

/// A cached answer and the conditions under which it may be reused.
#[derive(Debug, Clone)]
pub(crate) struct CachedAnswer {
    /// The answer.
    pub(crate) answer: Permissionship,
    /// The snapshot revision it was computed at.
    pub(crate) revision: Revision,
    /// The snapshot's "now" when it was computed (if the store pins one).
    pub(crate) computed_at: Option<DateTime<Utc>>,
    /// The earliest expiration among the relationships the walk read, if any.
    pub(crate) expires: Option<DateTime<Utc>>,
    /// The depth budget the computation needed (more budget gives the same answer, less may not).
    pub(crate) depth_needed: u32,
}

impl CachedAnswer {
    /// Whether the entry's time window and depth allow it to answer a request whose snapshot
    /// reads at `now` with `depth` levels left.
    pub(crate) fn usable(&self, now: Option<DateTime<Utc>>, depth: u32) -> bool {
        if depth < self.depth_needed {
            return false;
        }
        match (now, self.computed_at) {
            (Some(now), Some(computed)) if now < computed => return false,
            _ => {}
        }
        match (self.expires, now) {
            (None, _) => true,
            (Some(expires), Some(now)) => now < expires,
            (Some(_), None) => false,
        }
    }

    /// How long (in wall-clock time) the entry may live: until its expiration, as measured on
    /// the clock it was computed with.
    fn time_to_live(&self) -> Option<Duration> {
        let expires = self.expires?;
        let computed = self.computed_at?;
        Some((expires - computed).to_std().unwrap_or(Duration::ZERO))
    }

    fn weight(key: &CacheKey, value: &CachedAnswer) -> u32 {
        let missing = match &value.answer {
            Permissionship::Conditional { missing } => {
                missing.iter().map(|m| m.len() + 32).sum::<usize>()
            }
            _ => 0,
        };
        // The map's own per-entry overhead is of the order of a hundred bytes.
        let bytes = 128
            + std::mem::size_of::<CacheKey>()
            + std::mem::size_of::<CachedAnswer>()
            + key.question.len()
            + missing;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// Drops an entry at its expiration; reads and overwrites never extend an entry past its own.
struct UntilExpiration;

impl Expiry<CacheKey, CachedAnswer> for UntilExpiration {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &CachedAnswer,
        _created_at: Instant,
    ) -> Option<Duration> {
        value.time_to_live()
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        value: &CachedAnswer,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        value.time_to_live()
    }
}

/// A bounded cache of check answers with hit and miss counters.
pub(crate) struct CheckCache {
    entries: Cache<CacheKey, CachedAnswer>,
    capacity_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for CheckCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl CheckCache {
    /// A cache holding about `capacity_bytes` bytes.
    pub(crate) fn new(capacity_bytes: u64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(capacity_bytes)
                .weigher(CachedAnswer::weight)
                .expire_after(UntilExpiration)
                .build(),
            capacity_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The entry under `key`, if any (usable or not: the caller decides and counts).
    pub(crate) fn get(&self, key: &CacheKey) -> Option<CachedAnswer> {
        self.entries.get(key)
    }

    /// Counts one look-up.
    pub(crate) fn count(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Stores an answer (replacing any entry under the same key).
    pub(crate) fn insert(&self, key: CacheKey, value: CachedAnswer) {
        if value.time_to_live() == Some(Duration::ZERO) {
            return;
        }
        self.entries.insert(key, value);
    }

    /// Drops every entry (a new schema makes them all unusable anyway).
    pub(crate) fn clear(&self) {
        self.entries.invalidate_all();
    }

    /// Current counters and size.
    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.entries.entry_count(),
            bytes: self.entries.weighted_size(),
            capacity_bytes: self.capacity_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(expires: Option<&str>, depth: u32) -> CachedAnswer {
        let at = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .unwrap_or_else(|e| panic!("{e}"))
                .with_timezone(&Utc)
        };
        CachedAnswer {
            answer: Permissionship::Has,
            revision: Revision(1),
            computed_at: Some(at("2030-01-01T00:00:00Z")),
            expires: expires.map(at),
            depth_needed: depth,
        }
    }

    fn at(t: &str) -> Option<DateTime<Utc>> {
        Some(
            DateTime::parse_from_rfc3339(t)
                .unwrap_or_else(|e| panic!("{e}"))
                .with_timezone(&Utc),
        )
    }

    #[test]
    fn an_entry_answers_only_inside_its_time_window_and_depth() {
        let entry = answer(Some("2030-01-01T00:00:10Z"), 3);
        assert!(entry.usable(at("2030-01-01T00:00:09Z"), 3));
        assert!(!entry.usable(at("2030-01-01T00:00:10Z"), 3));
        assert!(
            !entry.usable(at("2029-12-31T23:59:59Z"), 3),
            "clock moved back"
        );
        assert!(
            !entry.usable(at("2030-01-01T00:00:01Z"), 2),
            "too little depth"
        );
        assert!(!entry.usable(None, 3), "an expiring answer needs a clock");
        assert!(answer(None, 1).usable(None, 1));
    }

    #[test]
    fn keys_separate_their_parts() {
        let ctx: Arc<str> = Arc::from("");
        let key = |r: &str, s: &str| {
            CacheKey::new(
                1,
                &ObjectRef::parse(r).unwrap_or_else(|e| panic!("{e}")),
                "view",
                &SubjectRef::parse(s).unwrap_or_else(|e| panic!("{e}")),
                &ctx,
            )
        };
        assert_ne!(key("doc:a", "user:bc"), key("doc:ab", "user:c"));
        assert_ne!(key("doc:a", "user:b"), key("doc:a", "user:b#member"));
        assert_eq!(key("doc:a", "user:b"), key("doc:a", "user:b"));
    }

    #[test]
    fn counts_hits_and_misses() {
        let cache = CheckCache::new(1 << 20);
        cache.count(true);
        cache.count(false);
        cache.count(false);
        let stats = cache.stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.capacity_bytes),
            (1, 2, 1 << 20)
        );
    }
}

//! One client's settings: `SET`, `SHOW`, `RESET` and `current_setting()`.
//!
//! `omen.ef_search` is the one setting that changes search; pgvector's
//! `hnsw.ef_search` is an alias for it so pgvector scripts keep working.
//! The others exist because drivers read or set them on connect.

use std::collections::BTreeMap;

use omen_engine::index::SearchParams;

use crate::{Result, SqlError};

/// The server version we report: new enough that drivers use modern
/// catalog queries, with our name attached.
pub const SERVER_VERSION: &str = "16.0 (OmenDB)";

/// The canonical name of the search width setting.
pub const EF_SEARCH: &str = "omen.ef_search";

/// Largest accepted `ef_search`.
pub const MAX_EF_SEARCH: usize = 10_000;

/// Settings of one session.
#[derive(Debug, Clone)]
pub struct Session {
    settings: BTreeMap<String, String>,
}

impl Default for Session {
    fn default() -> Self {
        let mut settings = BTreeMap::new();
        for (k, v) in Session::DEFAULTS {
            settings.insert(k.to_string(), v.to_string());
        }
        settings.insert(EF_SEARCH.into(), SearchParams::default().ef.to_string());
        Session { settings }
    }
}

impl Session {
    /// Settings every session starts with (what PostgreSQL reports).
    const DEFAULTS: [(&'static str, &'static str); 10] = [
        ("server_version", "16.0"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("datestyle", "ISO, MDY"),
        ("timezone", "UTC"),
        ("standard_conforming_strings", "on"),
        ("integer_datetimes", "on"),
        ("search_path", "\"$user\", public"),
        ("transaction_isolation", "read committed"),
        ("application_name", ""),
    ];

    /// The canonical name of `name` (lower case, aliases resolved).
    fn canonical(name: &str) -> String {
        let n = name.trim().to_ascii_lowercase();
        match n.as_str() {
            "hnsw.ef_search" => EF_SEARCH.into(),
            _ => n,
        }
    }

    /// `SET name = value`.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let key = Session::canonical(name);
        if key == EF_SEARCH {
            let ef: usize = value.trim().parse().ok().filter(|ef| (1..=MAX_EF_SEARCH).contains(ef)).ok_or_else(|| {
                SqlError::invalid(format!(
                    "invalid value for parameter \"{name}\": \"{value}\" (an integer from 1 to {MAX_EF_SEARCH})"
                ))
            })?;
            self.settings.insert(key, ef.to_string());
            return Ok(());
        }
        self.settings.insert(key, value.to_string());
        Ok(())
    }

    /// `RESET name` / `SET name TO DEFAULT`.
    pub fn reset(&mut self, name: &str) {
        let key = Session::canonical(name);
        let fresh = Session::default();
        match fresh.settings.get(&key) {
            Some(v) => self.settings.insert(key, v.clone()),
            None => self.settings.remove(&key),
        };
    }

    /// `SHOW name` / `current_setting(name)`.
    pub fn get(&self, name: &str) -> Result<&str> {
        let key = Session::canonical(name);
        self.settings
            .get(&key)
            .map(String::as_str)
            .ok_or_else(|| SqlError::UndefinedSetting(name.to_string()))
    }

    /// Every setting, for `SHOW ALL`.
    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Search parameters for a query returning `k` rows: the session's
    /// `ef_search`, raised to `k` when `k` is larger (a search cannot
    /// return more than it keeps).
    pub fn search_params(&self, k: usize) -> SearchParams {
        let ef = self
            .settings
            .get(EF_SEARCH)
            .and_then(|v| v.parse().ok())
            .unwrap_or(SearchParams::default().ef);
        SearchParams {
            ef: ef.max(k),
            ..SearchParams::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ef_search_has_the_pgvector_alias_and_is_validated() {
        let mut s = Session::default();
        assert_eq!(s.get("omen.ef_search").unwrap(), "64");
        s.set("hnsw.ef_search", "100").unwrap();
        assert_eq!(s.get("OMEN.EF_SEARCH").unwrap(), "100");
        assert_eq!(s.search_params(10).ef, 100);
        assert_eq!(s.search_params(500).ef, 500);
        assert!(s.set("omen.ef_search", "0").is_err());
        assert!(s.set("omen.ef_search", "many").is_err());
        s.reset("hnsw.ef_search");
        assert_eq!(s.get("omen.ef_search").unwrap(), "64");
        assert!(matches!(
            s.get("no.such"),
            Err(SqlError::UndefinedSetting(_))
        ));
    }
}

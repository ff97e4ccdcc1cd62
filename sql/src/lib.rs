//! OmenDB's SQL surface: pgvector-compatible SQL over the engine, and the
//! PostgreSQL wire protocol that serves it.
//!
//! - [`vector`]: pgvector's `vector` text and binary forms and distances;
//! - [`datum`]: SQL values and the PostgreSQL types they travel as;
//! - [`expr`]: evaluating expressions and typing `$n` parameters;
//! - [`filter`]: `WHERE` on attribute columns as the engine's filter tree;
//! - [`catalog`]: tables and the [`catalog::Table`] trait;
//! - [`loader`]: segment files as tables, and hot reload;
//! - [`plan`]: which query shape a `SELECT` is;
//! - [`exec`]: running statements ([`exec::Executor`]);
//! - [`write`]: CREATE TABLE, INSERT, UPDATE, DELETE, DROP, CREATE INDEX;
//! - [`session`]: per-client settings (`omen.ef_search`);
//! - [`metrics`]: Prometheus counters;
//! - [`wire`]: the pgwire server: protocol handlers, authentication, TLS.
//!
//! Invariant: bad input from one client becomes a [`SqlError`] with a
//! SQLSTATE for that client; nothing a client sends panics the server.

pub mod catalog;
pub mod datum;
pub mod error;
pub mod exec;
pub mod expr;
pub mod filter;
pub mod loader;
pub mod metrics;
pub mod plan;
pub mod session;
pub mod vector;
pub mod wire;
pub mod write;

pub use error::{Result, SqlError};

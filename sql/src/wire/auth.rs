//! Who may connect: SCRAM-SHA-256 with users from a file, or, only when
//! the server listens on loopback and has no users file, trust.
//!
//! The users file holds one `name:password` per line (`#` starts a
//! comment). Passwords are salted and hashed once at load with a random
//! per-user salt; the file itself should be readable by the server only.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::ClientInfo;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::{Result, SqlError};

/// PBKDF2 iterations for SCRAM (PostgreSQL's default).
pub const SCRAM_ITERATIONS: usize = 4096;

/// Users and their salted passwords.
#[derive(Clone, Default)]
pub struct Users {
    by_name: HashMap<String, (Vec<u8>, Vec<u8>)>,
}

impl Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("Users")
            .field("count", &self.by_name.len())
            .finish()
    }
}

impl Users {
    /// Reads `name:password` lines from `path`.
    pub fn load(path: &Path) -> Result<Users> {
        let text =
            std::fs::read_to_string(path).map_err(|e| omen_format::FormatError::io(path, e))?;
        Users::parse(&text).map_err(|e| SqlError::invalid(format!("{}: {e}", path.display())))
    }

    /// Parses the users file's text.
    pub fn parse(text: &str) -> std::result::Result<Users, String> {
        let mut users = Users::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, password) = line
                .split_once(':')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                .ok_or_else(|| format!("line {}: expected name:password", n + 1))?;
            users.add(name, password);
        }
        if users.by_name.is_empty() {
            return Err("no users (one name:password per line)".into());
        }
        Ok(users)
    }

    /// Adds a user.
    pub fn add(&mut self, name: &str, password: &str) {
        let mut salt = Vec::with_capacity(16);
        for part in 0..2u64 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write(name.as_bytes());
            h.write_u64(part);
            salt.extend_from_slice(&h.finish().to_le_bytes());
        }
        let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
        self.by_name.insert(name.to_string(), (salt, salted));
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[derive(Debug)]
struct UserSource(Arc<Users>);

#[async_trait]
impl AuthSource for UserSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let name = login.user().unwrap_or_default();
        match self.0.by_name.get(name) {
            Some((salt, salted)) => Ok(Password::new(Some(salt.clone()), salted.clone())),
            None => Err(PgWireError::InvalidPassword(name.to_string())),
        }
    }
}

/// Accepts every client without a password.
#[derive(Debug)]
pub struct Trust;

impl NoopStartupHandler for Trust {}

/// The startup handler a server uses.
pub enum Startup {
    Trust(Trust),
    Scram(Box<SASLAuthStartupHandler<DefaultServerParameterProvider>>),
}

impl Debug for Startup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Startup::Trust(_) => "Startup::Trust",
            Startup::Scram(_) => "Startup::Scram",
        })
    }
}

impl Startup {
    /// SCRAM-SHA-256 against `users`.
    pub fn scram(users: Arc<Users>) -> Startup {
        let mut scram = ScramAuth::new(Arc::new(UserSource(users)));
        scram.set_iterations(SCRAM_ITERATIONS);
        let handler =
            SASLAuthStartupHandler::new(Arc::new(DefaultServerParameterProvider::default()))
                .with_scram(scram);
        Startup::Scram(Box::new(handler))
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Trust(t) => t.on_startup(client, message).await,
            Startup::Scram(s) => s.on_startup(client, message).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_file_parses_and_rejects_junk() {
        let u = Users::parse("# users\nalice:secret\n\nbob:pa:ss\n").unwrap();
        assert_eq!(u.len(), 2);
        assert!(Users::parse("alice").unwrap_err().contains("line 1"));
        assert!(Users::parse("# nothing\n").is_err());
        assert!(!format!("{u:?}").contains("secret"));
    }
}

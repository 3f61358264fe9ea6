//! Bearer-token authentication with read, write and admin scopes.

use serde::Deserialize;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Query: SQL, `/metrics`.
    Read,
    /// Ingest.
    Write,
    /// Everything, including administrative endpoints.
    Admin,
}

impl Scope {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

/// Why a request was not let in.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No token, or an unknown one: 401.
    Unauthenticated(&'static str),
    /// A valid token without the scope: 403.
    Forbidden(Scope),
}

/// The token table.
#[derive(Debug, Default, Clone)]
pub struct Auth {
    tokens: Vec<(String, String, Vec<Scope>)>,
}

impl Auth {
    /// Builds the table from configured tokens plus an optional all-scope admin token.
    pub fn new(tokens: &[crate::config::TokenConfig], admin_token: Option<String>) -> Self {
        let mut t: Vec<(String, String, Vec<Scope>)> = tokens
            .iter()
            .map(|c| (c.name.clone(), c.token.clone(), c.scopes.clone()))
            .collect();
        if let Some(a) = admin_token.filter(|a| !a.is_empty()) {
            t.push(("CREST_ADMIN_TOKEN".into(), a, vec![Scope::Admin]));
        }
        Self { tokens: t }
    }

    /// True when no token is configured (only allowed on loopback).
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Checks an `Authorization` header value for `needed`. Returns the token's name.
    pub fn check(&self, header: Option<&str>, needed: Scope) -> Result<&str, Denied> {
        if self.is_open() {
            return Ok("anonymous");
        }
        let header = header.ok_or(Denied::Unauthenticated("missing Authorization header"))?;
        let secret = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("Token "))
            .ok_or(Denied::Unauthenticated(
                "Authorization must be `Bearer <token>`",
            ))?
            .trim();
        let (name, _, scopes) = self
            .tokens
            .iter()
            .find(|(_, t, _)| constant_time_eq(t.as_bytes(), secret.as_bytes()))
            .ok_or(Denied::Unauthenticated("unknown token"))?;
        if scopes.contains(&Scope::Admin) || scopes.contains(&needed) {
            Ok(name)
        } else {
            Err(Denied::Forbidden(needed))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

//! The `[store]` table: which backend keeps shared state, and for PostgreSQL where it is (the URL is a
//! secret, from a file or an environment variable) and how the connection pool behaves. Knows the
//! settings, not the backends.

use super::raw::RawStore;
use super::{Secret, Validator};
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// Most connections a pool may be given.
pub const MAX_POOL_SIZE: i64 = 256;
/// Range of `statement_timeout_ms` and `connect_timeout_ms`.
pub const TIMEOUT_RANGE_MS: std::ops::RangeInclusive<i64> = 100..=60_000;

/// Where persistent state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    /// The embedded store in a data directory.
    Sled { path: PathBuf },
    /// In memory only: state is lost at exit. For tests and throwaway demos.
    Memory,
    /// A PostgreSQL database shared by every replica.
    Postgres(PostgresSettings),
}

/// A PostgreSQL store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// `postgresql://user:password@host:port/dbname`; a secret since it may carry the password.
    pub url: Secret,
    /// Most connections the pool opens (default 16).
    pub pool_size: usize,
    /// Server-side limit on one statement, and the client-side bound on one store call with
    /// `connect_timeout` (default 5 s).
    pub statement_timeout: Duration,
    /// Limit on connecting and on waiting for a free connection (default 3 s).
    pub connect_timeout: Duration,
    /// With `sslmode=verify-full`: the CA certificates (PEM) the server's certificate must chain
    /// to; its name must match the URL's host. `None`: plain TCP.
    pub tls_ca_file: Option<PathBuf>,
}

const POSTGRES_ONLY: &str = "applies only to kind = \"postgres\"";

impl Validator<'_> {
    /// Settings of `[store]`, or `None` after recording what is wrong.
    pub(super) fn store_settings(
        &mut self,
        raw: &RawStore,
        env_get: &dyn Fn(&str) -> Option<String>,
    ) -> Option<StoreSettings> {
        let kind = raw.kind.get_ref().as_str();
        if kind != "postgres" {
            let extra: [(&str, Option<usize>); 7] = [
                (
                    "tls_ca_file",
                    raw.tls_ca_file.as_ref().map(|s| s.span().start),
                ),
                ("url_file", raw.url_file.as_ref().map(|s| s.span().start)),
                ("url_env", raw.url_env.as_ref().map(|s| s.span().start)),
                ("pool_size", raw.pool_size.as_ref().map(|s| s.span().start)),
                (
                    "statement_timeout_ms",
                    raw.statement_timeout_ms.as_ref().map(|s| s.span().start),
                ),
                (
                    "connect_timeout_ms",
                    raw.connect_timeout_ms.as_ref().map(|s| s.span().start),
                ),
                (
                    "allow_plaintext",
                    raw.allow_plaintext.as_ref().map(|s| s.span().start),
                ),
            ];
            for (key, at) in extra {
                if let Some(at) = at {
                    self.err(Some(at), format!("store.{key} {POSTGRES_ONLY}"));
                }
            }
        }
        match kind {
            "sled" => Some(StoreSettings::Sled {
                path: PathBuf::from(env_get("ROLEGATE_STORE_PATH").unwrap_or(raw.path.clone())),
            }),
            "memory" => Some(StoreSettings::Memory),
            "postgres" => self.postgres(raw, env_get).map(StoreSettings::Postgres),
            other => {
                self.err(
                    Some(raw.kind.span().start),
                    format!(
                        "store.kind: unknown store '{other}' (expected sled, memory or postgres)"
                    ),
                );
                None
            }
        }
    }

    fn postgres(
        &mut self,
        raw: &RawStore,
        env_get: &dyn Fn(&str) -> Option<String>,
    ) -> Option<PostgresSettings> {
        let at = Some(raw.kind.span().start);
        let url = match (&raw.url_file, &raw.url_env) {
            (Some(_), Some(e)) => {
                self.err(
                    Some(e.span().start),
                    "store: set url_file or url_env, not both",
                );
                None
            }
            (None, None) => {
                self.err(
                    at,
                    "store: kind = \"postgres\" needs url_file or url_env (the database URL is a secret)",
                );
                None
            }
            (Some(f), None) => {
                let p = self.resolve(f.get_ref());
                match std::fs::read_to_string(&p) {
                    Ok(t) => Some((t.trim().to_string(), f.span().start, "url_file")),
                    Err(e) => {
                        self.err(
                            Some(f.span().start),
                            format!("store.url_file: cannot read {}: {e}", p.display()),
                        );
                        None
                    }
                }
            }
            (None, Some(e)) => match env_get(e.get_ref()) {
                Some(t) => Some((t.trim().to_string(), e.span().start, "url_env")),
                None => {
                    self.err(
                        Some(e.span().start),
                        format!("store.url_env: ${} is not set", e.get_ref()),
                    );
                    None
                }
            },
        };
        let mut verify_full = false;
        let url = url.and_then(|(text, at, key)| {
            let plaintext_ok = raw.allow_plaintext.as_ref().is_some_and(|b| *b.get_ref());
            match check_url(&text, plaintext_ok) {
                Ok(tls) => {
                    verify_full = tls;
                    Some(Secret::new(text))
                }
                Err(why) => {
                    self.err(Some(at), format!("store.{key}: {why}"));
                    None
                }
            }
        });
        let tls_ca_file = match (&raw.tls_ca_file, verify_full) {
            (Some(f), true) => Some(PathBuf::from(f.get_ref())),
            (Some(f), false) => {
                self.err(
                    Some(f.span().start),
                    "store.tls_ca_file: the database URL does not ask for TLS (add ?sslmode=verify-full)",
                );
                None
            }
            (None, true) => {
                self.err(
                    None,
                    "store: sslmode=verify-full needs store.tls_ca_file (the CA certificates, PEM, that sign the server's certificate)",
                );
                None
            }
            (None, false) => None,
        };
        let pool_size = self.bounded(&raw.pool_size, "pool_size", 16, 1..=MAX_POOL_SIZE);
        let statement = self.bounded(
            &raw.statement_timeout_ms,
            "statement_timeout_ms",
            5_000,
            TIMEOUT_RANGE_MS,
        );
        let connect = self.bounded(
            &raw.connect_timeout_ms,
            "connect_timeout_ms",
            3_000,
            TIMEOUT_RANGE_MS,
        );
        Some(PostgresSettings {
            url: url?,
            pool_size: usize::try_from(pool_size?).ok()?,
            statement_timeout: Duration::from_millis(u64::try_from(statement?).ok()?),
            connect_timeout: Duration::from_millis(u64::try_from(connect?).ok()?),
            tls_ca_file,
        })
    }

    fn bounded(
        &mut self,
        value: &Option<Spanned<i64>>,
        key: &str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        match value {
            None => Some(default),
            Some(v) if range.contains(v.get_ref()) => Some(*v.get_ref()),
            Some(v) => {
                self.err(
                    Some(v.span().start),
                    format!(
                        "store.{key}: {} is outside {}..={}",
                        v.get_ref(),
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }
}

/// Why a database URL is refused, without repeating it (it may hold a password); `Ok(true)` when it
/// asks for TLS (`sslmode=verify-full`).
fn check_url(text: &str, plaintext_ok: bool) -> Result<bool, String> {
    let url = url::Url::parse(text)
        .map_err(|e| format!("not a postgresql:// URL ({e}); the value is not shown"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "scheme '{}' is not postgresql (postgresql://user:password@host:port/dbname)",
            url.scheme()
        ));
    }
    if url.path().trim_start_matches('/').is_empty() {
        return Err("names no database (…/dbname)".into());
    }
    let modes: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k == "sslmode")
        .map(|(_, v)| v.into_owned())
        .collect();
    let tls = match modes.as_slice() {
        [] => false,
        [m] if m == "disable" => false,
        [m] if m == "verify-full" => true,
        [m] if matches!(m.as_str(), "allow" | "prefer" | "require" | "verify-ca") => {
            return Err(format!(
                "sslmode={m} does not check that the server is the one named in the URL: use \
                 sslmode=verify-full with store.tls_ca_file"
            ))
        }
        [m] => return Err(format!("sslmode={m} is not a PostgreSQL sslmode")),
        _ => return Err("sslmode is given more than once".into()),
    };
    if tls {
        return Ok(true);
    }
    // postgresql:// is not a scheme the URL standard knows, so every host reads as a name.
    let host = url.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    if !loopback && !plaintext_ok {
        return Err(format!(
            "host '{}' is not a loopback address, and connections to PostgreSQL are not encrypted: \
             set allow_plaintext = true only when the network between rolegate and PostgreSQL is \
             private",
            url.host_str().unwrap_or("")
        ));
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::check_url;
    use crate::config::{load_test_text, Config, StoreSettings};
    use std::time::Duration;

    const REST: &str = r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"
"#;

    fn load(store: &str, env: &[(&str, &str)]) -> Result<Config, Vec<String>> {
        load_test_text(&format!("{REST}\n[store]\n{store}\n"), env)
            .map_err(|e| e.0.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn a_postgres_store_takes_its_url_from_the_environment_with_defaults() {
        let url = "postgresql://rg:pw@127.0.0.1:5432/rolegate";
        let c = load(
            "kind = \"postgres\"\nurl_env = \"ROLEGATE_DATABASE_URL\"",
            &[("ROLEGATE_DATABASE_URL", url)],
        )
        .expect("loads");
        let StoreSettings::Postgres(pg) = &c.store else {
            panic!("not postgres: {:?}", c.store);
        };
        assert_eq!(pg.url.expose(), url);
        assert_eq!(
            (pg.pool_size, pg.statement_timeout, pg.connect_timeout),
            (16, Duration::from_secs(5), Duration::from_secs(3))
        );
        assert!(!format!("{c:?}").contains("pw@"), "the URL is redacted");
        assert!(
            c.warnings.is_empty(),
            "the named variable is known: {:?}",
            c.warnings
        );
    }

    #[test]
    fn postgres_settings_are_validated() {
        let env = [("DB", "postgresql://rg:pw@127.0.0.1/rolegate")];
        type Env<'a> = &'a [(&'a str, &'a str)];
        let cases: [(&str, Env, &str); 8] = [
            ("kind = \"postgres\"", &env, "needs url_file or url_env"),
            (
                "kind = \"postgres\"\nurl_env = \"MISSING\"",
                &env,
                "$MISSING is not set",
            ),
            (
                "kind = \"postgres\"\nurl_env = \"DB\"\nurl_file = \"db-url\"",
                &env,
                "not both",
            ),
            (
                "kind = \"postgres\"\nurl_env = \"DB\"\npool_size = 0",
                &env,
                "store.pool_size: 0 is outside 1..=256",
            ),
            (
                "kind = \"postgres\"\nurl_env = \"DB\"\nstatement_timeout_ms = 10",
                &env,
                "statement_timeout_ms",
            ),
            (
                "kind = \"postgres\"\nurl_env = \"DB\"",
                &[("DB", "postgresql://rg:pw@db.example.com/rolegate")],
                "allow_plaintext",
            ),
            (
                "kind = \"sled\"\nurl_env = \"DB\"",
                &env,
                "store.url_env applies only",
            ),
            (
                "kind = \"mysql\"",
                &env,
                "expected sled, memory or postgres",
            ),
        ];
        for (store, env, want) in cases {
            let problems = load(store, env).expect_err(store);
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{store}: {problems:?}"
            );
            assert!(
                problems.iter().all(|p| !p.contains("pw")),
                "{store}: the URL leaked: {problems:?}"
            );
        }
        let remote = load(
            "kind = \"postgres\"\nurl_env = \"DB\"\nallow_plaintext = true",
            &[("DB", "postgresql://rg:pw@db.example.com/rolegate")],
        );
        assert!(remote.is_ok(), "{remote:?}");
        let tls_url = [(
            "DB",
            "postgresql://rg:pw@db.example.com/rolegate?sslmode=verify-full",
        )];
        let tls = load(
            "kind = \"postgres\"\nurl_env = \"DB\"\ntls_ca_file = \"/etc/rolegate/db-ca.pem\"",
            &tls_url,
        );
        assert!(
            tls.is_ok(),
            "a verified TLS connection needs no allow_plaintext: {tls:?}"
        );
        for (store, env, want) in [
            (
                "kind = \"postgres\"\nurl_env = \"DB\"",
                &tls_url[..],
                "needs store.tls_ca_file",
            ),
            (
                "kind = \"postgres\"\nurl_env = \"DB\"\ntls_ca_file = \"/ca.pem\"",
                &env[..],
                "does not ask for TLS",
            ),
            (
                "kind = \"sled\"\ntls_ca_file = \"/ca.pem\"",
                &env[..],
                "tls_ca_file applies only",
            ),
        ] {
            let problems = load(store, env).expect_err(store);
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{store}: {problems:?}"
            );
        }
    }

    #[test]
    fn database_urls_are_checked_without_being_repeated() {
        let cases = [
            ("postgresql://rg:pw@127.0.0.1:5432/rolegate", false, true),
            ("postgres://rg@localhost/rolegate", false, true),
            ("postgresql://rg:pw@[::1]:5432/rolegate", false, true),
            ("postgresql://rg:pw@db.internal:5432/rolegate", false, false),
            ("postgresql://rg:pw@db.internal:5432/rolegate", true, true),
            ("postgresql://rg:pw@127.0.0.1:5432/", false, false),
            ("mysql://rg:pw@127.0.0.1/rolegate", false, false),
            (
                "postgresql://rg:pw@127.0.0.1/rolegate?sslmode=require",
                false,
                false,
            ),
            (
                "postgresql://rg:pw@db.internal/rolegate?sslmode=verify-ca",
                true,
                false,
            ),
            (
                "postgresql://rg:pw@db.internal/rolegate?sslmode=verify-full",
                false,
                true,
            ),
            (
                "postgresql://rg:pw@db.internal/rolegate?sslmode=verify-full&sslmode=disable",
                false,
                false,
            ),
            (
                "postgresql://rg:pw@db.internal/rolegate?sslmode=bogus",
                false,
                false,
            ),
            (
                "postgresql://rg:pw@127.0.0.1/rolegate?sslmode=disable",
                false,
                true,
            ),
            ("host=127.0.0.1 password=pw", false, false),
        ];
        for (url, plaintext_ok, ok) in cases {
            let got = check_url(url, plaintext_ok);
            assert_eq!(got.is_ok(), ok, "{url} {plaintext_ok}: {got:?}");
            if let Err(why) = got {
                assert!(!why.contains("pw"), "{why}");
            }
        }
    }
}

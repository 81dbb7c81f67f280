//! `[[scim_clients]]`: what loads, and each refusal with its line.

use super::super::{load_test_text, ConfigError};
use super::*;

const TOKEN_A: &str = "scim-token-of-the-corp-directory-00000001";
const TOKEN_B: &str = "scim-token-of-the-partner-directory-00002";

fn text(clients: &str) -> String {
    crate::testing::config()
        .oidc_provider("corp", "https://login.corp.example", "rolegate", "")
        .oidc_provider("partner", "https://login.partner.example", "rolegate", "")
        .with(clients)
        .text()
}

fn load(clients: &str) -> Result<crate::config::Config, ConfigError> {
    load_test_text(
        &text(clients),
        &[("TOKEN_A", TOKEN_A), ("TOKEN_B", TOKEN_B)],
    )
}

fn problems(clients: &str) -> Vec<String> {
    match load(clients) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn a_client_loads_with_its_settings_and_defaults() {
    let c = load(
        r#"
[[scim_clients]]
name = "okta"
provider = "corp"
match = "userName"
token_env = "TOKEN_A"
groups = "both"
require_provisioned = true
rate = { per_minute = 60, burst = 5 }
[[scim_clients]]
name = "entra"
provider = "partner"
match = "externalId"
token_env = "TOKEN_B"
"#,
    )
    .unwrap();
    let a = &c.scim_clients[0];
    assert_eq!(a.name, "okta");
    assert_eq!(a.match_attribute, MatchAttribute::UserName);
    assert_eq!(a.groups, GroupSource::Both);
    assert!(a.require_provisioned);
    assert_eq!(
        a.rate,
        Some(Rate {
            per_minute: 60,
            burst: 5
        })
    );
    assert_eq!(a.token.expose(), TOKEN_A);
    let b = c.scim_client_for("partner").unwrap();
    assert_eq!(b.match_attribute, MatchAttribute::ExternalId);
    assert_eq!(
        b.groups,
        GroupSource::Claim,
        "the default: the provider's group claim"
    );
    assert!(!b.require_provisioned);
    assert_eq!(b.rate, Some(DEFAULT_SCIM_RATE));
}

#[test]
fn every_refusal_names_the_client_and_its_line() {
    let head = "[[scim_clients]]\nname = \"okta\"\n";
    let cases = [
        (
            format!("{head}provider = \"nope\"\nmatch = \"userName\"\ntoken_env = \"TOKEN_A\"\n"),
            "provider 'nope' is not an [[oidc_providers]] or [[saml_providers]] name (known: corp, partner)",
        ),
        (
            format!("{head}provider = \"local\"\nmatch = \"userName\"\ntoken_env = \"TOKEN_A\"\n"),
            "provider 'local' is not an",
        ),
        (
            format!("{head}provider = \"corp\"\ntoken_env = \"TOKEN_A\"\n"),
            "match is required",
        ),
        (
            format!("{head}provider = \"corp\"\nmatch = \"email\"\ntoken_env = \"TOKEN_A\"\n"),
            "match = \"email\" must be \"userName\" or \"externalId\"",
        ),
        (
            format!("{head}provider = \"corp\"\nmatch = \"userName\"\n"),
            "a token_file or token_env is required",
        ),
        (
            format!("{head}provider = \"corp\"\nmatch = \"userName\"\ntoken_env = \"UNSET\"\n"),
            "$UNSET is not set",
        ),
        (
            format!("{head}provider = \"corp\"\nmatch = \"userName\"\ntoken_env = \"TOKEN_A\"\ngroups = \"all\"\n"),
            "groups = \"all\" must be",
        ),
        (
            format!("{head}provider = \"corp\"\nmatch = \"userName\"\ntoken_env = \"TOKEN_A\"\n{head}provider = \"partner\"\nmatch = \"userName\"\ntoken_env = \"TOKEN_B\"\n"),
            "scim client 'okta' is defined twice",
        ),
        (
            format!("{head}provider = \"corp\"\nmatch = \"userName\"\ntoken_env = \"TOKEN_A\"\n[[scim_clients]]\nname = \"other\"\nprovider = \"corp\"\nmatch = \"userName\"\ntoken_env = \"TOKEN_B\"\n"),
            "provider 'corp' is already provisioned by another scim client",
        ),
        (
            format!("{head}provider = \"corp\"\nmatch = \"userName\"\ntoken_env = \"TOKEN_A\"\n[[scim_clients]]\nname = \"other\"\nprovider = \"partner\"\nmatch = \"userName\"\ntoken_env = \"TOKEN_A\"\n"),
            "its token is also used elsewhere",
        ),
        (
            format!("{head}provider = \"corp\"\nmatch = \"userName\"\ntoken_env = \"TOKEN_A\"\nrate = {{ per_minute = 0, burst = 3 }}\n"),
            "scim_clients.okta.rate: per_minute = 0 turns the limit off",
        ),
        (
            format!("{head}provider = \"corp\"\nmatch = \"userName\"\ntoken_env = \"TOKEN_A\"\nsubject = \"sub\"\n"),
            "unknown field `subject`",
        ),
    ];
    let first_line = text("").lines().count() + 1;
    for (clients, want) in cases {
        let p = problems(&clients);
        assert!(
            p.iter().any(|m| m.contains(want)),
            "{want:?} not in {p:#?}\nfor:\n{clients}"
        );
        assert!(
            p.iter().all(|m| {
                let line: usize = m
                    .split(':')
                    .nth(1)
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                line >= first_line
            }),
            "every problem has a line in the [[scim_clients]] section: {p:#?}"
        );
    }
}

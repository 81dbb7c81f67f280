use super::*;
use std::io::Write;

/// An OpenID provider and a role `ci` its tokens may assume.
const CI: &str = r#"
[[oidc_providers]]
issuer = "https://idp.example.com"
audiences = ["sts.amazonaws.com"]

[[roles]]
account = "111122223333"
name = "ci"
trust_policy = '''
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/idp.example.com"},
  "Action": "sts:AssumeRoleWithWebIdentity",
  "Condition": {"StringEquals": {"idp.example.com:sub": "x"}}}]}
'''
"#;

/// The shared test configuration with [`CI`].
fn base() -> String {
    crate::testing::config().with(CI).text()
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_str_with_env(Path::new("/etc/rolegate/rolegate.toml"), text, &[])
}

fn problems(text: &str) -> Vec<String> {
    load(text)
        .unwrap_err()
        .0
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn a_valid_configuration_loads_with_derived_names() {
    let c = load(&base()).unwrap();
    assert_eq!(c.roles[0].arn, "arn:aws:iam::111122223333:role/ci");
    assert!(c.roles[0].role_id.starts_with("AROA") && c.roles[0].role_id.len() == 21);
    assert_eq!(c.oidc_providers[0].key_prefix, "idp.example.com");
    assert_eq!(
        c.oidc_providers[0].arn("111122223333"),
        "arn:aws:iam::111122223333:oidc-provider/idp.example.com"
    );
    assert_eq!(c.sts_regions, vec!["us-east-1"]);
    assert_eq!(c.store, StoreSettings::Memory);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn unknown_keys_are_errors_with_their_line() {
    let text = base().replace("name = \"main\"", "name = \"main\"\nowner = \"x\"");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    let line = text.lines().position(|l| l == "owner = \"x\"").unwrap() + 1;
    assert!(
        p[0].starts_with(&format!("/etc/rolegate/rolegate.toml:{line}:")),
        "{p:?}"
    );
    assert!(p[0].contains("owner"), "{p:?}");
}

#[test]
fn every_semantic_problem_is_reported_at_once() {
    let base = base();
    let text = format!(
        "{base}\n[[roles]]\naccount = \"999999999999\"\nname = \"bad name\"\nmax_session_duration = 10\ntrust_policy = '{{\"Version\": \"2012-10-17\"}}'\n\n[[oidc_providers]]\nissuer = \"http://evil.example\"\naudiences = []\nalgorithms = [\"HS256\", \"none\"]\nleeway_seconds = 600\n"
    );
    let p = problems(&text).join("\n");
    for expected in [
        "account 999999999999 is not defined",
        "name must be 1-64",
        "max_session_duration",
        "issuer must be an https URL",
        "audiences must list",
        "algorithm 'HS256' is not allowed",
        "algorithm 'none' is not allowed",
        "leeway_seconds",
    ] {
        assert!(p.contains(expected), "missing '{expected}' in:\n{p}");
    }
    assert!(
        p.lines()
            .all(|l| l.starts_with("/etc/rolegate/rolegate.toml:")),
        "{p}"
    );
}

#[test]
fn dangling_and_unsafe_references_are_errors() {
    let text = base().replace(
        "oidc-provider/idp.example.com",
        "oidc-provider/unknown.example.com",
    );
    let p = problems(&text).join("\n");
    assert!(
        p.contains("no oidc provider with issuer 'unknown.example.com'"),
        "{p}"
    );
    let text = base().replace(
        "arn:aws:iam::111122223333:oidc",
        "arn:aws:iam::444455556666:oidc",
    );
    assert!(problems(&text)
        .join("\n")
        .contains("not a provider of account"));
    let text = base().replace(
        "public_url = \"http://127.0.0.1:8080\"",
        "public_url = \"http://sts.example.com\"",
    );
    assert!(problems(&text).join("\n").contains("plain http"));
    let text = base().replace("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:8080\"")
        + "\n[demo]\nenabled = true\n";
    assert!(problems(&text).join("\n").contains("loopback"));
    let text = base()
        .replace("https://idp.example.com", "http://127.0.0.1:9999")
        .replace("idp.example.com", "127.0.0.1:9999");
    assert!(
        problems(&text)
            .join("\n")
            .contains("issuer must be an https URL"),
        "http without allow_http"
    );
}

#[test]
fn malformed_policies_are_reported_in_their_file_with_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("trust.json")).unwrap();
    writeln!(f, "{{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {{\"Effect\": \"Allow\" \"Action\": \"x\"}}\n  ]\n}}").unwrap();
    let text = base().replace(
        "trust_policy = '''",
        "trust_policy_file = \"trust.json\"\nunused = '''",
    );
    let text = text.replace("unused = '''", "description = '''");
    let cfg_path = dir.path().join("rolegate.toml");
    let p = Config::from_str_with_env(&cfg_path, &text, &[])
        .unwrap_err()
        .0;
    let trust = p
        .iter()
        .find(|x| x.file.ends_with("trust.json"))
        .unwrap_or_else(|| panic!("{p:?}"));
    assert_eq!(trust.line, Some(4), "{trust}");
    let missing = base().replace(
        "trust_policy = '''",
        "trust_policy_file = \"nope.json\"\ndescription = '''",
    );
    assert!(problems(&missing).join("\n").contains("cannot read"));
}

#[test]
fn risky_trust_policies_are_warnings() {
    let text = base().replace(
        ",\n  \"Condition\": {\"StringEquals\": {\"idp.example.com:sub\": \"x\"}}",
        "",
    );
    let c = load(&text).unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|w| w.message.contains("without conditions")),
        "{:?}",
        c.warnings
    );
    let text = base().replace(
        "\"StringEquals\": {\"idp.example.com:sub\": \"x\"}",
        "\"ForAllValues:StringEquals\": {\"idp.example.com:groups\": \"x\"}",
    );
    let c = load(&text).unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|w| w.message.contains("ForAllValues")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn environment_overrides_apply_and_unknown_variables_warn() {
    let env = vec![
        ("ROLEGATE_LISTEN".to_string(), "127.0.0.1:9000".to_string()),
        ("ROLEGATE_LISTNE".to_string(), "x".to_string()),
    ];
    let c = Config::from_str_with_env(Path::new("c.toml"), &base(), &env).unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert!(c
        .warnings
        .iter()
        .any(|w| w.message.contains("ROLEGATE_LISTNE")));
    let bad = vec![("ROLEGATE_LISTEN".to_string(), "nope".to_string())];
    assert!(Config::from_str_with_env(Path::new("c.toml"), &base(), &bad).is_err());
}

#[test]
fn admin_tokens_come_from_files_or_environment_and_must_be_long() {
    let base = base();
    let text = format!("{base}\n[admin]\ntoken_env = \"RG_ADMIN\"\n");
    let short = vec![("RG_ADMIN".to_string(), "short".to_string())];
    assert!(Config::from_str_with_env(Path::new("c.toml"), &text, &short).is_err());
    let long = vec![("RG_ADMIN".to_string(), "x".repeat(40))];
    let c = Config::from_str_with_env(Path::new("c.toml"), &text, &long).unwrap();
    assert_eq!(c.admin_token.as_ref().unwrap().expose().len(), 40);
    assert_eq!(format!("{:?}", c.admin_token), "Some(***)");
    assert!(Config::from_str_with_env(Path::new("c.toml"), &text, &[]).is_err());
}

#[test]
fn the_example_configuration_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rolegate.toml");
    let c =
        Config::from_str_with_env(&path, &std::fs::read_to_string(&path).unwrap(), &[]).unwrap();
    assert!(c.demo);
    assert_eq!(c.roles.len(), 3);
    assert!(c
        .role("arn:aws:iam::111122223333:role/RolegateSSO_DemoAdmin")
        .is_some());
    assert_eq!(c.assignment_rules.len(), 2);
    assert_eq!(c.sso, Some(crate::config::SsoSettings::default()));
}

const MANAGED: &str = r#"
[[accounts]]
id = "444455556666"
name = "other"

[[managed_policies]]
account = "111122223333"
name = "Read"
path = "/team/"
document = '''{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}'''

[[managed_policies]]
account = "444455556666"
name = "Foreign"
document = '''{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}'''
"#;

fn with_managed(role_lines: &str) -> String {
    let mut text = base().replace("[[roles]]", &format!("{MANAGED}\n[[roles]]\n{role_lines}"));
    text.push('\n');
    text
}

#[test]
fn managed_policies_attach_by_arn_and_dangling_ones_are_errors() {
    let c = load(&with_managed(
        "managed_policy_arns = [\"arn:aws:iam::111122223333:policy/team/Read\"]\npermissions_boundary = \"arn:aws:iam::111122223333:policy/team/Read\"",
    ))
    .unwrap();
    let m = c
        .managed_policy("arn:aws:iam::111122223333:policy/team/Read")
        .unwrap();
    assert_eq!((m.name.as_str(), m.path.as_str()), ("Read", "/team/"));
    let role = &c.roles[0];
    let labels: Vec<&str> = role.identity_policies().map(|(l, _)| l).collect();
    assert_eq!(labels, vec!["arn:aws:iam::111122223333:policy/team/Read"]);
    assert_eq!(
        role.permissions_boundary.as_ref().map(|(a, _)| a.as_str()),
        Some("arn:aws:iam::111122223333:policy/team/Read")
    );

    let cases = [
        (
            "managed_policy_arns = [\"arn:aws:iam::111122223333:policy/Nope\"]",
            "managed policy arn:aws:iam::111122223333:policy/Nope is not defined",
        ),
        (
            "managed_policy_arns = [\"arn:aws:iam::444455556666:policy/Foreign\"]",
            "belongs to another account",
        ),
        (
            "permissions_boundary = \"arn:aws:iam::111122223333:policy/Nope\"",
            "is not a defined managed policy",
        ),
        (
            "managed_policy_arns = [\"arn:aws:iam::111122223333:policy/team/Read\", \"arn:aws:iam::111122223333:policy/team/Read\"]",
            "attached twice",
        ),
    ];
    for (lines, needle) in cases {
        let p = problems(&with_managed(lines)).join("\n");
        assert!(p.contains(needle), "{lines}: {p}");
    }
    // A malformed managed policy is reported at its own line; a duplicate ARN is an error.
    let bad = with_managed("").replace(
        "\"s3:Get*\", \"Resource\": \"*\"}]}'''\n\n[[managed_policies]]",
        "\"s3:Get*\", \"Resource\": 7}]}'''\n\n[[managed_policies]]",
    );
    let p = problems(&bad).join("\n");
    assert!(
        p.contains("managed policy 'Read'") && p.contains("Resource"),
        "{p}"
    );
    let dup = with_managed("")
        .replace("name = \"Foreign\"", "name = \"Read\"\npath = \"/team/\"")
        .replace(
            "account = \"444455556666\"\nname = \"Read\"",
            "account = \"111122223333\"\nname = \"Read\"",
        );
    assert!(
        problems(&dup).join("\n").contains("is defined twice"),
        "{:?}",
        problems(&dup)
    );
}

#[test]
fn services_need_their_own_long_token() {
    let base = base();
    let svc = |lines: &str| {
        format!("{base}\n[[services]]\nname = \"objstore\"\nsigning_names = [\"s3\"]\n{lines}\n")
    };
    let env = vec![
        ("OBJ_TOKEN".to_string(), "t".repeat(40)),
        ("SHORT".to_string(), "t".into()),
    ];
    let load_env = |t: &str| Config::from_str_with_env(Path::new("c.toml"), t, &env);
    let c = load_env(&svc("token_env = \"OBJ_TOKEN\"")).unwrap();
    assert_eq!(c.services[0].signing_names, vec!["s3"]);
    assert_eq!(c.services[0].token.expose().len(), 40);
    let msg = |t: &str| load_env(t).unwrap_err().to_string();
    assert!(msg(&svc("token_env = \"SHORT\"")).contains("fewer than 32"));
    assert!(msg(&svc("")).contains("token_file or token_env is required"));
    assert!(msg(&svc("token_env = \"UNSET_VAR\"")).contains("is not set"));
    assert!(
        msg(&svc("token_env = \"OBJ_TOKEN\"").replace("[\"s3\"]", "[]")).contains("signing_names")
    );
    let two = format!(
        "{}\n[[services]]\nname = \"other\"\nsigning_names = [\"s3\"]\ntoken_env = \"OBJ_TOKEN\"\n",
        svc("token_env = \"OBJ_TOKEN\"")
    );
    assert!(msg(&two).contains("its token is also used elsewhere"));
}

/// Loads `text` as the file /etc/rolegate/rolegate.toml with the environment `env`.
pub(super) fn load_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_str_with_env(Path::new("/etc/rolegate/rolegate.toml"), text, &env)
}

#[test]
fn every_key_can_come_from_a_rolegate_double_underscore_variable() {
    let c = load_env(
        &base(),
        &[
            ("ROLEGATE__SERVER__LISTEN", "127.0.0.1:9100"),
            ("ROLEGATE__STS__MAX_CLOCK_SKEW_SECONDS", "300"),
            ("ROLEGATE__METRICS__ENABLED", "false"),
            (
                "ROLEGATE__RATE_LIMITS__STS_PER_IP",
                "{ per_minute = 600, burst = 100 }",
            ),
            ("ROLEGATE__RATE_LIMITS__LOGIN_PER_IP__PER_MINUTE", "0"),
            ("ROLEGATE__SHUTDOWN__DRAIN_SECONDS", "3"),
            ("ROLEGATE__ROLES__0__MAX_SESSION_DURATION", "7200"),
            ("ROLEGATE__OIDC_PROVIDERS__0__AUDIENCES", "[\"a\", \"b\"]"),
        ],
    )
    .unwrap();
    assert_eq!(c.listen.port(), 9100);
    assert_eq!(c.max_clock_skew.num_seconds(), 300);
    assert!(!c.ops.metrics.enabled);
    assert_eq!(
        c.ops.rate_limits.sts_per_ip,
        Some(Rate {
            per_minute: 600,
            burst: 100
        })
    );
    assert_eq!(
        c.ops.rate_limits.login_per_ip, None,
        "per_minute = 0 is off"
    );
    assert_eq!(c.ops.drain, std::time::Duration::from_secs(3));
    assert_eq!(c.roles[0].max_session_duration, 7200);
    assert_eq!(c.oidc_providers[0].audiences, ["a", "b"]);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn variables_are_validated_like_the_file_and_problems_name_them() {
    let e = load_env(&base(), &[("ROLEGATE__SERVER__LISTN", "127.0.0.1:1")]).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(e.0[0].file, Path::new("<environment>"));
    assert!(
        e.0[0]
            .message
            .starts_with("ROLEGATE__SERVER__LISTN: unknown field"),
        "{e}"
    );

    let e = load_env(&base(), &[("ROLEGATE__SHUTDOWN__DRAIN_SECONDS", "9999")]).unwrap_err();
    assert!(
        e.0[0]
            .message
            .starts_with("ROLEGATE__SHUTDOWN__DRAIN_SECONDS: shutdown.drain_seconds"),
        "{e}"
    );

    // A problem of the file keeps its line (the role's) when variables insert lines above it.
    let broken = base().replace("name = \"ci\"", "name = \"ci\"\nmax_session_duration = 5");
    let line = broken
        .lines()
        .position(|l| l.starts_with("[[roles]]"))
        .unwrap()
        + 1;
    let e = load_env(&broken, &[("ROLEGATE__SERVER__EXTRA_A", "1")]).unwrap_err();
    assert!(
        e.0.iter().any(|p| p.file == Path::new("<environment>")),
        "{e}"
    );
    let e = load_env(
        &broken,
        &[
            ("ROLEGATE__STORE__PATH", "/tmp/x"),
            ("ROLEGATE__STS__REGIONS", "[\"us-east-1\"]"),
        ],
    )
    .unwrap_err();
    let p =
        e.0.iter()
            .find(|p| p.message.contains("max_session_duration"))
            .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(p.line, Some(line), "{e}");
}

#[test]
fn operational_settings_have_safe_defaults_and_refuse_nonsense() {
    let base = base();
    let c = load(&base).unwrap();
    assert_eq!(c.ops.limits, DEFAULT_BODY_LIMITS);
    assert!(c.ops.metrics.enabled && c.ops.tls.is_none());
    assert!(c.ops.rate_limits.login_per_ip.is_some() && c.ops.rate_limits.sts_per_ip.is_none());
    assert!(
        c.ops.rate_limits.sso_start_per_ip.is_some()
            && c.ops.rate_limits.user_code_per_ip.is_some()
    );
    let off = load(&format!(
        "{base}[rate_limits]\nsso_start_per_ip = {{ per_minute = 0 }}\n\
         user_code_per_ip = {{ per_minute = 3, burst = 1 }}\n"
    ))
    .unwrap();
    assert_eq!(off.ops.rate_limits.sso_start_per_ip, None);
    assert_eq!(
        off.ops.rate_limits.user_code_per_ip,
        Some(Rate {
            per_minute: 3,
            burst: 1
        })
    );
    assert!(c.ops.audit.store && c.ops.audit.file.is_none());
    for (extra, expect) in [
        ("[log]\nformat = \"xml\"\n", "log.format"),
        ("[limits]\nsts_body_bytes = 10\n", "limits.sts_body_bytes"),
        (
            "[rate_limits]\nlogin_per_ip = { per_minute = -1 }\n",
            "rate_limits.login_per_ip",
        ),
        (
            "[rate_limits]\nmfa_per_user = { per_minute = 0, burst = 3 }\n",
            "turns the limit off",
        ),
        ("[audit]\nsinks = []\n", "at least one sink"),
        ("[audit]\nsinks = [\"file\"]\n", "needs audit.file"),
        ("[audit]\nfile = \"a.jsonl\"\n", "does not name 'file'"),
        ("[audit]\nsinks = [\"syslog\"]\n", "unknown sink"),
        (
            "[tls]\ncert_file = \"/nonexistent.pem\"\nkey_file = \"/nonexistent.key\"\n",
            "tls.cert_file",
        ),
        (
            "[metrics]\nlisten = \"127.0.0.1:0\"\n",
            "must differ from server.listen",
        ),
        ("[shutdown]\ndrain_second = 3\n", "unknown field"),
    ] {
        let all = problems(&format!("{base}\n{extra}"));
        assert!(all.iter().any(|p| p.contains(expect)), "{extra}: {all:?}");
    }
    let c = load(&format!(
        "{base}\n[audit]\nsinks = [\"file\"]\nfile = \"audit.jsonl\"\nfile_max_bytes = 1048576\n"
    ))
    .unwrap();
    assert!(!c.ops.audit.store);
    assert_eq!(
        c.ops.audit.file.as_deref(),
        Some(Path::new("/etc/rolegate/audit.jsonl"))
    );
}
fn saml_metadata_file(certs: usize) -> tempfile::NamedTempFile {
    use crate::idp::saml::test_idp;
    use base64::Engine;
    let mut keys = String::new();
    for _ in 0..certs {
        let der = test_idp::certificate(&test_idp::rsa_key());
        keys.push_str(&format!(
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            base64::engine::general_purpose::STANDARD.encode(der)
        ));
    }
    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(
        f,
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example/saml"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}</md:IDPSSODescriptor></md:EntityDescriptor>"#
    )
    .unwrap();
    f
}

#[test]
fn saml_providers_load_from_metadata_with_their_certificates() {
    let base = base();
    let md = saml_metadata_file(2);
    let text = format!(
        "{base}\n[saml]\nmax_clock_skew_seconds = 30\n\n[[saml_providers]]\nname = \"corp\"\nmetadata_file = \"{}\"\nmfa_authn_contexts = [\"urn:mfa\"]\n",
        md.path().display()
    );
    let c = load(&text).unwrap();
    assert_eq!(c.saml.entity_id, "http://127.0.0.1:8080/saml/metadata");
    assert_eq!(c.saml.acs_url, "http://127.0.0.1:8080/saml/acs");
    assert_eq!(c.saml.max_clock_skew_seconds, 30);
    let p = &c.saml_providers[0];
    assert_eq!(
        p.arn("111122223333"),
        "arn:aws:iam::111122223333:saml-provider/corp"
    );
    let m = p.metadata.as_ref().unwrap();
    assert_eq!(m.entity_id, "https://idp.example/saml");
    assert_eq!(
        m.signing_certificates.len(),
        2,
        "both certificates, for rotation"
    );
    assert!(
        !p.allow_idp_initiated,
        "IdP-initiated login is off by default"
    );
}

#[test]
fn saml_provider_mistakes_are_configuration_errors() {
    let base = base();
    let none = saml_metadata_file(0);
    let one = saml_metadata_file(1);
    let provider = |body: &str| format!("{base}\n[[saml_providers]]\n{body}\n");
    let cases = [
        (
            provider(&format!("name = \"corp\"\nmetadata_file = \"{}\"", none.path().display())),
            "has no signing certificate",
        ),
        (
            provider("name = \"corp\"\nmetadata_url = \"http://idp.example/md\""),
            "must be https",
        ),
        (
            provider(&format!(
                "name = \"corp\"\nmetadata_file = \"{}\"\nmetadata_url = \"https://idp.example/md\"",
                one.path().display()
            )),
            "exactly one of metadata_file and metadata_url",
        ),
        (
            provider(&format!("name = \"co rp\"\nmetadata_file = \"{}\"", one.path().display())),
            "name must be",
        ),
        (
            provider(&format!(
                "name = \"corp\"\nmetadata_file = \"{}\"\nsurprise = 1",
                one.path().display()
            )),
            "unknown field",
        ),
        (
            format!("{base}\n[saml]\nmax_clock_skew_seconds = 600\n"),
            "max_clock_skew_seconds",
        ),
        (
            provider(&format!("name = \"rolegatesso\"\nmetadata_file = \"{}\"", one.path().display())),
            "is reserved for rolegate's own sign-in",
        ),
        (
            format!(
                "{base}\n[[roles]]\naccount = \"111122223333\"\nname = \"s\"\ntrust_policy = '''{{\"Version\": \"2012-10-17\", \"Statement\": [{{\"Effect\": \"Allow\", \"Principal\": {{\"Federated\": \"arn:aws:iam::111122223333:saml-provider/nobody\"}}, \"Action\": \"sts:AssumeRoleWithSAML\"}}]}}'''\n"
            ),
            "no saml provider named 'nobody' is configured",
        ),
        (
            provider(&format!(
                "name = \"corp\"\nmetadata_file = \"{}\"\naccounts = [\"999999999999\"]",
                one.path().display()
            )),
            "account 999999999999 is not defined",
        ),
    ];
    for (text, want) in cases {
        let p = problems(&text);
        assert!(p.iter().any(|m| m.contains(want)), "{want}: {p:?}");
    }
}

#[test]
fn the_ready_delay_is_bounded_and_off_by_default() {
    let base = base();
    assert_eq!(
        load(&base).unwrap().ops.ready_delay,
        std::time::Duration::ZERO
    );
    let c = load(&format!("{base}\n[shutdown]\nready_delay_seconds = 15\n")).unwrap();
    assert_eq!(c.ops.ready_delay, std::time::Duration::from_secs(15));
    let p = problems(&format!("{base}\n[shutdown]\nready_delay_seconds = 301\n"));
    assert!(
        p.iter()
            .any(|m| m.contains("shutdown.ready_delay_seconds: must be between 0 and 300")),
        "{p:?}"
    );
}

/// Writes `<name>.key` (PKCS#8 PEM) and `<name>.crt` (self-signed PEM) into `dir`: the DER
/// certificate.
fn write_key_pair(dir: &std::path::Path, name: &str, bits: u32) -> Vec<u8> {
    use openssl::{pkey::PKey, rsa::Rsa, x509::X509};
    let key = PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap();
    let cert = X509::from_der(&crate::idp::saml::test_idp::certificate(&key)).unwrap();
    std::fs::write(
        dir.join(format!("{name}.key")),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), cert.to_pem().unwrap()).unwrap();
    cert.to_der().unwrap()
}

#[test]
fn the_saml_signing_key_must_come_with_its_own_certificate() {
    let base = base();
    let dir = tempfile::tempdir().unwrap();
    let write_pair = |name: &str, bits: u32| write_key_pair(dir.path(), name, bits);
    let a = write_pair("a", 2048);
    let b = write_pair("b", 2048);
    write_pair("small", 1024);
    let d = dir.path().display();
    let with = |keys: &str| format!("{base}\n[saml]\n{keys}\n");

    let c = load(&with(&format!(
        "signing_key_file = \"{d}/a.key\"\nsigning_cert_file = \"{d}/a.crt\"\nnext_signing_cert_file = \"{d}/b.crt\""
    )))
    .unwrap();
    let s = c.saml.signing.as_ref().unwrap();
    assert_eq!(s.certificates_der, vec![a, b], "current, then next");
    assert!(!format!("{s:?}").contains("BEGIN"), "the key is not shown");

    for (keys, expected) in [
        (
            format!("signing_key_file = \"{d}/a.key\"\nsigning_cert_file = \"{d}/b.crt\""),
            "is not the certificate of the key",
        ),
        (
            format!("signing_key_file = \"{d}/a.key\""),
            "set both signing_key_file and signing_cert_file, or neither",
        ),
        (
            format!("next_signing_cert_file = \"{d}/b.crt\""),
            "needs signing_key_file and signing_cert_file",
        ),
        (
            format!("signing_key_file = \"{d}/small.key\"\nsigning_cert_file = \"{d}/small.crt\""),
            "RSA of at least 2048 bits",
        ),
        (
            format!("signing_key_file = \"{d}/a.crt\"\nsigning_cert_file = \"{d}/a.crt\""),
            "not a PEM private key",
        ),
        (
            format!("signing_key_file = \"{d}/missing.key\"\nsigning_cert_file = \"{d}/a.crt\""),
            "cannot read",
        ),
    ] {
        let p = problems(&with(&keys));
        assert!(p.iter().any(|m| m.contains(expected)), "{expected}: {p:?}");
    }
}

#[test]
fn trusted_proxies_are_addresses_or_blocks_but_never_everyone() {
    let with = |list: &str| {
        base().replace(
            "public_url = \"http://127.0.0.1:8080\"\n",
            &format!("public_url = \"http://127.0.0.1:8080\"\ntrusted_proxies = {list}\n"),
        )
    };
    let c = load(&with(
        r#"["10.0.0.0/8", "192.168.1.7", "fd00::/8", "10.1.2.3/8"]"#,
    ))
    .unwrap();
    let got: Vec<String> = c.trusted_proxies.iter().map(|n| n.to_string()).collect();
    // A block given with host bits is read as its network.
    assert_eq!(
        got,
        ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8", "10.0.0.0/8"]
    );
    assert!(load(&base()).unwrap().trusted_proxies.is_empty());
    for (list, needle) in [
        (r#"["0.0.0.0/0"]"#, "trusts every address"),
        (r#"["::/0"]"#, "trusts every address"),
        (r#"["lb.internal"]"#, "not an address or CIDR block"),
        (r#"["10.0.0.0/33"]"#, "not an address or CIDR block"),
    ] {
        let p = problems(&with(list));
        assert!(p.iter().any(|m| m.contains(needle)), "{list}: {p:?}");
    }
}

#[test]
fn saml_decryption_keys_come_with_their_own_certificates_and_rotate_in_pairs() {
    let base = base();
    let dir = tempfile::tempdir().unwrap();
    let a = write_key_pair(dir.path(), "a", 2048);
    let b = write_key_pair(dir.path(), "b", 2048);
    write_key_pair(dir.path(), "small", 1024);
    let d = dir.path().display();
    let with = |keys: &str| format!("{base}\n[saml]\n{keys}\n");

    let c = load(&with(&format!(
        "decryption_key_file = \"{d}/a.key\"\ndecryption_cert_file = \"{d}/a.crt\"\n\
         next_decryption_key_file = \"{d}/b.key\"\nnext_decryption_cert_file = \"{d}/b.crt\""
    )))
    .unwrap();
    let s = c.saml.decryption.as_ref().unwrap();
    assert_eq!(s.certificates_der, vec![a.clone(), b], "current, then next");
    assert_eq!(s.keys_pkcs8_der.len(), 2);
    assert!(
        !format!("{s:?}").contains("BEGIN"),
        "the keys are not shown"
    );
    assert!(
        c.saml.signing.is_none(),
        "decryption alone does not sign requests"
    );
    let c = load(&with(&format!(
        "decryption_key_file = \"{d}/a.key\"\ndecryption_cert_file = \"{d}/a.crt\""
    )))
    .unwrap();
    assert_eq!(c.saml.decryption.unwrap().certificates_der, vec![a]);
    assert!(load(&base).unwrap().saml.decryption.is_none());

    for (keys, expected) in [
        (
            format!("decryption_key_file = \"{d}/a.key\"\ndecryption_cert_file = \"{d}/b.crt\""),
            "is not the certificate of the key",
        ),
        (
            format!(
                "decryption_key_file = \"{d}/a.key\"\ndecryption_cert_file = \"{d}/a.crt\"\n\
                 next_decryption_key_file = \"{d}/a.key\"\nnext_decryption_cert_file = \"{d}/b.crt\""
            ),
            "b.crt is not the certificate of the key",
        ),
        (
            format!(
                "decryption_key_file = \"{d}/a.key\"\ndecryption_cert_file = \"{d}/a.crt\"\n\
                 next_decryption_key_file = \"{d}/a.key\"\nnext_decryption_cert_file = \"{d}/a.crt\""
            ),
            "is the same certificate as the current one",
        ),
        (
            format!("decryption_cert_file = \"{d}/a.crt\""),
            "set both decryption_key_file and decryption_cert_file, or neither",
        ),
        (
            format!(
                "decryption_key_file = \"{d}/a.key\"\ndecryption_cert_file = \"{d}/a.crt\"\n\
                 next_decryption_key_file = \"{d}/b.key\""
            ),
            "set both next_decryption_key_file and next_decryption_cert_file, or neither",
        ),
        (
            format!("next_decryption_key_file = \"{d}/b.key\"\nnext_decryption_cert_file = \"{d}/b.crt\""),
            "need decryption_key_file and decryption_cert_file",
        ),
        (
            format!("decryption_key_file = \"{d}/small.key\"\ndecryption_cert_file = \"{d}/small.crt\""),
            "RSA of at least 2048 bits",
        ),
        (
            format!("decryption_key_file = \"{d}/missing.key\"\ndecryption_cert_file = \"{d}/a.crt\""),
            "cannot read",
        ),
    ] {
        let p = problems(&with(&keys));
        assert!(
            p.iter().any(|m| m.contains("saml") && m.contains(expected)),
            "{expected}: {p:?}"
        );
    }
}

#[test]
fn a_broken_permission_set_reports_each_problem_once_and_stays_known_to_its_rules() {
    let text = crate::testing::config()
        .permission_set(
            "DemoAdmin",
            "session_duration = \"P2D\"\nmfa = \"sometimes\"\ntags = { \"aws:team\" = \"x\" }",
        )
        .with(
            "[[assignment_rules]]\nprovider = \"local\"\npermission_set = \"DemoAdmin\"\n\
             accounts = [\"111122223333\"]\nlocal_group = \"admins\"\n\
             [[assignment_rules]]\nprovider = \"local\"\npermission_set = \"Missing\"\n\
             accounts = [\"111122223333\"]\nlocal_group = \"admins\"\n",
        )
        .text();
    let p = problems(&text);
    let count = |needle: &str| p.iter().filter(|m| m.contains(needle)).count();
    for expected in [
        "session_duration 'P2D'",
        "mfa 'sometimes'",
        "tag 'aws:team'",
    ] {
        assert_eq!(count(expected), 1, "{expected}: {p:?}");
    }
    // No follow-on problem for the rules that name the set; a set that is really missing is one.
    assert_eq!(
        count("permission set 'DemoAdmin' is not defined"),
        0,
        "{p:?}"
    );
    assert_eq!(count("permission set 'Missing' is not defined"), 1, "{p:?}");
    assert_eq!(p.len(), 4, "{p:?}");
}

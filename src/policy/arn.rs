//! ARNs: [`Arn::parse`] reads one into its six fields, and the builders write the ARNs rolegate
//! names (roles, users, groups, sessions, providers) in the `aws` partition, so that no edge
//! spells one with `format!` or splits one on `:` by hand.

use super::grammar::is_account_id;

/// An ARN read into its fields: `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`. The resource
/// keeps any further `:` and `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `aws`, `aws-cn`, …
    pub partition: &'a str,
    /// `iam`, `sts`, `s3`, …
    pub service: &'a str,
    /// Empty for global services.
    pub region: &'a str,
    /// Empty where the resource has none (`arn:aws:s3:::bucket`).
    pub account: &'a str,
    /// `role/path/Name`, `assumed-role/Name/session`, `root`, …
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// The fields of `s`, when it is an ARN (starts with `arn:` and has six fields).
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut f = s.splitn(6, ':');
        if f.next()? != "arn" {
            return None;
        }
        Some(Self {
            partition: f.next()?,
            service: f.next()?,
            region: f.next()?,
            account: f.next()?,
            resource: f.next()?,
        })
    }

    /// The resource's type and the rest: `("role", "path/Name")` of `role/path/Name`,
    /// `("root", "")` of `root`.
    pub fn resource_type(&self) -> (&'a str, &'a str) {
        self.resource.split_once('/').unwrap_or((self.resource, ""))
    }

    /// An IAM ARN of 12-digit `account` whose resource is of type `kind` (`role`, `user`,
    /// `saml-provider`, …): the rest of the resource, not empty.
    pub fn iam_resource(s: &'a str, kind: &str) -> Option<(&'a str, &'a str)> {
        let a = Self::parse(s)?;
        let (k, rest) = a.resource_type();
        (a.service == "iam" && is_account_id(a.account) && k == kind && !rest.is_empty())
            .then_some((a.account, rest))
    }
}

/// `arn:aws:iam::ACCOUNT:root`.
pub fn root(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

/// `arn:aws:iam::ACCOUNT:role{path}{name}` (`path` begins and ends with `/`).
pub fn role(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role{path}{name}")
}

/// `arn:aws:iam::ACCOUNT:user{path}{name}` (`path` begins and ends with `/`).
pub fn user(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:user{path}{name}")
}

/// `arn:aws:iam::ACCOUNT:group/{name}`.
pub fn group(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:group/{name}")
}

/// `arn:aws:iam::ACCOUNT:policy{path}{name}`.
pub fn managed_policy(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:policy{path}{name}")
}

/// `arn:aws:iam::ACCOUNT:mfa/{name}`: a directory user's MFA device.
pub fn mfa(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:mfa/{name}")
}

/// `arn:aws:iam::ACCOUNT:saml-provider/{name}`.
pub fn saml_provider(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:saml-provider/{name}")
}

/// `arn:aws:iam::ACCOUNT:oidc-provider/{issuer}` (the issuer without its scheme).
pub fn oidc_provider(account: &str, issuer: &str) -> String {
    format!("arn:aws:iam::{account}:oidc-provider/{issuer}")
}

/// `arn:aws:sts::ACCOUNT:assumed-role/{role}/{session}`.
pub fn assumed_role(account: &str, role: &str, session: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role}/{session}")
}

/// `arn:aws:sts::ACCOUNT:federated-user/{name}`.
pub fn federated_user(account: &str, name: &str) -> String {
    format!("arn:aws:sts::{account}:federated-user/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_six_fields_and_keeps_the_rest_in_the_resource() {
        let a = Arn::parse("arn:aws:s3:::bucket/key:with:colons").unwrap();
        assert_eq!(
            (a.partition, a.service, a.region, a.account, a.resource),
            ("aws", "s3", "", "", "bucket/key:with:colons")
        );
        assert_eq!(a.resource_type(), ("bucket", "key:with:colons"));
        let r = Arn::parse("arn:aws:iam::111122223333:root").unwrap();
        assert_eq!(r.resource_type(), ("root", ""));
        for bad in [
            "",
            "arn",
            "arn:aws:iam::1",
            "urn:aws:iam::111122223333:root",
            "*",
        ] {
            assert_eq!(Arn::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn iam_resource_wants_iam_a_12_digit_account_the_kind_and_a_name() {
        let ok = "arn:aws:iam::111122223333:role/path/Name";
        assert_eq!(
            Arn::iam_resource(ok, "role"),
            Some(("111122223333", "path/Name"))
        );
        assert_eq!(Arn::iam_resource(ok, "user"), None);
        assert_eq!(
            Arn::iam_resource("arn:aws:iam::111122223333:role/", "role"),
            None
        );
        assert_eq!(Arn::iam_resource("arn:aws:iam::1111:role/x", "role"), None);
        assert_eq!(
            Arn::iam_resource("arn:aws:sts::111122223333:role/x", "role"),
            None
        );
    }

    #[test]
    fn builders_write_what_parse_reads() {
        let a = "111122223333";
        let cases = [
            (root(a), "iam", "root"),
            (role(a, "/ops/", "Admin"), "iam", "role/ops/Admin"),
            (user(a, "/", "alice"), "iam", "user/alice"),
            (group(a, "admins"), "iam", "group/admins"),
            (managed_policy(a, "/", "P"), "iam", "policy/P"),
            (mfa(a, "alice"), "iam", "mfa/alice"),
            (saml_provider(a, "corp"), "iam", "saml-provider/corp"),
            (
                oidc_provider(a, "idp.example.com"),
                "iam",
                "oidc-provider/idp.example.com",
            ),
            (
                assumed_role(a, "Admin", "s1"),
                "sts",
                "assumed-role/Admin/s1",
            ),
            (federated_user(a, "bob"), "sts", "federated-user/bob"),
        ];
        for (arn, service, resource) in cases {
            let p = Arn::parse(&arn).unwrap();
            assert_eq!(
                (p.partition, p.service, p.region, p.account, p.resource),
                ("aws", service, "", a, resource),
                "{arn}"
            );
        }
    }
}

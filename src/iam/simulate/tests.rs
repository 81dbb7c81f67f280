use super::context::{context_entries, is_date, typed_value, KeyType};
use super::eval::{
    EvalResult, Matched, Outcome, Page, Simulation, Source, DETAIL_BOUNDARY, DETAIL_IDENTITY,
};
use super::params::{policy_source, Common, DEFAULT_MAX_ITEMS, INPUT_POLICY_TYPE};
use super::positions::{statement_positions, Position};
use super::principal::{parse_source_arn, SourceArn};
use super::response::render;
use crate::policy::{ContextValue, Effect, PolicyKind, PolicyScope};
use crate::query::params::Params;
use crate::query::QueryError;

fn params(pairs: &[(&str, &str)]) -> Params {
    let form: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let mut p = Params::default();
    p.add_form(form.as_bytes());
    p
}

fn entry(n: usize, name: &str, ty: &str, values: &[&str]) -> Vec<(String, String)> {
    let mut out = vec![
        (
            format!("ContextEntries.member.{n}.ContextKeyName"),
            name.into(),
        ),
        (
            format!("ContextEntries.member.{n}.ContextKeyType"),
            ty.into(),
        ),
    ];
    for (i, v) in values.iter().enumerate() {
        out.push((
            format!(
                "ContextEntries.member.{n}.ContextKeyValues.member.{}",
                i + 1
            ),
            (*v).into(),
        ));
    }
    out
}

fn entries(list: &[Vec<(String, String)>]) -> Result<Vec<(String, ContextValue)>, QueryError> {
    let pairs: Vec<(&str, &str)> = list
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    context_entries(&params(&pairs))
}

#[test]
fn context_entries_become_typed_keys() {
    let got = entries(&[
        entry(1, "aws:SourceIp", "ip", &["203.0.113.0/24"]),
        entry(2, "aws:TagKeys", "stringList", &["a", "b"]),
        entry(3, "aws:MultiFactorAuthPresent", "boolean", &["TRUE"]),
        entry(4, "s3:max-keys", "numeric", &["10"]),
        entry(5, "aws:CurrentTime", "date", &["2024-05-01T12:00:00Z"]),
        entry(
            6,
            "aws:EpochTime",
            "dateList",
            &["1714564800", "2024-05-01"],
        ),
        entry(7, "ec2:Data", "binary", &["aGVsbG8="]),
        entry(8, "s3:prefixes", "stringList", &[]),
    ])
    .unwrap();
    assert_eq!(
        got,
        vec![
            (
                "aws:SourceIp".into(),
                ContextValue::Single("203.0.113.0/24".into())
            ),
            (
                "aws:TagKeys".into(),
                ContextValue::Multi(vec!["a".into(), "b".into()])
            ),
            (
                "aws:MultiFactorAuthPresent".into(),
                ContextValue::Single("true".into())
            ),
            ("s3:max-keys".into(), ContextValue::Single("10".into())),
            (
                "aws:CurrentTime".into(),
                ContextValue::Single("2024-05-01T12:00:00Z".into())
            ),
            (
                "aws:EpochTime".into(),
                ContextValue::Multi(vec!["1714564800".into(), "2024-05-01".into()])
            ),
            ("ec2:Data".into(), ContextValue::Single("aGVsbG8=".into())),
            ("s3:prefixes".into(), ContextValue::Multi(vec![])),
        ]
    );
    assert!(entries(&[]).unwrap().is_empty());
}

#[test]
fn context_entries_are_checked() {
    let code = |list: &[Vec<(String, String)>]| entries(list).unwrap_err().code;
    let cases = [
        ("aws:SourceIp", "ip", "nope", "InvalidInput"),
        ("s3:n", "numeric", "1", "ValidationError"),
        ("aws:x-num", "numeric", "ten", "InvalidInput"),
        ("aws:flag", "boolean", "yes", "InvalidInput"),
        ("aws:when", "date", "yesterday", "InvalidInput"),
        ("aws:blob", "binary", "%%%", "InvalidInput"),
        ("aws:key", "text", "x", "ValidationError"),
    ];
    for (key, kind, value, want) in cases {
        assert_eq!(
            code(&[entry(1, key, kind, &[value])]),
            want,
            "{key} {kind} {value}"
        );
    }
    // A single-valued type needs exactly one value.
    assert_eq!(code(&[entry(1, "aws:key", "string", &[])]), "InvalidInput");
    assert_eq!(
        code(&[entry(1, "aws:key", "string", &["a", "b"])]),
        "InvalidInput"
    );
    // Names are case-insensitive, so one key cannot be given twice.
    assert_eq!(
        code(&[
            entry(1, "aws:Key", "string", &["a"]),
            entry(2, "AWS:key", "string", &["b"])
        ]),
        "InvalidInput"
    );
    // Members are numbered from 1 without gaps, and each has a name and a type.
    assert_eq!(
        code(&[entry(2, "aws:key", "string", &["a"])]),
        "InvalidParameterValue"
    );
    let p = params(&[("ContextEntries.member.1.ContextKeyName", "aws:key")]);
    assert_eq!(context_entries(&p).unwrap_err().code, "InvalidInput");
}

#[test]
fn values_are_validated_by_type() {
    assert!(typed_value(KeyType::Numeric, "1.5e3").is_ok());
    assert!(typed_value(KeyType::Numeric, "-7").is_ok());
    assert!(typed_value(KeyType::Numeric, "NaN").is_err());
    assert!(typed_value(KeyType::Ip, "2001:db8::/32").is_ok());
    assert!(typed_value(KeyType::Ip, "10.0.0.1").is_ok());
    for d in [
        "2024-05",
        "2024-05-01",
        "2024-05-01T12:00Z",
        "2024-05-01T12:00:00.250+02:00",
        "2024-05-01T12:00:00",
        "1714564800.5",
    ] {
        assert!(is_date(d), "{d}");
    }
    assert!(!is_date("2024-13-01"));
    assert_eq!(typed_value(KeyType::Boolean, "False").unwrap(), "false");
}

fn common(pairs: &[(&str, &str)], custom: bool) -> Result<Common, QueryError> {
    Common::parse(&params(pairs), custom)
}

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;

#[test]
fn required_and_limited_members() {
    let err = |pairs: &[(&str, &str)], custom| common(pairs, custom).err().unwrap();
    let e = err(&[("PolicyInputList.member.1", ALLOW_ALL)], true);
    assert_eq!(e.code, "ValidationError");
    assert!(e.message.contains("'actionNames'"), "{}", e.message);
    assert!(e.message.contains("must not be null"), "{}", e.message);
    let e = err(
        &[("ActionNames", ""), ("PolicyInputList.member.1", ALLOW_ALL)],
        true,
    );
    assert!(
        e.message.contains("greater than or equal to 1"),
        "{}",
        e.message
    );
    let e = err(&[("ActionNames.member.1", "s3:GetObject")], true);
    assert!(e.message.contains("'policyInputList'"), "{}", e.message);
    assert!(common(&[("ActionNames.member.1", "s3:GetObject")], false).is_ok());
    let e = err(&[("ActionNames.member.1", "GetObject")], false);
    assert_eq!(e.code, "InvalidInput");
    let e = err(
        &[("ActionNames.member.1", "s3:X"), ("MaxItems", "0")],
        false,
    );
    assert_eq!(e.code, "ValidationError");
    let e = err(
        &[("ActionNames.member.1", "s3:X"), ("MaxItems", "1001")],
        false,
    );
    assert_eq!(e.code, "ValidationError");
    let e = err(
        &[
            ("ActionNames.member.1", "s3:X"),
            ("PolicyInputList.member.1", "{\"Version\": \"2012-10-17\"}"),
        ],
        false,
    );
    assert_eq!(e.code, "MalformedPolicyDocument");
    assert!(
        e.message.starts_with("PolicyInputList.1: "),
        "{}",
        e.message
    );
    let e = err(
        &[
            ("ActionNames.member.1", "s3:X"),
            ("PermissionsBoundaryPolicyInputList.member.1", ALLOW_ALL),
            ("PermissionsBoundaryPolicyInputList.member.2", ALLOW_ALL),
        ],
        false,
    );
    assert_eq!(e.code, "InvalidInput");
    let e = err(
        &[
            ("ActionNames.member.1", "s3:X"),
            ("ResourceHandlingOption", "EC2-VPC-InstanceStore"),
        ],
        false,
    );
    assert_eq!(e.code, "InvalidInput");
    let c = common(
        &[
            ("ActionNames.member.1", "s3:X"),
            ("ResourceOwner", "arn:aws:iam::111122223333:root"),
            ("CallerArn", "arn:aws:iam::111122223333:user/u"),
        ],
        false,
    )
    .unwrap();
    assert_eq!(c.resource_owner.as_deref(), Some("111122223333"));
    assert_eq!(c.resources, vec!["*"]);
    assert!(!c.resources_given);
    assert_eq!(c.max_items, DEFAULT_MAX_ITEMS);
}

#[test]
fn markers_are_offsets_into_the_results() {
    let c = common(
        &[
            ("ActionNames.member.1", "s3:A"),
            ("ActionNames.member.2", "s3:B"),
            ("Marker", "1"),
        ],
        false,
    )
    .unwrap();
    assert_eq!(c.offset().unwrap(), 1);
    for bad in ["2", "x", "-1"] {
        let c = common(&[("ActionNames.member.1", "s3:A"), ("Marker", bad)], false).unwrap();
        assert_eq!(c.offset().unwrap_err().code, "InvalidInput", "{bad}");
    }
}

#[test]
fn source_arns() {
    assert!(matches!(
        parse_source_arn("arn:aws:iam::111122223333:role/p/app").unwrap(),
        SourceArn::Role(_)
    ));
    assert!(matches!(
        parse_source_arn("arn:aws:sts::111122223333:assumed-role/app/s1").unwrap(),
        SourceArn::Session {
            account: "111122223333",
            role_name: "app",
            session: "s1"
        }
    ));
    assert!(matches!(
        parse_source_arn("arn:aws:iam::111122223333:user/path/bob").unwrap(),
        SourceArn::Other {
            kind: "user",
            name: "bob"
        }
    ));
    for bad in [
        "arn:aws:s3:::bucket-name-long-enough",
        "arn:aws:iam::1111:role/app-name-here",
        "arn:aws:iam::111122223333:policy/x",
        "arn:aws:iam::111122223333:role/",
        "not an arn at all, really",
    ] {
        assert_eq!(
            parse_source_arn(bad).err().unwrap().code,
            "InvalidInput",
            "{bad}"
        );
    }
}

#[test]
fn positions_follow_iams_convention() {
    // The example of IAM's documentation: 1-based lines, columns just after each brace.
    let one = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}"#;
    assert_eq!(
        statement_positions(one),
        vec![(
            Position {
                line: 1,
                column: 38
            },
            Position {
                line: 1,
                column: 167
            }
        )]
    );
    let pretty = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\",\n      \"Action\": \"s3:*\",\n      \"Resource\": \"*\"\n    },\r\n    {\"Sid\": \"b]}\", \"Effect\": \"Deny\", \"Action\": \"s3:Delete*\", \"Resource\": [\"*\"]}\n  ]\n}";
    assert_eq!(
        statement_positions(pretty),
        vec![
            (
                Position { line: 4, column: 6 },
                Position { line: 8, column: 6 }
            ),
            (
                Position { line: 9, column: 6 },
                Position {
                    line: 9,
                    column: 80
                }
            ),
        ]
    );
    let escaped = r#"{"\u0053tatement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    assert_eq!(statement_positions(escaped).len(), 1);
    assert!(statement_positions("not json").is_empty());
}

fn source(text: &str, id: &str, scope: PolicyScope) -> Source {
    let kind = if scope == PolicyScope::Resource {
        PolicyKind::Resource
    } else {
        PolicyKind::Inline
    };
    policy_source(text, id.into(), "m", kind, scope, INPUT_POLICY_TYPE).unwrap()
}

fn simulation(sources: Vec<Source>, actions: &[&str], resources: &[&str]) -> Simulation {
    Simulation {
        sources,
        actions: actions.iter().map(|s| s.to_string()).collect(),
        resources: if resources.is_empty() {
            vec!["*".into()]
        } else {
            resources.iter().map(|s| s.to_string()).collect()
        },
        resources_given: !resources.is_empty(),
        principal: None,
        principal_account: None,
        resource_owner: None,
        keys: Vec::new(),
        max_items: DEFAULT_MAX_ITEMS,
        marker: 0,
    }
}

#[test]
fn decisions_statements_and_missing_keys() {
    let identity = r#"{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Action":"s3:*","Resource":"*"},
{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"},
{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}}]}"#;
    let boundary = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","ec2:*"],"Resource":"*"}]}"#;
    let sim = simulation(
        vec![
            source(identity, "PolicyInputList.1", PolicyScope::Identity),
            source(
                boundary,
                "PermissionsBoundaryPolicyInputList.1",
                PolicyScope::Boundary,
            ),
        ],
        &["s3:GetObject", "s3:DeleteBucket", "ec2:RunInstances"],
        &[],
    );
    let page = sim.run();
    assert_eq!(page.next, None);
    let [get, delete, run] = &page.results[..] else {
        panic!("{page:?}")
    };
    assert_eq!(get.outcome.decision, Effect::Allow);
    assert_eq!(
        get.outcome
            .matched
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>(),
        vec!["PolicyInputList.1", "PermissionsBoundaryPolicyInputList.1"]
    );
    assert_eq!(
        get.outcome.matched[0].span,
        Some((
            Position { line: 2, column: 2 },
            Position {
                line: 2,
                column: 50
            }
        ))
    );
    assert_eq!(get.outcome.allowed_by_boundary, Some(true));
    assert_eq!(delete.outcome.decision, Effect::ExplicitDeny);
    assert_eq!(delete.outcome.matched.len(), 1);
    assert_eq!(
        delete.outcome.matched[0].span.unwrap().0,
        Position { line: 3, column: 2 }
    );
    assert_eq!(
        delete.outcome.details,
        vec![
            (DETAIL_IDENTITY, Effect::ExplicitDeny),
            (DETAIL_BOUNDARY, Effect::Allow)
        ]
    );
    assert_eq!(run.outcome.decision, Effect::ImplicitDeny);
    assert_eq!(run.outcome.missing, vec!["aws:RequestedRegion"]);
}

#[test]
fn pages_walk_actions_then_resources() {
    let mut sim = simulation(
        vec![source(
            ALLOW_ALL,
            "PolicyInputList.1",
            PolicyScope::Identity,
        )],
        &["s3:A", "s3:B"],
        &["arn:aws:s3:::x", "arn:aws:s3:::y"],
    );
    sim.max_items = 3;
    let first = sim.run();
    let names: Vec<(&str, &str)> = first
        .results
        .iter()
        .map(|r| (r.action.as_str(), r.resource.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("s3:A", "arn:aws:s3:::x"),
            ("s3:A", "arn:aws:s3:::y"),
            ("s3:B", "arn:aws:s3:::x")
        ]
    );
    assert_eq!(first.next, Some(3));
    sim.marker = 3;
    let second = sim.run();
    assert_eq!(second.results.len(), 1);
    assert_eq!(second.results[0].resource, "arn:aws:s3:::y");
    assert_eq!(second.next, None);
}

#[test]
fn xml_shape() {
    let result = EvalResult {
        action: "s3:GetObject".into(),
        resource: "arn:aws:s3:::b/k".into(),
        outcome: Outcome {
            decision: Effect::Allow,
            matched: vec![
                Matched {
                    id: "PolicyInputList.1".into(),
                    source_type: INPUT_POLICY_TYPE,
                    span: Some((
                        Position {
                            line: 1,
                            column: 38,
                        },
                        Position {
                            line: 1,
                            column: 90,
                        },
                    )),
                },
                Matched {
                    id: "inline".into(),
                    source_type: "role",
                    span: None,
                },
            ],
            missing: vec!["aws:SourceIp".into()],
            details: vec![
                (DETAIL_IDENTITY, Effect::Allow),
                (DETAIL_BOUNDARY, Effect::Allow),
            ],
            allowed_by_boundary: Some(true),
        },
        resource_specific: true,
    };
    let page = Page {
        results: vec![result],
        next: Some(1),
    };
    let details = "<MatchedStatements>\n<member>\n\
        <SourcePolicyId>PolicyInputList.1</SourcePolicyId>\n\
        <SourcePolicyType>IAM Policy</SourcePolicyType>\n\
        <StartPosition>\n<Line>1</Line>\n<Column>38</Column>\n</StartPosition>\n\
        <EndPosition>\n<Line>1</Line>\n<Column>90</Column>\n</EndPosition>\n</member>\n\
        <member>\n<SourcePolicyId>inline</SourcePolicyId>\n\
        <SourcePolicyType>role</SourcePolicyType>\n</member>\n</MatchedStatements>\n\
        <MissingContextValues>\n<member>aws:SourceIp</member>\n</MissingContextValues>\n\
        <EvalDecisionDetails>\n\
        <entry>\n<key>IAM Policy</key>\n<value>allowed</value>\n</entry>\n\
        <entry>\n<key>Permissions Boundary Policy</key>\n<value>allowed</value>\n</entry>\n\
        </EvalDecisionDetails>\n\
        <PermissionsBoundaryDecisionDetail>\n\
        <AllowedByPermissionsBoundary>true</AllowedByPermissionsBoundary>\n\
        </PermissionsBoundaryDecisionDetail>\n";
    let expected = format!(
        "<SimulateCustomPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\n\
         <SimulateCustomPolicyResult>\n<EvaluationResults>\n<member>\n\
         <EvalActionName>s3:GetObject</EvalActionName>\n\
         <EvalResourceName>arn:aws:s3:::b/k</EvalResourceName>\n\
         <EvalDecision>allowed</EvalDecision>\n{details}\
         <ResourceSpecificResults>\n<member>\n\
         <EvalResourceName>arn:aws:s3:::b/k</EvalResourceName>\n\
         <EvalResourceDecision>allowed</EvalResourceDecision>\n{details}\
         </member>\n</ResourceSpecificResults>\n</member>\n</EvaluationResults>\n\
         <IsTruncated>true</IsTruncated>\n<Marker>1</Marker>\n\
         </SimulateCustomPolicyResult>\n<ResponseMetadata>\n<RequestId>rid</RequestId>\n\
         </ResponseMetadata>\n</SimulateCustomPolicyResponse>\n"
    );
    assert_eq!(render("SimulateCustomPolicy", &page, "rid"), expected);

    let empty = Page {
        results: Vec::new(),
        next: None,
    };
    assert!(render("SimulatePrincipalPolicy", &empty, "rid").contains(
        "<SimulatePrincipalPolicyResult>\n<EvaluationResults>\n</EvaluationResults>\n\
         <IsTruncated>false</IsTruncated>\n</SimulatePrincipalPolicyResult>"
    ));
}

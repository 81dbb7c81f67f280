//! Identifiers of a signed assertion are used exactly as signed: a NameID, an Issuer or an
//! AuthnContextClassRef with whitespace around it is not the same as one without, and a NameID of
//! nothing but whitespace is refused. Responses are signed by xmlsec with a test IdP's key and verified through the whole
//! pipeline.

use super::test_idp::{self, Claims, Signed, IDP};
use super::*;
use crate::config::SpDecryption;
use crate::store::MemoryStore;

const T0: i64 = 1_800_000_000;
const ACS: &str = "https://sp.example/saml/acs";
const SP: &str = "https://sp.example/saml/metadata";
const MFA: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:MultiFactor";

struct Fixture {
    idp: PKey<Private>,
    sp: PKey<Private>,
    fed: SamlFederation,
    store: MemoryStore,
}

fn fixture() -> Fixture {
    let idp = test_idp::rsa_key();
    let sp = test_idp::rsa_key();
    let settings = test_idp::sp_settings(Some(SpDecryption {
        keys_pkcs8_der: vec![sp.private_key_to_pkcs8().unwrap()],
        certificates_der: vec![test_idp::certificate(&sp)],
    }));
    let metadata = saml_metadata::parse_idp(&test_idp::metadata_xml(&idp)).unwrap();
    let provider = test_idp::provider(Some(metadata), &[MFA]);
    let clock = crate::clock::FixedClock::new(DateTime::from_timestamp(T0, 0).unwrap());
    Fixture {
        fed: SamlFederation::new(&settings, &[provider], Arc::new(clock)),
        store: MemoryStore::new(),
        idp,
        sp,
    }
}

impl Fixture {
    fn run(&self, xml: &str) -> Result<SamlIdentity> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(
                self.fed
                    .verify(&self.store, "corp", &STANDARD.encode(xml), Use::Sts),
            )
    }

    /// The Response about `name_id` in each signed form: the Response signed, the Assertion
    /// signed, the assertion encrypted inside a signed Response. The assertion IDs are `{id}-r`,
    /// `{id}-a` and `{id}-e`.
    fn responses(&self, id: &str, name_id: &str) -> Vec<(&'static str, String)> {
        self.responses_with(id, name_id, test_idp::PASSWORD)
    }

    /// [`Fixture::responses`] with the AuthnContextClassRef `context`.
    fn responses_with(
        &self,
        id: &str,
        name_id: &str,
        context: &str,
    ) -> Vec<(&'static str, String)> {
        let ids = [format!("{id}-r"), format!("{id}-a"), format!("{id}-e")];
        let claims = |i: usize| {
            let mut c = Claims::new(name_id, SP, ACS, T0).attribute("groups", &["engineers"]);
            c.id = &ids[i];
            c.authn_context = context;
            c
        };
        vec![
            (
                "Response signed",
                test_idp::response(&claims(0), &self.idp, Signed::Response),
            ),
            (
                "Assertion signed",
                test_idp::response(&claims(1), &self.idp, Signed::Assertion),
            ),
            (
                "encrypted",
                test_idp::encrypted_response(&claims(2), &self.idp, &self.sp),
            ),
        ]
    }
}

fn refused_with(r: Result<SamlIdentity>, reason: &str) {
    match r {
        Ok(i) => panic!("accepted as {:?}, expected: {reason}", i.name_id),
        Err(e) => {
            assert!(matches!(e, SamlError::Invalid(_)), "{e:?}");
            assert!(
                e.to_string().contains(reason),
                "wanted '{reason}', got '{e}'"
            );
        }
    }
}

#[test]
fn a_signed_name_id_is_the_subject_exactly_as_signed() {
    let f = fixture();
    let cases = [
        ("a1", " alice"),
        ("a2", "alice "),
        ("a3", "\talice\n"),
        ("a4", "Alice"),
        ("a5", "alice"),
        ("a6", "al  ice"),
    ];
    for (id, name_id) in cases {
        for (form, xml) in f.responses(id, name_id) {
            let identity = f
                .run(&xml)
                .unwrap_or_else(|e| panic!("{form} {name_id:?}: {e}"));
            assert_eq!(identity.name_id, name_id, "{form}");
            assert_eq!(identity.attributes["groups"], ["engineers"], "{form}");
        }
    }
}

#[test]
fn a_name_id_of_nothing_but_whitespace_is_refused_and_nothing_is_recorded() {
    let f = fixture();
    // XML whitespace alone is no text for samael: such a NameID does not parse; the NameID
    // check refuses it too should a parser ever hand it over.
    for (n, blank) in ["", " ", "\n\t  "].into_iter().enumerate() {
        let id = format!("b{n}");
        let refused = f.responses(&id, blank);
        let good = f.responses(&id, "alice");
        for ((form, bad), (_, good)) in refused.iter().zip(&good) {
            match f.run(bad) {
                Err(SamlError::Invalid(r))
                    if r.contains("NameID") || r.contains("missing field `$value`") => {}
                other => panic!("{form} {blank:?}: {other:?}"),
            }
            // The assertion's ID was not recorded by the refusal.
            f.run(good)
                .unwrap_or_else(|e| panic!("{form} {blank:?}: the refused ID was recorded: {e}"));
        }
    }
}

#[test]
fn issuers_are_compared_exactly_as_written() {
    let f = fixture();
    // The Response's Issuer (outside the signed Assertion) with a space before the entity id.
    let mut c = Claims::new("alice", SP, ACS, T0);
    c.id = "i1";
    let signed = test_idp::response(&c, &f.idp, Signed::Assertion);
    let honest = format!("<saml:Issuer>{IDP}</saml:Issuer>");
    assert_eq!(signed.matches(&honest).count(), 2, "{signed}");
    let spaced = signed.replacen(&honest, &format!("<saml:Issuer> {IDP}</saml:Issuer>"), 1);
    refused_with(
        f.run(&spaced),
        &format!("the Response's Issuer ' {IDP}' differs from the Assertion's '{IDP}'"),
    );
    f.run(&signed).expect("control: the document as signed");
    // Both Issuers spaced the same way, signed: not the provider's entity id.
    let spaced_idp = format!("{IDP} ");
    let mut c = Claims::new("alice", SP, ACS, T0);
    c.issuer = &spaced_idp;
    for signed in [Signed::Response, Signed::Assertion] {
        refused_with(
            f.run(&test_idp::response(&c, &f.idp, signed)),
            &format!("Issuer '{IDP} ' is not provider corp's entity id '{IDP}'"),
        );
    }
}

#[test]
fn the_name_id_check_itself_refuses_whitespace_and_keeps_everything_else() {
    let f = fixture();
    let provider = f.fed.provider("corp").unwrap();
    let metadata = f.fed.metadata("corp").unwrap();
    let shape = shape::Shape {
        response_id: "r1".into(),
        assertion_id: Some("a1".into()),
        status: Some(STATUS_SUCCESS.into()),
        assertion_signed: true,
        ..shape::Shape::default()
    };
    let now = DateTime::from_timestamp(T0, 0).unwrap();
    let with_name_id = |value: &str| {
        let mut a: Assertion = test_idp::assertion(&Claims::new("x", SP, ACS, T0), false)
            .parse()
            .unwrap();
        if let Some(n) = a.subject.as_mut().and_then(|s| s.name_id.as_mut()) {
            n.value = value.into();
        }
        f.fed
            .check_assertion(&provider, &metadata, &shape, &a, Use::Sts, now)
    };
    for blank in ["", " ", "\u{a0}", "\r\n\t"] {
        refused_with(
            with_name_id(blank),
            &format!("the Subject's NameID {blank:?} is empty or only whitespace"),
        );
    }
    for kept in [" alice", "alice\n", "ALICE"] {
        assert_eq!(with_name_id(kept).unwrap().name_id, kept);
    }
}

#[test]
fn the_authn_context_counts_as_mfa_only_exactly_as_configured() {
    let f = fixture();
    let padded = [format!(" {MFA}"), format!("{MFA}\n"), MFA.to_uppercase()];
    for (n, context) in padded.iter().enumerate() {
        for (form, xml) in f.responses_with(&format!("m{n}"), "alice", context) {
            let identity = f
                .run(&xml)
                .unwrap_or_else(|e| panic!("{form} {context:?}: {e}"));
            assert_eq!(identity.authn_context.as_deref(), Some(context.as_str()));
            assert_eq!(identity.mfa_time, None, "{form} {context:?}");
        }
    }
    // Control: the configured context itself is MFA.
    for (form, xml) in f.responses_with("m-exact", "alice", MFA) {
        let identity = f.run(&xml).unwrap_or_else(|e| panic!("{form}: {e}"));
        assert_eq!(identity.authn_context.as_deref(), Some(MFA));
        assert_eq!(identity.mfa_time, Some(T0), "{form}");
    }
}

//! The attribute definitions of the schemas rolegate serves (RFC 7643 §4, §5, §6, §7, §8.7): one
//! table that validation, filters, PATCH, projection and the `/Schemas` documents all read, so
//! that what rolegate publishes is what it enforces.

/// An attribute's data type (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// A Unicode string.
    String,
    /// `true` or `false`.
    Boolean,
    /// A real number.
    Decimal,
    /// A whole number.
    Integer,
    /// An `xsd:dateTime` instant.
    DateTime,
    /// Base64-encoded bytes.
    Binary,
    /// A URI.
    Reference,
    /// An object of sub-attributes.
    Complex,
}

impl AttrType {
    /// The name in a schema document.
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

/// Whether and how a client may change an attribute (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// Set by the server only.
    ReadOnly,
    /// Set and changed by the client.
    ReadWrite,
    /// Set once by the client, never changed.
    Immutable,
    /// Set by the client, never returned.
    WriteOnly,
}

impl Mutability {
    /// The name in a schema document.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

/// When an attribute is returned (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Always, whatever `attributes`/`excludedAttributes` say.
    Always,
    /// Never.
    Never,
    /// Unless excluded.
    Default,
    /// Only when named in `attributes`.
    Request,
}

impl Returned {
    /// The name in a schema document.
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// How unique a value is (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    /// Not at all.
    None,
    /// Within this server.
    Server,
    /// Globally.
    Global,
}

impl Uniqueness {
    /// The name in a schema document.
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, Clone, Copy)]
pub struct Attribute {
    /// The name, in its canonical casing.
    pub name: &'static str,
    /// The data type.
    pub ty: AttrType,
    /// Whether the value is an array.
    pub multi_valued: bool,
    /// What it means.
    pub description: &'static str,
    /// Whether a resource must have it.
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    pub case_exact: bool,
    /// Who may change it.
    pub mutability: Mutability,
    /// When it is returned.
    pub returned: Returned,
    /// How unique it is.
    pub uniqueness: Uniqueness,
    /// Suggested values.
    pub canonical_values: &'static [&'static str],
    /// For references: what they point at.
    pub reference_types: &'static [&'static str],
    /// For complex attributes: the sub-attributes.
    pub sub_attributes: &'static [Attribute],
}

pub(super) const fn attr(name: &'static str, ty: AttrType, description: &'static str) -> Attribute {
    Attribute {
        name,
        ty,
        multi_valued: false,
        description,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    }
}

pub(super) const fn string(name: &'static str, description: &'static str) -> Attribute {
    attr(name, AttrType::String, description)
}

pub(super) const fn complex(
    name: &'static str,
    description: &'static str,
    subs: &'static [Attribute],
) -> Attribute {
    let mut a = attr(name, AttrType::Complex, description);
    a.sub_attributes = subs;
    a
}

impl Attribute {
    pub(super) const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    pub(super) const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub(super) const fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    pub(super) const fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    pub(super) const fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    pub(super) const fn unique(mut self) -> Self {
        self.uniqueness = Uniqueness::Server;
        self
    }
    pub(super) const fn canonical(mut self, v: &'static [&'static str]) -> Self {
        self.canonical_values = v;
        self
    }
    pub(super) const fn refs(mut self, v: &'static [&'static str]) -> Self {
        self.reference_types = v;
        self
    }

    /// The sub-attribute of this name (case-insensitive).
    pub fn sub(&self, name: &str) -> Option<&'static Attribute> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

use AttrType::{Binary, Boolean, DateTime, Reference};
use Mutability::{Immutable, ReadOnly, WriteOnly};

/// A schema: its URN, name, description and attributes.
#[derive(Debug)]
pub struct SchemaDef {
    /// The schema URN.
    pub id: &'static str,
    /// A short name.
    pub name: &'static str,
    /// What it describes.
    pub description: &'static str,
    /// Its attributes.
    pub attributes: &'static [Attribute],
}

/// The attributes common to every resource (RFC 7643 §3, §3.1), with `schemas`: not part of any
/// schema document.
pub const COMMON: &[Attribute] = &[
    string(
        "schemas",
        "The schema URIs of the resource (filterable, as in `schemas eq \"urn:…\"`).",
    )
    .multi()
    .mutability(ReadOnly)
    .returned(Returned::Always)
    .refs(&["uri"]),
    string(
        "id",
        "A unique identifier for a SCIM resource as defined by the service provider.",
    )
    .exact()
    .mutability(ReadOnly)
    .returned(Returned::Always)
    .unique(),
    string(
        "externalId",
        "An identifier for the resource as defined by the provisioning client.",
    )
    .exact(),
    complex("meta", "Resource metadata.", META_SUBS).mutability(ReadOnly),
];

const META_SUBS: &[Attribute] = &[
    string(
        "resourceType",
        "The name of the resource type of the resource.",
    )
    .exact()
    .mutability(ReadOnly),
    attr(
        "created",
        DateTime,
        "The instant the resource was added to the service provider.",
    )
    .mutability(ReadOnly),
    attr(
        "lastModified",
        DateTime,
        "The most recent instant the resource was modified.",
    )
    .mutability(ReadOnly),
    attr(
        "location",
        Reference,
        "The URI of the resource being returned.",
    )
    .mutability(ReadOnly)
    .refs(&["uri"]),
    string(
        "version",
        "The version (ETag) of the resource being returned.",
    )
    .exact()
    .mutability(ReadOnly),
];

const TYPE_WHO: &[&str] = &["work", "home", "other"];

const fn primary(what: &'static str) -> Attribute {
    attr("primary", Boolean, what)
}

const fn value_display_type_primary(
    value: &'static str,
    types: &'static [&'static str],
) -> [Attribute; 4] {
    [
        string("value", value),
        string(
            "display",
            "A human-readable name, primarily used for display purposes.",
        ),
        string("type", "A label indicating the attribute's function.").canonical(types),
        primary("A Boolean value indicating the 'primary' or preferred attribute value."),
    ]
}

const NAME_SUBS: &[Attribute] = &[
    string("formatted", "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display."),
    string("familyName", "The family name of the User, or last name in most Western languages."),
    string("givenName", "The given name of the User, or first name in most Western languages."),
    string("middleName", "The middle name(s) of the User."),
    string("honorificPrefix", "The honorific prefix(es) of the User, or title in most Western languages."),
    string("honorificSuffix", "The honorific suffix(es) of the User, or suffix in most Western languages."),
];

const EMAIL_SUBS: &[Attribute] =
    &value_display_type_primary("Email address for the User.", TYPE_WHO);
const PHONE_SUBS: &[Attribute] = &value_display_type_primary(
    "Phone number of the User.",
    &["work", "home", "mobile", "fax", "pager", "other"],
);
const IM_SUBS: &[Attribute] = &value_display_type_primary(
    "Instant messaging address for the User.",
    &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
);
const PHOTO_SUBS: &[Attribute] = &[
    attr("value", Reference, "URL of a photo of the User.").refs(&["external"]),
    string(
        "display",
        "A human-readable name, primarily used for display purposes.",
    ),
    string("type", "A label indicating the attribute's function.")
        .canonical(&["photo", "thumbnail"]),
    primary("A Boolean value indicating the 'primary' or preferred photo."),
];
const ADDRESS_SUBS: &[Attribute] = &[
    string(
        "formatted",
        "The full mailing address, formatted for display or use with a mailing label.",
    ),
    string("streetAddress", "The full street address component."),
    string("locality", "The city or locality component."),
    string("region", "The state or region component."),
    string("postalCode", "The zip code or postal code component."),
    string("country", "The country name component."),
    string("type", "A label indicating the attribute's function.").canonical(TYPE_WHO),
    primary("A Boolean value indicating the 'primary' or preferred address."),
];
const USER_GROUP_SUBS: &[Attribute] = &[
    string("value", "The identifier of the User's group.").mutability(ReadOnly),
    attr(
        "$ref",
        Reference,
        "The URI of the corresponding 'Group' resource to which the user belongs.",
    )
    .mutability(ReadOnly)
    .refs(&["User", "Group"]),
    string(
        "display",
        "A human-readable name, primarily used for display purposes.",
    )
    .mutability(ReadOnly),
    string(
        "type",
        "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.",
    )
    .mutability(ReadOnly)
    .canonical(&["direct", "indirect"]),
];
const PLAIN_SUBS: &[Attribute] = &value_display_type_primary("The value.", &[]);
const CERT_SUBS: &[Attribute] = &[
    attr("value", Binary, "The value of an X.509 certificate."),
    string(
        "display",
        "A human-readable name, primarily used for display purposes.",
    ),
    string("type", "A label indicating the attribute's function."),
    primary("A Boolean value indicating the 'primary' or preferred certificate."),
];

const USER_ATTRS: &[Attribute] = &[
    string("userName", "Unique identifier for the User, typically used by the user to directly authenticate to the service provider.")
        .required()
        .unique(),
    complex("name", "The components of the user's real name.", NAME_SUBS),
    string("displayName", "The name of the User, suitable for display to end-users."),
    string("nickName", "The casual way to address the user in real life."),
    attr("profileUrl", Reference, "A fully qualified URL pointing to a page representing the User's online profile.")
        .refs(&["external"]),
    string("title", "The user's title, such as \"Vice President\"."),
    string("userType", "Used to identify the relationship between the organization and the user."),
    string("preferredLanguage", "Indicates the User's preferred written or spoken language."),
    string("locale", "Used to indicate the User's default location for purposes of localizing items such as currency, date time format, or numerical representations."),
    string("timezone", "The User's time zone in the 'Olson' time zone database format, e.g., 'America/Los_Angeles'."),
    attr("active", Boolean, "A Boolean value indicating the User's administrative status."),
    string("password", "The User's cleartext password. Accepted and discarded: rolegate keeps no passwords of provisioned users.")
        .mutability(WriteOnly)
        .returned(Returned::Never),
    complex("emails", "Email addresses for the user.", EMAIL_SUBS).multi(),
    complex("phoneNumbers", "Phone numbers for the User.", PHONE_SUBS).multi(),
    complex("ims", "Instant messaging addresses for the User.", IM_SUBS).multi(),
    complex("photos", "URLs of photos of the User.", PHOTO_SUBS).multi(),
    complex("addresses", "A physical mailing address for this User.", ADDRESS_SUBS).multi(),
    complex("groups", "A list of groups to which the user belongs, either through direct membership, through nested groups, or dynamically calculated.", USER_GROUP_SUBS)
        .multi()
        .mutability(ReadOnly),
    complex("entitlements", "A list of entitlements for the User that represent a thing the User has.", PLAIN_SUBS).multi(),
    complex("roles", "A list of roles for the User that collectively represent who the User is, e.g., 'Student', 'Faculty'.", PLAIN_SUBS).multi(),
    complex("x509Certificates", "A list of certificates issued to the User.", CERT_SUBS).multi(),
];

const MANAGER_SUBS: &[Attribute] = &[
    string(
        "value",
        "The id of the SCIM resource representing the User's manager.",
    )
    .exact(),
    attr(
        "$ref",
        Reference,
        "The URI of the SCIM resource representing the User's manager.",
    )
    .refs(&["User"]),
    string("displayName", "The displayName of the User's manager.").mutability(ReadOnly),
];

const ENTERPRISE_ATTRS: &[Attribute] = &[
    string("employeeNumber", "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization."),
    string("costCenter", "Identifies the name of a cost center."),
    string("organization", "Identifies the name of an organization."),
    string("division", "Identifies the name of a division."),
    string("department", "Identifies the name of a department."),
    complex("manager", "The User's manager.", MANAGER_SUBS),
];

const MEMBER_SUBS: &[Attribute] = &[
    string("value", "Identifier of the member of this Group.")
        .exact()
        .required()
        .mutability(Immutable),
    attr(
        "$ref",
        Reference,
        "The URI corresponding to a SCIM resource that is a member of this Group.",
    )
    .mutability(Immutable)
    .refs(&["User", "Group"]),
    string(
        "type",
        "A label indicating the type of resource, e.g., 'User' or 'Group'.",
    )
    .mutability(Immutable)
    .canonical(&["User", "Group"]),
    string("display", "A human-readable name for the member."),
];

const GROUP_ATTRS: &[Attribute] = &[
    string("displayName", "A human-readable name for the Group.").required(),
    complex("members", "A list of members of the Group.", MEMBER_SUBS).multi(),
];

/// The core User schema.
pub static USER: SchemaDef = SchemaDef {
    id: super::USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: USER_ATTRS,
};

/// The enterprise User extension.
pub static ENTERPRISE_USER: SchemaDef = SchemaDef {
    id: super::ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: ENTERPRISE_ATTRS,
};

/// The core Group schema.
pub static GROUP: SchemaDef = SchemaDef {
    id: super::GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: GROUP_ATTRS,
};

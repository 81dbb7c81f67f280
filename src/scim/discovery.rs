//! The discovery documents (RFC 7644 §4): ServiceProviderConfig, Schemas (full attribute
//! definitions, RFC 7643 §7 and §8.7, rendered from the table that validation enforces) and
//! ResourceTypes.

use super::definitions::{
    attr, complex, string, AttrType, Attribute, Mutability, SchemaDef, ENTERPRISE_USER, GROUP, USER,
};
use super::{list_response, ResourceKind};
use serde_json::{json, Map, Value};

/// The most resources one list response holds (`filter.maxResults` of the ServiceProviderConfig).
pub const MAX_RESULTS: usize = 200;

const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

use AttrType::{Boolean, Integer, Reference};
use Mutability::ReadOnly;

const fn supported(
    name: &'static str,
    description: &'static str,
    subs: &'static [Attribute],
) -> Attribute {
    complex(name, description, subs)
        .required()
        .mutability(ReadOnly)
}

const SUPPORTED: &[Attribute] =
    &[
        attr("supported", Boolean, "Whether the operation is supported.")
            .required()
            .mutability(ReadOnly),
    ];
const BULK: &[Attribute] = &[
    SUPPORTED[0],
    attr(
        "maxOperations",
        Integer,
        "The maximum number of operations.",
    )
    .required()
    .mutability(ReadOnly),
    attr(
        "maxPayloadSize",
        Integer,
        "The maximum payload size in bytes.",
    )
    .required()
    .mutability(ReadOnly),
];
const FILTER: &[Attribute] = &[
    SUPPORTED[0],
    attr(
        "maxResults",
        Integer,
        "The maximum number of resources returned in a response.",
    )
    .required()
    .mutability(ReadOnly),
];
const AUTH: &[Attribute] = &[
    string("type", "The authentication scheme.")
        .required()
        .mutability(ReadOnly)
        .canonical(&[
            "oauth",
            "oauth2",
            "oauthbearertoken",
            "httpbasic",
            "httpdigest",
        ]),
    string("name", "The common authentication scheme name.")
        .required()
        .mutability(ReadOnly),
    string("description", "A description of the authentication scheme.")
        .required()
        .mutability(ReadOnly),
    attr(
        "specUri",
        Reference,
        "An HTTP-addressable URL pointing to the authentication scheme's specification.",
    )
    .mutability(ReadOnly)
    .refs(&["external"]),
    attr(
        "documentationUri",
        Reference,
        "An HTTP-addressable URL pointing to the authentication scheme's usage documentation.",
    )
    .mutability(ReadOnly)
    .refs(&["external"]),
    attr(
        "primary",
        Boolean,
        "Whether this is the preferred authentication scheme.",
    )
    .mutability(ReadOnly),
];
const SPC_ATTRS: &[Attribute] = &[
    attr("documentationUri", Reference, "An HTTP-addressable URL pointing to the service provider's human-consumable help documentation.")
        .mutability(ReadOnly)
        .refs(&["external"]),
    supported("patch", "A complex type that specifies PATCH configuration options.", SUPPORTED),
    supported("bulk", "A complex type that specifies bulk configuration options.", BULK),
    supported("filter", "A complex type that specifies FILTER options.", FILTER),
    supported("changePassword", "A complex type that specifies configuration options related to changing a password.", SUPPORTED),
    supported("sort", "A complex type that specifies sort result options.", SUPPORTED),
    supported("etag", "A complex type that specifies ETag configuration options.", SUPPORTED),
    complex("authenticationSchemes", "A complex type that specifies supported authentication scheme properties.", AUTH)
        .multi()
        .required()
        .mutability(ReadOnly),
];

const EXTENSION_SUBS: &[Attribute] = &[
    attr("schema", Reference, "The URI of an extended schema.")
        .required()
        .exact()
        .mutability(ReadOnly)
        .refs(&["uri"]),
    attr(
        "required",
        Boolean,
        "Whether the schema extension is required for the resource type.",
    )
    .required()
    .mutability(ReadOnly),
];
const RESOURCE_TYPE_ATTRS: &[Attribute] = &[
    string("id", "The resource type's server unique id.").mutability(ReadOnly),
    string("name", "The resource type name.")
        .required()
        .mutability(ReadOnly),
    string(
        "description",
        "The resource type's human-readable description.",
    )
    .mutability(ReadOnly),
    attr(
        "endpoint",
        Reference,
        "The resource type's HTTP-addressable endpoint relative to the Base URL.",
    )
    .required()
    .mutability(ReadOnly)
    .refs(&["uri"]),
    attr(
        "schema",
        Reference,
        "The resource type's primary/base schema URI.",
    )
    .required()
    .exact()
    .mutability(ReadOnly)
    .refs(&["uri"]),
    complex(
        "schemaExtensions",
        "A list of URIs of the resource type's schema extensions.",
        EXTENSION_SUBS,
    )
    .multi()
    .mutability(ReadOnly),
];

const fn definition_subs() -> [Attribute; 11] {
    [
        string("name", "The attribute's name.")
            .required()
            .exact()
            .mutability(ReadOnly),
        string("type", "The attribute's data type.")
            .required()
            .mutability(ReadOnly)
            .canonical(&[
                "string",
                "complex",
                "boolean",
                "decimal",
                "integer",
                "dateTime",
                "reference",
                "binary",
            ]),
        attr(
            "multiValued",
            Boolean,
            "A Boolean value indicating an attribute's plurality.",
        )
        .required()
        .mutability(ReadOnly),
        string(
            "description",
            "A human-readable description of the attribute.",
        )
        .mutability(ReadOnly),
        attr(
            "required",
            Boolean,
            "A boolean value indicating whether or not the attribute is required.",
        )
        .mutability(ReadOnly),
        string("canonicalValues", "A collection of canonical values.")
            .multi()
            .mutability(ReadOnly),
        attr(
            "caseExact",
            Boolean,
            "A Boolean value indicating whether or not a string attribute is case sensitive.",
        )
        .mutability(ReadOnly),
        string(
            "mutability",
            "Indicates whether or not an attribute is modifiable.",
        )
        .mutability(ReadOnly)
        .canonical(&["readOnly", "readWrite", "immutable", "writeOnly"]),
        string(
            "returned",
            "Indicates when an attribute is returned in a response.",
        )
        .mutability(ReadOnly)
        .canonical(&["always", "never", "default", "request"]),
        string("uniqueness", "Indicates how unique a value must be.")
            .mutability(ReadOnly)
            .canonical(&["none", "server", "global"]),
        string(
            "referenceTypes",
            "Used only with an attribute of type 'reference'.",
        )
        .multi()
        .mutability(ReadOnly),
    ]
}

const INNER_DEFINITION: [Attribute; 11] = definition_subs();
const OUTER_DEFINITION: [Attribute; 12] = {
    let s = definition_subs();
    [
        s[0],
        s[1],
        s[2],
        s[3],
        s[4],
        s[5],
        s[6],
        s[7],
        s[8],
        s[9],
        s[10],
        complex(
            "subAttributes",
            "Used to define the sub-attributes of a complex attribute.",
            &INNER_DEFINITION,
        )
        .multi()
        .mutability(ReadOnly),
    ]
};
const SCHEMA_ATTRS: &[Attribute] = &[
    string("id", "The unique URI of the schema.")
        .required()
        .exact()
        .mutability(ReadOnly),
    string("name", "The schema's human-readable name.").mutability(ReadOnly),
    string("description", "The schema's human-readable description.").mutability(ReadOnly),
    complex(
        "attributes",
        "A complex attribute that includes the attributes of a schema.",
        &OUTER_DEFINITION,
    )
    .multi()
    .required()
    .mutability(ReadOnly),
];

static SCHEMA_DEF: SchemaDef = SchemaDef {
    id: SCHEMA_SCHEMA,
    name: "Schema",
    description: "Specifies the schema attribute definitions",
    attributes: SCHEMA_ATTRS,
};
static RESOURCE_TYPE_DEF: SchemaDef = SchemaDef {
    id: RESOURCE_TYPE_SCHEMA,
    name: "ResourceType",
    description: "Specifies the schema that describes a SCIM resource type",
    attributes: RESOURCE_TYPE_ATTRS,
};
static SPC_DEF: SchemaDef = SchemaDef {
    id: SPC_SCHEMA,
    name: "ServiceProviderConfig",
    description: "Schema for representing the service provider's configuration",
    attributes: SPC_ATTRS,
};

/// Every schema `/Schemas` publishes.
static ALL: [&SchemaDef; 6] = [
    &USER,
    &ENTERPRISE_USER,
    &GROUP,
    &SCHEMA_DEF,
    &RESOURCE_TYPE_DEF,
    &SPC_DEF,
];

fn render_attr(a: &Attribute) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), a.name.into());
    m.insert("type".into(), a.ty.as_str().into());
    m.insert("multiValued".into(), a.multi_valued.into());
    m.insert("description".into(), a.description.into());
    m.insert("required".into(), a.required.into());
    if !a.canonical_values.is_empty() {
        m.insert("canonicalValues".into(), json!(a.canonical_values));
    }
    m.insert("caseExact".into(), a.case_exact.into());
    m.insert("mutability".into(), a.mutability.as_str().into());
    m.insert("returned".into(), a.returned.as_str().into());
    m.insert("uniqueness".into(), a.uniqueness.as_str().into());
    if a.ty == AttrType::Reference {
        m.insert("referenceTypes".into(), json!(a.reference_types));
    }
    if a.ty == AttrType::Complex {
        let subs: Vec<Value> = a.sub_attributes.iter().map(render_attr).collect();
        m.insert("subAttributes".into(), Value::Array(subs));
    }
    Value::Object(m)
}

fn render_schema(base: &str, s: &SchemaDef) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "attributes": s.attributes.iter().map(render_attr).collect::<Vec<_>>(),
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{}", s.id)},
    })
}

/// The ServiceProviderConfig document (RFC 7643 §5): PATCH, filters (at most [`MAX_RESULTS`] per
/// page) and ETags supported; bulk, sort and password change not; a bearer token authenticates.
/// `base` is the absolute base URL of `/scim/v2`.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token issued to the provisioning client.",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

/// The Schemas list: a ListResponse of the User, enterprise User, Group, Schema, ResourceType and
/// ServiceProviderConfig schemas.
pub fn schemas(base: &str) -> Value {
    let all: Vec<Value> = ALL.iter().map(|s| render_schema(base, s)).collect();
    let n = all.len();
    list_response(all, n, 1)
}

/// One schema by its id (the URN, compared case-insensitively); `None` for an unknown one.
pub fn schema(base: &str, id: &str) -> Option<Value> {
    ALL.iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
        .map(|s| render_schema(base, s))
}

fn render_type(base: &str, kind: ResourceKind) -> Value {
    let ext: Vec<Value> = kind
        .extensions()
        .iter()
        .map(|u| json!({"schema": u, "required": false}))
        .collect();
    let description = match kind {
        ResourceKind::User => "User Account",
        ResourceKind::Group => "Group",
    };
    let mut v = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": kind.name(),
        "name": kind.name(),
        "description": description,
        "endpoint": format!("/{}", kind.endpoint()),
        "schema": kind.schema(),
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", kind.name())},
    });
    if let (false, Some(o)) = (ext.is_empty(), v.as_object_mut()) {
        o.insert("schemaExtensions".into(), Value::Array(ext));
    }
    v
}

/// The ResourceTypes list: User (with the enterprise extension, not required) and Group.
pub fn resource_types(base: &str) -> Value {
    let all = vec![
        render_type(base, ResourceKind::User),
        render_type(base, ResourceKind::Group),
    ];
    list_response(all, 2, 1)
}

/// One resource type by its name (`User` or `Group`, case-insensitively); `None` otherwise.
pub fn resource_type(base: &str, name: &str) -> Option<Value> {
    [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(name))
        .map(|k| render_type(base, k))
}

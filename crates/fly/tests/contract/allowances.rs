//! Where the vendored documents are wrong or silent, one narrow allowance each, with the reason.
//! `crates/fly-sim/openapi/SOURCES.md` lists the same, in the same words.

use fly_sim::contract::{Allowances, Mode, ReadOnly, Widen};
use serde_json::json;

const ANSWERS: &[Mode] = &[Mode::Response, Mode::Typed];
const REQUESTS: &[Mode] = &[Mode::Request];

/// A `null` accepted at `pointer` of `schema` in answers.
fn null_in_answers(schema: &'static str, pointer: &'static str, why: &'static str) -> Widen {
    Widen {
        schema,
        pointer,
        also: json!({"type": "null"}),
        modes: ANSWERS,
        why,
    }
}

/// Fly's Go types declare these without `omitempty`, so a nil value is encoded as `null`; the
/// document marks nothing nullable.
const GO_NIL: &str = "fly-go declares it without omitempty: a nil value is sent as null";

/// Exceptions to Fly's Machines API document.
pub fn fly() -> Allowances {
    let widen = vec![
        null_in_answers("listIPAssignmentsResponse", "/properties/ips", GO_NIL),
        null_in_answers("AppSecrets", "/properties/secrets", GO_NIL),
        null_in_answers("AppSecretsUpdateResp", "/properties/secrets", GO_NIL),
        null_in_answers("OrgMachinesResponse", "/properties/machines", GO_NIL),
        null_in_answers("DNSRequirements", "/properties/a", GO_NIL),
        null_in_answers("DNSRequirements", "/properties/aaaa", GO_NIL),
        null_in_answers("Volume", "/properties/attached_machine_id", GO_NIL),
        null_in_answers("Volume", "/properties/attached_alloc_id", GO_NIL),
        Widen {
            schema: "fly.MachineService",
            pointer: "/properties/autostop",
            also: json!({"type": "boolean"}),
            modes: &[Mode::Request, Mode::Response, Mode::Typed],
            why: "the property's own description: it accepts a boolean (old format), and answers \
                  keep booleans for \"off\" and \"stop\" (so a config read back and sent again \
                  carries one)",
        },
        Widen {
            schema: "AppSecretsUpdateRequest",
            pointer: "/properties/values/additionalProperties",
            also: json!({"type": "null"}),
            modes: REQUESTS,
            why: "the request body's description: a null value unsets the secret",
        },
    ];
    Allowances {
        widen,
        read_only: Vec::new(),
    }
}

/// Exceptions to Cloudflare's DNS records document.
pub fn cloudflare() -> Allowances {
    Allowances {
        widen: Vec::new(),
        read_only: vec![ReadOnly {
            schema: "dns-records_base",
            property: "id",
            why: "listed as required in dns-records_dns-record, which is also the request body; \
                  a create cannot know it and an update carries it in the URL (cloudflare-go \
                  omits it)",
        }],
    }
}

/// Query parameters an operation takes that the document does not list, by `METHOD template`:
/// `force` on app deletion is on Fly's docs page ("stop Machines first, or pass force=true");
/// the document declares no parameters there.
pub fn undeclared_query(operation: &str) -> &'static [&'static str] {
    match operation {
        "DELETE /v1/apps/{app_name}" => &["force"],
        _ => &[],
    }
}

/// The answer schema of Cloudflare's record deletion, which the document gives as `{result:
/// {id}}` alone: the answer also carries the common envelope (`success`, `errors`,
/// `messages`), as every other answer of the API and cloudflare-go's decoder do.
pub fn cloudflare_delete_answer(operation: &str) -> Option<serde_json::Value> {
    (operation == "DELETE /zones/{zone_id}/dns_records/{dns_record_id}").then(|| {
        json!({"allOf": [
            {"$ref": "#/components/schemas/dns-records_api-response-common"},
            {"properties": {"result": {"properties": {"id": {"$ref": "#/components/schemas/dns-records_identifier"}}}}},
        ]})
    })
}

/// Whether a lease answer may be the envelope instead of the declared `Lease`: Fly's docs and
/// fly-go's `MachineLease` show `{"status","data"}`, the document a bare `Lease`.
pub fn lease_envelope(template: &str) -> bool {
    template.ends_with("/lease")
}

/// Fly's lease errors come in `{"status":"error","message","code"}` (fly-go's `MachineLease`
/// reads `message` and `code`), not in `ErrorResponse`.
pub fn lease_error_keys() -> &'static [&'static str] {
    &["status", "message", "code"]
}

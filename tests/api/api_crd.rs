//! The checked-in CRD must equal what the code generates from the resource types.

use openclaws_model::crd::{crd, crd_yaml};

const PATH: &str = "crds/openclawinstances.openclaws.biz.yaml";

#[test]
fn checked_in_crd_matches_generated() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PATH);
    let generated = crd_yaml();
    if std::env::var_os("UPDATE_CRD").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{PATH} is out of date with the resource types; regenerate it with\n    \
         cargo run -- crd > {PATH}\n(or `UPDATE_CRD=1 cargo test --test api_crd`)"
    );
}

#[test]
fn crd_names_and_versions() {
    let crd = crd();
    assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(crd["metadata"]["name"], "openclawinstances.openclaws.biz");
    assert_eq!(crd["spec"]["group"], "openclaws.biz");
    assert_eq!(crd["spec"]["names"]["kind"], "OpenClawInstance");
    assert_eq!(crd["spec"]["names"]["plural"], "openclawinstances");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["served"], true);
    assert_eq!(version["storage"], true);
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<_> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Phase", "Ready", "Age"]);
    let schema = &version["schema"]["openAPIV3Schema"];
    let spec = &schema["properties"]["spec"];
    assert_eq!(
        spec["required"],
        serde_json::json!(["customerId", "region"])
    );
    assert_eq!(
        spec["properties"]["guest"]["properties"]["memoryMb"]["default"],
        2048
    );
    let entity = &spec["properties"]["composio"]["properties"]["entityId"];
    assert_eq!(entity["nullable"], true);
    assert_eq!(entity["type"], "string");
    assert!(!schema.to_string().contains("$ref"));
}

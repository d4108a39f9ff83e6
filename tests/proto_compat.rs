//! What the proto contract promises that buf cannot see.
//!
//! buf (`.ci/buf.sh`, configured by `buf.yaml`) lints the proto and checks it for breaking
//! changes against the last released descriptor, `proto/compat/gateway.v1.baseline.binpb`.
//! It cannot know that `OrgRole`'s values, exempt from buf's ENUM_VALUE_PREFIX rule on
//! purpose, are Atlas's own role names: that is checked here, end to end, by having the
//! (spec-following) Atlas emulator accept every value through the real gateway.
mod common;

use atlas_grpc_gateway::pb::FILE_DESCRIPTOR_SET;
use common::*;
use prost::Message;
use prost_types::FileDescriptorSet;

/// `(number, name)` of every `atlas.gateway.v1.OrgRole` value, as compiled into the crate.
fn org_role_values() -> Vec<(i32, String)> {
    let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor decodes");
    let file = set
        .file
        .iter()
        .find(|f| f.package() == "atlas.gateway.v1")
        .expect("the gateway file");
    let role = file
        .enum_type
        .iter()
        .find(|e| e.name() == "OrgRole")
        .expect("enum OrgRole");
    role.value
        .iter()
        .map(|v| (v.number(), v.name().to_string()))
        .collect()
}

#[tokio::test]
async fn org_role_values_are_role_names_atlas_accepts() {
    let values = org_role_values();
    assert_eq!(values[0], (0, "ORG_ROLE_UNSPECIFIED".to_string()));
    let roles = &values[1..];
    assert!(roles.len() >= 7, "{roles:?}");

    let gw = Gateway::start().await;
    let mut req = key_req(DEMO_ORG_ID);
    req.roles = roles.iter().map(|(n, _)| *n).collect();
    let key = gw
        .client()
        .create_api_key(req)
        .await
        .expect("Atlas accepts every OrgRole value")
        .into_inner()
        .api_key
        .unwrap();
    let sent: Vec<&str> = roles.iter().map(|(_, name)| name.as_str()).collect();
    let granted: Vec<&str> = key.roles.iter().map(|r| r.role_name.as_str()).collect();
    assert_eq!(
        granted, sent,
        "Atlas granted the roles as the proto spells them"
    );
    gw.stop().await;
}

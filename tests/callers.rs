//! Callers bound to profiles, at the gRPC boundary: a caller that names a profile
//! outside its list (`x-atlas-profile`) is refused with POLICY_DENIED before any Atlas
//! call, whether it proved itself with a bearer token or an mTLS certificate (SPIFFE
//! URI SAN); a call without the header uses the caller's own default profile.
mod common;

use atlas_grpc_gateway::{
    callers::Caller,
    config::{Config, TlsConfig},
    pb::atlas_gateway_client::AtlasGatewayClient,
    secret::Secret,
};
use common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use tonic::{
    transport::{Certificate, ClientTlsConfig, Endpoint, Identity},
    Code,
};

const BILLING_SPIFFE: &str = "spiffe://example.org/ns/billing/sa/billing-app";

/// Adds a `billing` profile (the default profile's credentials under another name).
fn with_billing_profile(c: &mut Config) {
    let mut billing = c.profiles["default"].clone();
    billing.name = "billing".into();
    c.profiles.insert("billing".into(), billing);
}

fn caller(name: &str, token: Option<&str>, mtls: Option<&str>, profiles: &[&str]) -> Caller {
    Caller {
        name: name.into(),
        token: token.map(Secret::new),
        mtls_identity: mtls.map(String::from),
        profiles: Some(profiles.iter().map(|p| p.to_string()).collect()),
        default_profile: Some(profiles[0].into()),
        flat: false,
    }
}

/// The profile bypass of issue 21: `billing-app` may use `billing` only.
fn assert_policy_denied(err: &tonic::Status, caller: &str) {
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(reason(err), "POLICY_DENIED");
    assert_eq!(meta(err, "field").as_deref(), Some("x-atlas-profile"));
    assert_eq!(meta(err, "caller").as_deref(), Some(caller));
}

#[tokio::test]
async fn a_token_caller_cannot_name_a_profile_outside_its_list() {
    let gw = Gateway::start_with(Default::default(), |c| {
        with_billing_profile(c);
        c.callers = vec![
            caller("billing-app", Some("tok-billing"), None, &["billing"]),
            caller("ops-app", Some("tok-ops"), None, &["default", "billing"]),
        ];
    })
    .await;
    let bearer = |t: &str| format!("Bearer {t}");
    let (billing, ops) = (bearer("tok-billing"), bearer("tok-ops"));
    let bypass = with_meta(
        key_req(DEMO_ORG_ID),
        &[("authorization", &billing), ("x-atlas-profile", "default")],
        None,
    );
    let err = gw.client().create_api_key(bypass).await.unwrap_err();
    assert_policy_denied(&err, "billing-app");
    assert_eq!(
        gw.emulator.counters().total_requests(),
        0,
        "Atlas never called"
    );

    // Without the header the caller's own default profile is used.
    let own = with_meta(key_req(DEMO_ORG_ID), &[("authorization", &billing)], None);
    gw.client().create_api_key(own).await.unwrap();
    let other = with_meta(
        key_req(DEMO_ORG_ID),
        &[("authorization", &ops), ("x-atlas-profile", "billing")],
        None,
    );
    gw.client().create_api_key(other).await.unwrap();
    assert_eq!(gw.emulator.counters().api_keys_created, 2);
    gw.stop().await;
}

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    /// (certificate, key) with the billing SPIFFE ID as URI SAN.
    billing: (String, String),
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |params: CertificateParams| {
        let key = KeyPair::generate().unwrap();
        (
            params.signed_by(&key, &ca).unwrap().pem(),
            key.serialize_pem(),
        )
    };
    let server = leaf(CertificateParams::new(vec!["localhost".into()]).unwrap());
    let mut billing = CertificateParams::new(Vec::<String>::new()).unwrap();
    billing
        .subject_alt_names
        .push(SanType::URI(BILLING_SPIFFE.try_into().unwrap()));
    let billing = leaf(billing);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.pem"), &server.0).unwrap();
    std::fs::write(dir.path().join("server.key"), &server.1).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    Pki {
        dir,
        ca_pem: ca.pem(),
        billing,
    }
}

#[tokio::test]
async fn an_mtls_caller_named_by_its_spiffe_id_cannot_name_another_profile() {
    let pki = pki();
    let dir = pki.dir.path().to_path_buf();
    let gw = Gateway::start_with(Default::default(), |c| {
        with_billing_profile(c);
        c.tls = Some(TlsConfig {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_ca: Some(dir.join("ca.pem")),
        });
        c.callers = vec![caller(
            "billing-app",
            None,
            Some(BILLING_SPIFFE),
            &["billing"],
        )];
    })
    .await;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost")
        .identity(Identity::from_pem(&pki.billing.0, &pki.billing.1));
    let channel = Endpoint::from_shared(format!("https://{}", gw.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    let mut client = AtlasGatewayClient::new(channel);
    let bypass = with_meta(
        key_req(DEMO_ORG_ID),
        &[("x-atlas-profile", "default")],
        None,
    );
    let err = client.create_api_key(bypass).await.unwrap_err();
    assert_policy_denied(&err, "billing-app");
    assert_eq!(
        gw.emulator.counters().total_requests(),
        0,
        "Atlas never called"
    );
    client.create_api_key(key_req(DEMO_ORG_ID)).await.unwrap();
    assert_eq!(gw.emulator.counters().api_keys_created, 1);
    gw.stop().await;
}

//! Token hygiene without a shared store (RFC 7009): a gateway that stops gracefully
//! revokes the tokens it minted, and a refresh ahead revokes the token it replaced once
//! no call uses it. (With a store the fleet's token is never revoked: `tests/fleet.rs`.)
mod common;

use std::time::Duration;

use atlas_grpc_gateway::emulator::{Emulator, EmulatorConfig};
use common::*;

#[tokio::test]
async fn a_graceful_stop_revokes_the_minted_token() {
    let emu = Emulator::start(EmulatorConfig::default(), loopback())
        .await
        .unwrap();
    let gw = Replica::start(&emu, |_| {}).await;
    gw.client()
        .create_link_token(link_req(DEMO_ORG_ID))
        .await
        .unwrap();
    assert_eq!(emu.active_tokens(), 1);
    gw.stop().await;
    let c = emu.counters();
    assert_eq!((c.revoke_requests, c.tokens_revoked), (1, 1));
    assert_eq!(emu.active_tokens(), 0);
}

#[tokio::test]
async fn a_refresh_ahead_revokes_the_replaced_token() {
    let emu = Emulator::start(
        EmulatorConfig {
            token_lifetime: Duration::from_secs(4),
            ..EmulatorConfig::default()
        },
        loopback(),
    )
    .await
    .unwrap();
    let gw = Replica::start(&emu, |_| {}).await;
    let mut c = gw.client();
    c.create_link_token(link_req(DEMO_ORG_ID)).await.unwrap();
    // A 4 s token is refreshed ahead about 2 s in; calls keep coming meanwhile.
    eventually("the token is refreshed ahead", || {
        let mut c = c.clone();
        let emu = &emu;
        async move {
            c.create_link_token(link_req(DEMO_ORG_ID)).await.unwrap();
            emu.counters().tokens_issued == 2
        }
    })
    .await;
    eventually("the replaced token is revoked", || {
        std::future::ready(emu.counters().tokens_revoked == 1)
    })
    .await;
    assert_eq!(emu.active_tokens(), 1, "only the new token is live");
    c.create_link_token(link_req(DEMO_ORG_ID)).await.unwrap();
}

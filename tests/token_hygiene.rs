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

/// Revocation at stop is final: a call still running after the grace ends `UNAVAILABLE`
/// `SHUTTING_DOWN`, and the 401 its revoked token would meet fetches no new token.
#[tokio::test]
async fn a_call_still_running_after_the_grace_ends_shutting_down_and_fetches_no_token() {
    let emu = Emulator::start(EmulatorConfig::default(), loopback())
        .await
        .unwrap();
    let gw = Replica::start(&emu, |_| {}).await; // grace: 1 s
    let mut c = gw.client();
    c.create_link_token(link_req(DEMO_ORG_ID)).await.unwrap();
    // Atlas holds the next creation past the grace, then checks its (revoked) token.
    emu.inject(Fault::once(
        Route::CreateLinkToken,
        FaultAction::Latency { millis: 10_000 },
    ));
    let in_flight = tokio::spawn(async move { c.create_link_token(link_req(DEMO_ORG_ID)).await });
    eventually("the slow creation reaches Atlas", || {
        let seen = emu.counters().requests.get(LINK_TOKENS_POST).copied();
        std::future::ready(seen == Some(2))
    })
    .await;
    gw.stop().await;
    let status = in_flight.await.unwrap().unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "SHUTTING_DOWN");
    eventually("Atlas is done with the slow creation", || {
        let c = emu.counters();
        std::future::ready(c.abandoned + c.unauthorized >= 1)
    })
    .await;
    let c = emu.counters();
    assert_eq!(
        (c.token_requests, c.tokens_issued, c.tokens_revoked),
        (1, 1, 1),
        "no token fetched after the revoke"
    );
    assert_eq!(emu.active_tokens(), 0);
}

/// A refresh ahead still waiting on the token endpoint when the stop revokes: the token
/// it brings back is revoked too, and the stop waits for it.
#[tokio::test]
async fn a_refresh_finishing_after_the_revoke_leaves_no_live_token() {
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
    // The refresh ahead (about 2 s in) waits 5 s at the token endpoint.
    emu.inject(Fault::once(
        Route::Token,
        FaultAction::Latency { millis: 5_000 },
    ));
    eventually("a refresh ahead is on its way", || {
        let mut c = c.clone();
        let emu = &emu;
        async move {
            c.create_link_token(link_req(DEMO_ORG_ID)).await.unwrap();
            emu.counters().token_requests == 2
        }
    })
    .await;
    gw.stop().await;
    let c = emu.counters();
    assert_eq!(c.tokens_issued, 2, "the stop waited for the refresh: {c:?}");
    // The refreshed token is revoked (the first one too, unless it expired meanwhile).
    assert_eq!(emu.active_tokens(), 0, "{c:?}");
}

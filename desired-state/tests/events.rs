//! Events group by type, reason and message; an AWS request id in the message
//! does not make a repeat a new event.

mod common;

use api_types::{EventType, Kind};
use common::{relay, start};
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn repeats_with_new_request_ids_are_one_event(pool: PgPool) {
    let api = start(pool).await;
    api.post_json("/v1/namespaces/default/relays", &relay("gw", "default", "nginx:1")).await;
    let gw = api.store.get(Kind::Relay, "default", "gw").await.expect("the relay");
    for id in ["5f2c-11aa", "77e0-93bc", "0d41-2f6e"] {
        let message = format!("InvalidSubnetID.NotFound: subnet-0a1b2c3d does not exist (request id {id})");
        api.store.record_event(&gw, EventType::Warning, "InvalidReference", &message).await.expect("record");
    }
    api.store.record_event(&gw, EventType::Warning, "InvalidReference", "another message").await.expect("record");
    let events = api.store.events(Kind::Relay, "default", "gw", 100).await.expect("events");
    let subnet: Vec<_> = events.iter().filter(|e| e.message.contains("subnet-0a1b2c3d")).collect();
    assert_eq!(subnet.len(), 1, "{events:#?}");
    assert_eq!(subnet[0].count, 3);
    assert_eq!(subnet[0].message, "InvalidSubnetID.NotFound: subnet-0a1b2c3d does not exist");
    assert!(events.iter().any(|e| e.message == "another message" && e.count == 1), "{events:#?}");
}

//! What the moto tests share: where moto is, a fast failure when it is not
//! there, and an SDK interceptor that captures request bodies on the wire
//! (to pin what Mooring sends where moto drops it).

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use runners::aws::AwsSettings;
use serde_json::Value;

/// moto at `MOORING_AWS_ENDPOINT` (default `http://127.0.0.1:4566`), us-east-1.
pub fn settings() -> AwsSettings {
    let endpoint = std::env::var("MOORING_AWS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".to_string());
    AwsSettings { endpoint: Some(endpoint), region: Some("us-east-1".into()) }
}

/// Fails at once, with the fix, when moto is not listening (rather than after
/// the SDK's retries).
pub fn require_moto(settings: &AwsSettings) {
    let endpoint = settings.endpoint.clone().unwrap_or_default();
    let authority = endpoint.trim_start_matches("http://").trim_start_matches("https://");
    let authority = authority.split('/').next().unwrap_or_default();
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    assert!(reachable, "moto is not listening at {endpoint}: run `eval \"$(deploy/local/stack.sh up)\"`");
}

/// Records the JSON body of every request whose `X-Amz-Target` ends with `operation`.
#[derive(Debug, Clone)]
pub struct Capture {
    pub operation: &'static str,
    pub bodies: Arc<Mutex<Vec<Value>>>,
}

impl Capture {
    pub fn new(operation: &'static str) -> Capture {
        Capture { operation, bodies: Arc::default() }
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

impl Intercept for Capture {
    fn name(&self) -> &'static str {
        "capture"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = ctx.request();
        if request.headers().get("x-amz-target").unwrap_or_default().ends_with(self.operation)
            && let Some(bytes) = request.body().bytes()
        {
            self.bodies.lock().unwrap().push(serde_json::from_slice(bytes)?);
        }
        Ok(())
    }
}

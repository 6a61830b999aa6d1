//! # yws-gateway
//!
//! Terminates y-websocket connections. Standalone it is a drop-in for `npx y-websocket-server`;
//! with Redis it shares rooms with every other gateway.
//!
//! ## Layout
//! - [`config`]: [`GatewayConfig`](config::GatewayConfig), loaded once (defaults < file <
//!   reference env names < `YWS__` env).
//! - [`gateway`]: [`Gateway`](gateway::Gateway), the node — accept loop, HTTP on the same port as
//!   WebSockets (hyper 1.x upgrades), the shutdown sequence.
//! - [`routes`]: HTTP routing: upgrades, `/healthz`, `/readyz`, `/metrics`, the pages of
//!   `yws-web` (`/`, `/demo`, `/assets/…`), 404/426.
//! - [`upgrade`]: the WebSocket upgrade: room name, limits and room load before the 101.
//! - [`session`]: one connection's loop (generic over `Sink + Stream`).
//! - [`api`]: the document HTTP API (`/api/rooms/…`).
//! - [`callback`]: the reference server's debounced HTTP callback, cluster-deduplicated.
//! - [`metrics`]: the gateway's Prometheus metrics.

pub mod api;
pub mod callback;
pub mod config;
pub mod gateway;
pub mod metrics;
pub mod routes;
pub mod session;
pub mod upgrade;

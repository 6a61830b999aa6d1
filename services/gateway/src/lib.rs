//! # yws-gateway
//!
//! Terminates y-websocket connections. Standalone it is a drop-in for `npx y-websocket-server`;
//! with Redis it shares rooms with every other gateway.
//!
//! ## Layout
//! - [`config`]: [`GatewayConfig`](config::GatewayConfig), loaded once (defaults < file <
//!   reference env names < `YWS__` env), including the callback's section.
//! - [`state`]: [`Gateway`](state::Gateway), the node's shared state — data only — and the
//!   [`Connections`](state::Connections) every WebSocket task shares.
//! - [`server`]: the accept loop (HTTP and WebSocket upgrades on one port, hyper 1.x), the
//!   background loops, the shutdown sequence.
//! - [`routes`]: HTTP routing: upgrades, `/healthz`, `/readyz`, `/metrics`, the API, the pages
//!   of `yws-web` (`/`, `/demo`, `/assets/…`), 404/426.
//! - [`upgrade`]: the WebSocket upgrade: room name, limits and room load before the 101.
//! - [`api`]: the document HTTP API (`/api/rooms/…`).
//! - [`admin`]: the admin console's API (`/admin/api/…`): cluster, rooms, one room live
//!   (Server-Sent Events), actions; on the main and the metrics port.
//! - [`authorize`]: the authorizer's verdict for upgrades and API requests alike, and how a
//!   refused request is answered.
//! - [`session`]: one connection's loop (generic over `Sink + Stream`).
//! - [`callback`]: the reference server's debounced HTTP callback, cluster-deduplicated; it
//!   reads the rooms registry only.
//! - [`per_ip`]: the optional limit on concurrent connections per client address.
//! - [`stall`]: the write deadline of connections that speak HTTP (slow readers).
//! - [`metrics`]: the gateway's Prometheus metrics.
//!
//! Modules depend on each other one way only (`a → b`: `a` uses `b`):
//!
//! ```text
//! server    → routes, state, per_ip, stall
//! routes    → upgrade, api, admin, state
//! admin     → authorize, state
//! upgrade   → authorize, session, state, per_ip
//! api       → authorize, state
//! state     → callback, session, metrics, config
//! authorize → metrics
//! session   → metrics
//! callback  → config
//! metrics, config, per_ip, stall: no module of this crate
//! ```

pub mod admin;
pub mod api;
pub mod authorize;
pub mod callback;
pub mod config;
pub mod metrics;
pub mod per_ip;
pub mod routes;
pub mod server;
pub mod session;
pub mod stall;
pub mod state;
pub mod upgrade;

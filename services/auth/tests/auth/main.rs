//! Integration tests for `yws-auth`: the public API only, real keys (test fixtures), a real
//! hyper webhook server on 127.0.0.1:0.
#![allow(
    clippy::expect_used,
    clippy::disallowed_methods,
    reason = "a panic with a message is a test failure (support functions are not #[test]s); tests may spawn: each test owns and awaits what it starts, and the runtime ends with it"
)]

mod config;
mod jwt;
mod operations;
mod origin;
mod support;
mod webhook;

//! Integration tests for `yws-auth`: the public API only, real keys (test fixtures), a real
//! hyper webhook server on 127.0.0.1:0.

mod config;
mod jwt;
mod origin;
mod support;
mod webhook;

//! Helpers for tests (this crate's unit tests, and the integration tests
//! through the `testing` feature): real outside parts the tests start
//! themselves. Never used by the server.

pub mod postgres;

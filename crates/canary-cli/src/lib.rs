//! The library behind the `canary` command: running the real state machine locally
//! (the handlers in-process, any cluster), the demo's scenarios, and the operations a
//! person runs from a terminal. The binary (`main.rs`) only parses arguments.

pub mod demo;
pub mod faults;
pub mod lambda_proxy;
pub mod local;
pub mod progress;
pub mod run;

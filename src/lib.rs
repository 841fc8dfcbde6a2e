//! suoops-policy: a declarative desired-state reconciler for backup
//! infrastructure. Data flows one way: policy file → Policy → observe → diff
//! → Plan → render / apply → Report. See ARCHITECTURE.md.

#[cfg(test)]
mod architecture;
pub mod audit;
pub mod aws;
pub mod cli;
pub mod engine;
pub mod iamdoc;
pub mod import;
pub mod jobs;
pub mod model;
pub mod notify;
pub mod permissions;
pub mod policy;
pub mod providers;
pub mod render;
pub mod saved_plan;
pub mod tls;

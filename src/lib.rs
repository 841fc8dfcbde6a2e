//! suoops-policy: a declarative desired-state reconciler for backup
//! infrastructure. Data flows one way: policy file → Policy → observe → diff
//! → Plan → render / apply → Report. See ARCHITECTURE.md.

pub mod audit;
pub mod aws;
pub mod cli;
pub mod engine;
pub mod iamdoc;
pub mod import;
pub mod model;
pub mod notify;
pub mod policy;
pub mod providers;
pub mod render;
pub mod saved_plan;

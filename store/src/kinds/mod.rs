//! One file per object kind: which indexes it keeps and where its name and
//! labels live. Everything else about a kind is shared (see `table.rs`).

mod clusters;
mod configs;
mod nodes;
mod secrets;
mod services;
mod tasks;

//! The load-test harness as a library: crowds and bots under an open-model schedule
//! ([`traffic`], [`scenario`], [`engine`], [`burst`]), what each order got
//! ([`outcome`]) and what shoppers do with a reservation ([`settle`]), their measurement and reports ([`measure`],
//! [`report`] and its [`report::charts`]), the benchmark's building blocks ([`bench`], [`wire`]), and the
//! audit that joins every answer with PostgreSQL and Redis ([`audit`]).
//!
//! It sends with the shoppers' signing client (`flashsale_client`), the one the services'
//! integration tests use, so tests and load runs exercise one code path; [`clients`]
//! adds what the crowd and the bots need beyond it.
#![forbid(unsafe_code)]

pub mod audit;
pub mod bench;
pub mod burst;
pub mod census;
pub mod clients;
pub mod engine;
pub mod measure;
pub mod outcome;
pub mod report;
pub mod room;
pub mod scenario;
pub mod settle;
pub mod traffic;
pub mod wire;

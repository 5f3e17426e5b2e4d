//! `loadtest`: drive a running flash-sale stack and audit the outcome. Each subcommand is
//! a module of [`commands`].
#![forbid(unsafe_code)]

/// mimalloc, as in the API: the generator allocates a few small buffers per request, and
/// its CPU per request is part of what the benchmark measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use commands::{audit, bench, burst, room, run, shop, stream};

/// Load generator and auditor for the flash-sale pipeline.
#[derive(Parser)]
#[command(name = "loadtest", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send a burst of orders for one product as fast as N connections allow, then wait
    /// for the pipeline to drain and audit every 202 against PostgreSQL and Redis.
    Burst(burst::BurstArgs),
    /// Send a steady, open-model stream of shoppers (each retries with its key when the
    /// outcome is unknown) and write every order's outcome as JSON lines.
    Stream(stream::StreamArgs),
    /// Wait for the pipeline to drain, then audit the outcomes a `stream` wrote.
    Audit(audit::AuditArgs),
    /// Run a scenario file: open its sale, send the crowd and the bots (open model),
    /// audit, and write a report (Markdown, JSON, PNG charts) to the results folder.
    Run(run::RunArgs),
    /// Run a waiting-room scenario: its sale and room, tens of thousands of waiters who
    /// poll, leave and claim, bots with tokens they should not be able to use; check the
    /// room's promises and write a report with charts.
    Room(room::RoomArgs),
    /// Serve the reference shop of a sale with a waiting room: the shopper's page, and its
    /// calls signed and forwarded to ingest-api as a shop's backend would.
    Shop(shop::ShopArgs),
    /// Benchmark: closed loop, N connections back to back; prints one JSON line.
    Saturate(bench::SaturateArgs),
    /// Benchmark: waiters join a room, then N connections poll back to back; prints one
    /// JSON line.
    SaturatePolls(bench::SaturatePollsArgs),
    /// Benchmark: open model at each given rate; prints one JSON line per rate.
    Sweep(bench::SweepArgs),
    /// Benchmark: serve bare actix-web handlers (the HTTP ceilings) until killed.
    BareServer(bench::BareServerArgs),
    /// Benchmark: write N orders for a product to a topic.
    FillTopic(bench::FillTopicArgs),
    /// Benchmark: the broker's ceiling for the accept path: order events published with
    /// the API's producer settings, many in flight; prints one JSON line.
    KafkaCeiling(bench::KafkaCeilingArgs),
    /// Benchmark: the arguments of one `lua/admit.lua` call as the API makes it (numkeys,
    /// KEYS, ARGV; one per line), for `redis-benchmark EVALSHA`.
    AdmitCall(bench::AdmitCallArgs),
    /// Benchmark: where the shards of a sharded sale go on the Redis Cluster (one line per
    /// shard: `<index>.<salt> <sale key>`).
    ShardPlace(bench::ShardPlaceArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Burst(args) => burst::run(args).await,
        Command::Stream(args) => stream::run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Run(args) => run::run(args).await,
        Command::Room(args) => room::run(args).await,
        Command::Shop(args) => shop::run(args).await,
        Command::Saturate(args) => bench::saturate(args).await,
        Command::SaturatePolls(args) => bench::saturate_polls(args).await,
        Command::Sweep(args) => bench::sweep(args).await,
        Command::BareServer(args) => bench::bare_server(args).await,
        Command::FillTopic(args) => bench::fill_topic(args).await,
        Command::KafkaCeiling(args) => bench::kafka_ceiling(args).await,
        Command::AdmitCall(args) => bench::admit_call(args),
        Command::ShardPlace(args) => bench::shard_place(args).await,
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}

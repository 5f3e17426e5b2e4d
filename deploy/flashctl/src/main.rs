//! `flashctl`: see `flashctl --help` and the runbook in `deploy/ops/RUNBOOK.md`.
//!
//! This file parses the command line and hands the command to [`execute`]; each command
//! (its arguments, what it does and prints, its audit-trail entry) is in `commands/`,
//! the global flags and the list of commands in `cli.rs`.
#![forbid(unsafe_code)]

mod cli;
mod commands;

use clap::Parser;
use cli::{Cli, Command};
use commands::execute;
use commands::limits::LimitsCommand;
use commands::order::OrderCommand;
use commands::orders::OrdersCommand;
use commands::room::RoomCommand;
use commands::sale::SaleCommand;
use commands::topics::TopicsCommand;
use commands::user::UserCommand;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let ctx = cli.ctx().unwrap_or_else(|e| {
        eprintln!("flashctl: {e}");
        std::process::exit(2)
    });
    match &cli.command {
        Command::Sale(SaleCommand::Open(c)) => execute(c, &ctx).await,
        Command::Sale(SaleCommand::Status(c)) => execute(c, &ctx).await,
        Command::Sale(SaleCommand::Halt(c)) => execute(c, &ctx).await,
        Command::Sale(SaleCommand::Resume(c)) => execute(c, &ctx).await,
        Command::Sale(SaleCommand::Recover(c)) => execute(c, &ctx).await,
        Command::Limits(LimitsCommand::Get(c)) => execute(c, &ctx).await,
        Command::Limits(LimitsCommand::Set(c)) => execute(c, &ctx).await,
        Command::Block(c) => execute(c, &ctx).await,
        Command::Unblock(c) => execute(c, &ctx).await,
        Command::Violations(c) => execute(c, &ctx).await,
        Command::Orders(OrdersCommand::Suspicious(c)) => execute(c, &ctx).await,
        Command::Order(OrderCommand::Cancel(c)) => execute(c, &ctx).await,
        Command::Room(RoomCommand::Open(c)) => execute(c, &ctx).await,
        Command::Room(RoomCommand::Pause(c)) => execute(c, &ctx).await,
        Command::Room(RoomCommand::Resume(c)) => execute(c, &ctx).await,
        Command::Room(RoomCommand::Rate(c)) => execute(c, &ctx).await,
        Command::Room(RoomCommand::Message(c)) => execute(c, &ctx).await,
        Command::Room(RoomCommand::Close(c)) => execute(c, &ctx).await,
        Command::Room(RoomCommand::Status(c)) => execute(c, &ctx).await,
        Command::Room(RoomCommand::Verify(c)) => execute(c, &ctx).await,
        Command::Reconcile(c) => execute(c, &ctx).await,
        Command::User(UserCommand::Erase(c)) => execute(c, &ctx).await,
        Command::AuditLog(c) => execute(c, &ctx).await,
        Command::Migrate(c) => execute(c, &ctx).await,
        Command::Topics(TopicsCommand::Create(c)) => execute(c, &ctx).await,
    }
}

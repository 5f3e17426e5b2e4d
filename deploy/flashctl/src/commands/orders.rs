//! `flashctl orders suspicious`: users over the cap, devices and networks shared by many
//! users, and bursts from one device, from PostgreSQL.

use clap::{Args, Subcommand};
use flashctl::{OpsError, insight};
use shared::ProductId;

use super::{Ctx, Output, Run, duration};

/// `orders …`.
#[derive(Subcommand)]
pub enum OrdersCommand {
    /// Users over the cap, devices and networks shared by many users, bursts from one
    /// device (pseudonyms only: no raw address is stored).
    Suspicious(Suspicious),
}

/// `orders suspicious`.
#[derive(Args)]
pub struct Suspicious {
    /// The sale.
    #[arg(long)]
    pub product: ProductId,
    /// How far back, e.g. 1h, 30m.
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// A device or network is shared when at least this many users used it.
    #[arg(long, default_value_t = 3)]
    pub min_users: i64,
    /// A burst is at least this many orders from one device within a minute.
    #[arg(long, default_value_t = 5)]
    pub burst: i64,
}

impl Run for Suspicious {
    async fn run(&self, ctx: &Ctx) -> Result<Output, OpsError> {
        let Self {
            product,
            min_users,
            burst,
            ..
        } = self;
        let pg = ctx.postgres().await?;
        let since = duration("--since", &self.since)?;
        let s = insight::suspicious(&pg, product, since, *min_users, *burst).await?;
        let mut human = format!(
            "suspicious orders of {product} in the last {}:\n",
            humantime::format_duration(since)
        );
        section(&mut human, "users over the cap", &s.over_cap, |(u, n)| {
            format!("{u}  {n} units")
        });
        section(
            &mut human,
            &format!("devices shared by ≥ {min_users} users"),
            &s.shared_devices,
            |(d, users, orders)| format!("device {d}  {users} users, {orders} orders"),
        );
        section(
            &mut human,
            &format!("networks shared by ≥ {min_users} users"),
            &s.shared_networks,
            |(n, users, orders)| format!("network {n}  {users} users, {orders} orders"),
        );
        section(
            &mut human,
            &format!("devices with ≥ {burst} orders in a minute"),
            &s.device_bursts,
            |(d, minute, orders)| format!("device {d}  {orders} orders at {minute}"),
        );
        Ok(Output::new(&s, human.trim_end().to_owned()))
    }
}

/// Appends `title: count` and one indented line per row.
fn section<T>(out: &mut String, title: &str, rows: &[T], line: impl Fn(&T) -> String) {
    out.push_str(&format!("{title}: {}\n", rows.len()));
    for row in rows {
        out.push_str(&format!("  {}\n", line(row)));
    }
}

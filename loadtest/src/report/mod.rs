//! The report of a load run: Markdown for people, JSON for tools, PNG charts, and every
//! outcome as JSON lines, in one results folder. The charts are drawn by [`charts`], for
//! this report and the waiting room's.

pub mod charts;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::audit::{BotVerdict, Report};
use crate::measure::Summary;
use crate::outcome::Outcome;
use crate::scenario::Scenario;

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The scenario as run.
    pub scenario: Scenario,
    /// The product id the run opened.
    pub product: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// What was measured.
    pub summary: Summary,
    /// The audit against PostgreSQL and Redis.
    pub audit: Report,
    /// Each bot against its allowance.
    pub bots: Vec<BotVerdict>,
    /// A sharded sale's invariant, sampled every second during the run (no samples for
    /// an unsharded sale).
    pub census: crate::census::Samples,
    /// Audit, every bot and every census sample passed.
    pub passed: bool,
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

impl RunReport {
    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        self.heading(&mut md);
        self.latency_table(&mut md);
        self.answers_by_actor(&mut md);
        self.audit_table(&mut md);
        self.bots_table(&mut md);
        self.over_time(&mut md);
        md
    }

    fn heading(&self, md: &mut String) {
        let s = &self.summary;
        let _ = writeln!(md, "# Load run `{}`\n", self.scenario.name);
        let _ = writeln!(
            md,
            "Started {} against product `{}`: {} arrivals in {:.0} s ({:.0}/s offered), sale of {} units (per-user cap {}), {} users. Verdict: **{}**.\n",
            self.started_at,
            self.product,
            s.arrivals,
            s.duration_s,
            s.offered_per_s,
            self.scenario.sale.stock,
            self.scenario.sale.per_user,
            self.scenario.crowd.users,
            if self.passed { "PASS" } else { "FAIL" }
        );
        let _ = writeln!(
            md,
            "Latency is measured from each request's *scheduled* send time (open model, no coordinated omission), first attempt.\n"
        );
    }

    fn latency_table(&self, md: &mut String) {
        let s = &self.summary;
        let _ = writeln!(md, "## Latency by outcome (ms)\n");
        let _ = writeln!(md, "| outcome | count | p50 | p90 | p99 | p99.9 | max |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        let mut rows: Vec<_> = s.latency_by_code.iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1.count));
        for (code, l) in rows.into_iter().chain([(&"all".to_owned(), &s.latency)]) {
            let _ = writeln!(
                md,
                "| {code} | {} | {} | {} | {} | {} | {} |",
                l.count,
                ms(l.p50_ms),
                ms(l.p90_ms),
                ms(l.p99_ms),
                ms(l.p999_ms),
                ms(l.max_ms)
            );
        }
    }

    fn answers_by_actor(&self, md: &mut String) {
        let _ = writeln!(md, "\n## Answers by actor\n");
        for (actor, codes) in &self.summary.by_actor {
            let list = codes
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(md, "- **{actor}**: {list}");
        }
    }

    fn audit_table(&self, md: &mut String) {
        let a = &self.audit;
        let _ = writeln!(md, "\n## Audit (after the pipeline drained)\n");
        let _ = writeln!(
            md,
            "| 202s | units | 503→accepted | persisted | Redis remaining | pending | duplicates | oversold | lost | leaked | verdict |"
        );
        let _ = writeln!(
            md,
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            a.accepted_orders,
            a.accepted_units,
            a.resolved_late_units,
            a.persisted_units,
            a.redis_remaining.map_or("?".into(), |r| r.to_string()),
            a.pending_handoff,
            a.duplicated,
            a.oversold,
            a.lost,
            a.leaked.map_or("?".into(), |l| l.to_string()),
            a.verdict()
        );
        if a.paid_units + a.returned_units > 0 {
            let _ = writeln!(
                md,
                "\nReservations: {} units accepted for {} on sale; {} paid, {} returned to stock (cancelled or expired) and sold again, {} live units in PostgreSQL; {} shoppers told a state PostgreSQL contradicts.",
                a.accepted_units,
                a.stock,
                a.paid_units,
                a.returned_units,
                a.row_units,
                a.contradicted
            );
        }
    }

    fn census_line(&self, md: &mut String) {
        let c = &self.census;
        if c.taken == 0 {
            return;
        }
        let _ = writeln!(
            md,
            "\n## Sharded sale: the invariant every second\n\n{} censuses, {} unbalanced, {} failed \
             (pool + shards + in transit + taken + returning = stock); sold out {} ms after the last 202 \
             (at most 1,000){}",
            c.taken,
            c.unbalanced.len(),
            c.failed,
            c.sold_out_after_ms
                .map_or("(not known)".to_owned(), |ms| ms.to_string()),
            c.unbalanced
                .iter()
                .map(|u| format!("\n- {u}"))
                .collect::<String>()
        );
    }

    fn bots_table(&self, md: &mut String) {
        self.census_line(md);
        if self.bots.is_empty() {
            return;
        }
        let _ = writeln!(md, "\n## Bots against their allowance\n");
        let _ = writeln!(md, "| bot | units bought | allowed | verdict |");
        let _ = writeln!(md, "|---|---:|---:|---|");
        for b in &self.bots {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                b.bot,
                b.units,
                b.allowed.map_or("unbounded".into(), |x| x.to_string()),
                if b.passed { "PASS" } else { "FAIL" }
            );
        }
    }

    fn over_time(&self, md: &mut String) {
        let s = &self.summary;
        let _ = writeln!(
            md,
            "\n## Over time\n\n![latency](latency.png)\n\n![throughput](throughput.png)"
        );
        let _ = writeln!(
            md,
            "\nThe generator sent late by p99 {} ms (max {} ms); that lateness is part of the latencies above.",
            ms(s.generator_lag.p99_ms),
            ms(s.generator_lag.max_ms)
        );
        if s.generator_saturated > 0 {
            let _ = writeln!(
                md,
                "\n**Warning:** the generator's in-flight cap delayed {} arrivals; latencies above the cap are understated.",
                s.generator_saturated
            );
        }
    }

    /// Writes `report.md`, `summary.json`, `outcomes.jsonl`, `latency.png` and
    /// `throughput.png` into `dir/<name>-<timestamp>/`; returns that folder.
    pub fn write(&self, dir: &Path, outcomes: &[Outcome]) -> anyhow::Result<PathBuf> {
        let stamp = self.started_at.replace([':', '-'], "").replace('T', "-");
        let folder = dir.join(format!(
            "{}-{}",
            self.scenario.name,
            stamp.trim_end_matches('Z')
        ));
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join("report.md"), self.markdown())?;
        std::fs::write(
            folder.join("summary.json"),
            serde_json::to_string_pretty(self)?,
        )?;
        let mut lines = String::new();
        for o in outcomes {
            lines.push_str(&serde_json::to_string(o)?);
            lines.push('\n');
        }
        std::fs::write(folder.join("outcomes.jsonl"), lines)?;
        charts::latency(
            &self.summary,
            &self.scenario.name,
            &folder.join("latency.png"),
        )?;
        charts::throughput(
            &self.summary,
            &self.scenario.name,
            &folder.join("throughput.png"),
        )?;
        Ok(folder)
    }
}

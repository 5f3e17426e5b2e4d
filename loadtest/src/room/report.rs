//! The report of a room run: `report.md` (the checks, the line, the bots), `summary.json`,
//! `waiters.jsonl`, and three charts: the line over time (depth, released, claimed), claims
//! per second against the configured rate, and the ETA told against the wait that
//! followed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::bots::BotResults;
use super::checks::{Check, RoomFacts};
use super::sampler::Sample;
use super::scenario::RoomScenario;
use super::waiter::WaiterLog;
use crate::report::charts::{Series, err, time_series, to_png};

/// What a room run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomReport {
    /// The scenario.
    pub scenario: RoomScenario,
    /// The product.
    pub product: String,
    /// What the room was, and drew.
    pub facts: RoomFacts,
    /// The checks.
    pub checks: Vec<Check>,
    /// The bots.
    pub bots: BotResults,
    /// Answers to the waiters' orders, by code.
    pub orders: std::collections::BTreeMap<String, u64>,
    /// Polls answered.
    pub polls: u64,
    /// The samples, one a second.
    pub samples: Vec<Sample>,
    /// Whether every check holds.
    pub passed: bool,
}

impl RoomReport {
    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let s = &self.scenario;
        let _ = writeln!(md, "# Waiting room run `{}`\n", s.name);
        let _ = writeln!(
            md,
            "Product `{}`: {} units, a room at {} admissions/s (burst {}), claim window {:?}; {} waiters before the opening, {} after, {:.0} % leave the line, {:.0} % do not show. Verdict: **{}**.\n",
            self.product,
            s.sale.stock,
            s.room.rate,
            s.room.burst,
            s.room.claim_window,
            s.waiters.prequeue,
            s.waiters.live,
            s.waiters.abandon * 100.0,
            s.waiters.no_show * 100.0,
            if self.passed { "PASS" } else { "FAIL" }
        );
        let _ = writeln!(md, "| check | measured | target | |\n|---|---:|---|---|");
        for c in &self.checks {
            let _ = writeln!(
                md,
                "| {} | {:.4} | {} | {} |",
                c.name,
                c.value,
                c.target,
                if c.passed { "PASS" } else { "FAIL" }
            );
        }
        let _ = writeln!(
            md,
            "\nSeed `{}` over a cohort of {}; {} polls answered.\n",
            self.facts.seed, self.facts.cohort, self.polls
        );
        let _ = writeln!(md, "Orders: {:?}\n", self.orders);
        let _ = writeln!(
            md,
            "| bot | sent | let through | answers |\n|---|---:|---:|---|"
        );
        for (bot, sent) in &self.bots.sent {
            let through = self.bots.accepted.get(bot).copied().unwrap_or(0);
            let codes = self
                .bots
                .codes
                .get(bot)
                .map(|c| format!("{c:?}"))
                .unwrap_or_default();
            let _ = writeln!(md, "| {bot} | {sent} | {through} | {codes} |");
        }
        let _ = writeln!(
            md,
            "\n![the line](line.png)\n\n![claims](claims.png)\n\n![ETA](eta.png)"
        );
        md
    }

    /// Writes the report into `dir/<name>-<time>/`; returns the folder.
    pub fn write(
        &self,
        dir: &Path,
        logs: &[WaiterLog],
        eta: &[(f64, f64)],
    ) -> anyhow::Result<PathBuf> {
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .replace([':', '-'], "");
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
        let lines: Vec<String> = logs
            .iter()
            .filter_map(|l| serde_json::to_string(l).ok())
            .collect();
        std::fs::write(folder.join("waiters.jsonl"), lines.join("\n"))?;
        self.charts(&folder, eta)?;
        Ok(folder)
    }

    fn charts(&self, folder: &Path, eta: &[(f64, f64)]) -> anyhow::Result<()> {
        let t_max = self.samples.last().map_or(1.0, |s| s.t.max(1.0));
        let line =
            |f: fn(&Sample) -> f64| self.samples.iter().map(|s| (s.t, f(s))).collect::<Vec<_>>();
        let series = [
            Series {
                name: "in line (joined − released)",
                points: line(|s| s.joined.saturating_sub(s.served) as f64),
                color: BLUE,
            },
            Series {
                name: "released",
                points: line(|s| s.served as f64),
                color: GREEN,
            },
            Series {
                name: "claimed",
                points: line(|s| s.claimed as f64),
                color: RED,
            },
        ];
        time_series(
            "The line",
            "tickets",
            t_max,
            &series,
            &folder.join("line.png"),
        )?;
        claims_chart(
            &self.facts.claims_s,
            self.facts.rate,
            t_max,
            &folder.join("claims.png"),
        )?;
        scatter(eta, &folder.join("eta.png"))
    }
}

/// Admissions per second (Redis's clock) against the configured rate.
fn claims_chart(claims_s: &[f64], rate: f64, t_max: f64, path: &Path) -> anyhow::Result<()> {
    let mut per_second = vec![0u64; t_max.ceil() as usize + 1];
    for t in claims_s {
        if let Some(slot) = per_second.get_mut(*t as usize) {
            *slot += 1;
        }
    }
    let series = [
        Series {
            name: "claims/s",
            points: per_second
                .iter()
                .enumerate()
                .map(|(i, n)| (i as f64, *n as f64))
                .collect(),
            color: RED,
        },
        Series {
            name: "configured rate",
            points: vec![(0.0, rate), (t_max, rate)],
            color: BLACK,
        },
    ];
    time_series("Claims per second", "claims/s", t_max, &series, path)
}

/// ETA told (x) against the wait that followed (y), with the diagonal.
fn scatter(points: &[(f64, f64)], path: &Path) -> anyhow::Result<()> {
    let max = points.iter().map(|(a, b)| a.max(*b)).fold(1.0, f64::max) * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (700, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "ETA told at the first estimate vs. the wait that followed",
                ("sans-serif", 18),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max, 0.0..max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("ETA told, s")
            .y_desc("waited, s")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 2, BLUE.mix(0.4).filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (max, max)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    to_png(&svg, path)
}

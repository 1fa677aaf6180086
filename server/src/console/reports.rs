//! The manager's reports for one bank and a period (this month by default): visits per
//! team and outcome (evidence accepted, quarantined, none yet), receipts collected against
//! deposited per day, and the overdue receipts — as tables, as SVG charts drawn on the
//! server (plotters' SVG backend, inline in the page: no script, no style attribute), and
//! as CSV and XLSX downloads built from the same figures.
//!
//! Threats: a user of another bank (the bank must be one of the user's, else "not found",
//! D03); a web attacker injecting formulas into a downloaded spreadsheet through a field
//! (a name, a case reference, a deposit slip): every text cell that a spreadsheet could
//! read as a formula is prefixed with `'` in CSV and XLSX alike, and XLSX cells are written
//! as strings, never formulas; numbers stay numbers.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike as _, NaiveDate};
use serde::Deserialize;
use tandem_core::model::{BankId, ReceiptSerial};
use tandem_core::text::visible;

use super::frame::{Page, bank_zone, error_page, local_time, render, to_sign_in, yuan};
use super::i18n::Lang;
use super::receipts::{BankOption, bank_choice, day_value, due_day};
use super::secure_page_headers;
use super::session::{PageLang, Viewer};
use crate::AppState;
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::receipts::{ReceiptQuery, ReceiptRecord, ReceiptState};
use crate::error::AppError;

/// The longest period a report covers, days.
const MAX_PERIOD_DAYS: i64 = 366;
/// The most receipts a report reads.
const MAX_RECEIPTS: i64 = 100_000;

/// The report's bank and period, as the form sends them.
#[derive(Debug, Default, Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    bank: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// Visits of one team, by outcome.
#[derive(Debug, Clone, Default)]
pub struct TeamLine {
    team: String,
    accepted: i64,
    quarantined: i64,
    none: i64,
}

impl TeamLine {
    fn total(&self) -> i64 {
        self.accepted + self.quarantined + self.none
    }
}

/// Receipts of one day (or the total).
#[derive(Debug, Clone, Default)]
pub struct DayLine {
    day: String,
    collected: i64,
    collected_fen: i64,
    deposited: i64,
    deposited_fen: i64,
    overdue: i64,
}

/// An overdue receipt.
#[derive(Debug, Clone)]
pub struct OverdueLine {
    serial: String,
    issued_ms: i64,
    case_ref: String,
    payer: String,
    amount_fen: i64,
    due_ms: i64,
    flagged_ms: i64,
}

/// Every figure of the reports, once: the page, the CSV and the XLSX show these.
pub struct Figures {
    bank_name: String,
    from: NaiveDate,
    to: NaiveDate,
    zone: chrono_tz::Tz,
    teams: Vec<TeamLine>,
    days: Vec<DayLine>,
    total: DayLine,
    overdue: Vec<OverdueLine>,
}

/// Midnight starting `day` in `zone`, UTC ms.
fn day_start(day: NaiveDate, zone: chrono_tz::Tz) -> Option<i64> {
    day.and_hms_opt(0, 0, 0)?
        .and_local_timezone(zone)
        .earliest()
        .map(|t| t.timestamp_millis())
}

/// This month in `zone`: its first and last day.
fn this_month(now_ms: i64, zone: chrono_tz::Tz) -> (NaiveDate, NaiveDate) {
    let today = chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.with_timezone(&zone).date_naive())
        .unwrap_or_default();
    let first = today.with_day(1).unwrap_or(today);
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    let last = next.and_then(|n| n.pred_opt()).unwrap_or(today);
    (first, last)
}

/// The bank and period asked for: a bank of the user's (else "not found"), the period read
/// in its zone; `Err(None)` when the period is not one (the form says so).
async fn bank_and_period(
    state: &AppState,
    user: &UserAuth,
    query: &ReportQuery,
) -> Result<
    (
        BankId,
        Vec<BankOption>,
        NaiveDate,
        NaiveDate,
        chrono_tz::Tz,
        bool,
    ),
    AppError,
> {
    user.require(&[Role::Manager, Role::Admin])?;
    let (picked, mut banks) = bank_choice(state, user, query.bank.as_deref()).await?;
    let bank = picked
        .or_else(|| user.user.bank_ids.first().copied())
        .ok_or(AppError::NotFound)?;
    for b in &mut banks {
        b.selected = b.id == bank.to_string();
    }
    let zone = bank_zone(state, bank).await?;
    let (first, last) = this_month(state.now_ms(), zone);
    let parse = |v: Option<&str>, default: NaiveDate| -> Option<NaiveDate> {
        match v.map(str::trim).filter(|v| !v.is_empty()) {
            None => Some(default),
            Some(v) => day_value(Some(v)).and_then(|d| d.parse().ok()),
        }
    };
    let (from, to) = (
        parse(query.from.as_deref(), first),
        parse(query.to.as_deref(), last),
    );
    match (from, to) {
        (Some(from), Some(to)) if from <= to && (to - from).num_days() < MAX_PERIOD_DAYS => {
            Ok((bank, banks, from, to, zone, true))
        }
        _ => Ok((bank, banks, first, last, zone, false)),
    }
}

async fn figures(
    state: &AppState,
    bank: BankId,
    from: NaiveDate,
    to: NaiveDate,
    zone: chrono_tz::Tz,
) -> Result<Figures, AppError> {
    let bad_period = || AppError::Internal("report period outside the calendar".into());
    let from_ms = day_start(from, zone).ok_or_else(bad_period)?;
    let until_ms = day_start(to.succ_opt().ok_or_else(bad_period)?, zone).ok_or_else(bad_period)?;
    let bank_name = state
        .db
        .bank_names(&[bank])
        .await?
        .into_iter()
        .next()
        .map(|b| visible(&b.name).into_owned())
        .unwrap_or_default();

    // Visits: one team per visit (its agents, by employee number), its newest outcome.
    let mut visits: BTreeMap<tandem_core::model::VisitId, (Vec<String>, Option<String>)> =
        BTreeMap::new();
    for row in state.db.visit_teams(bank, from_ms, until_ms).await? {
        let entry = visits.entry(row.visit_id).or_default();
        entry.0.push(visible(&row.agent_name).into_owned());
        entry.1 = row.outcome;
    }
    let mut by_team: BTreeMap<String, TeamLine> = BTreeMap::new();
    for (agents, outcome) in visits.into_values() {
        let team = agents.join(" + ");
        let line = by_team.entry(team.clone()).or_insert_with(|| TeamLine {
            team,
            ..TeamLine::default()
        });
        match outcome.as_deref() {
            Some("accepted") => line.accepted += 1,
            Some("quarantined") => line.quarantined += 1,
            _ => line.none += 1,
        }
    }

    let receipts = state
        .db
        .receipts(&ReceiptQuery {
            banks: vec![bank],
            state: None,
            from_day: Some(from.format("%Y-%m-%d").to_string()),
            to_day: Some(to.format("%Y-%m-%d").to_string()),
            before: None,
            visit: None,
            limit: MAX_RECEIPTS,
        })
        .await?;
    let mut by_day: BTreeMap<String, DayLine> = BTreeMap::new();
    let mut overdue = Vec::new();
    for r in receipts.iter().rev() {
        let state = r.state();
        if state == ReceiptState::Voided {
            continue;
        }
        let line = by_day
            .entry(r.issued_day.clone())
            .or_insert_with(|| DayLine {
                day: r.issued_day.clone(),
                ..DayLine::default()
            });
        add_receipt(line, r, state);
        if state == ReceiptState::Overdue {
            overdue.push(OverdueLine {
                serial: ReceiptSerial(u64::try_from(r.serial).unwrap_or_default()).to_string(),
                issued_ms: r.issued_ms,
                case_ref: visible(&r.case_ref).into_owned(),
                payer: visible(&r.payer_name).into_owned(),
                amount_fen: r.amount_fen,
                due_ms: r.due_ms,
                flagged_ms: r.overdue_ms.unwrap_or_default(),
            });
        }
    }
    let days: Vec<DayLine> = by_day.into_values().collect();
    let mut total = DayLine::default();
    for d in &days {
        total.collected += d.collected;
        total.collected_fen = total.collected_fen.saturating_add(d.collected_fen);
        total.deposited += d.deposited;
        total.deposited_fen = total.deposited_fen.saturating_add(d.deposited_fen);
        total.overdue += d.overdue;
    }
    Ok(Figures {
        bank_name,
        from,
        to,
        zone,
        teams: by_team.into_values().collect(),
        days,
        total,
        overdue,
    })
}

fn add_receipt(line: &mut DayLine, r: &ReceiptRecord, state: ReceiptState) {
    line.collected += 1;
    line.collected_fen = line.collected_fen.saturating_add(r.amount_fen);
    if state == ReceiptState::Deposited {
        line.deposited += 1;
        line.deposited_fen = line.deposited_fen.saturating_add(r.amount_fen);
    }
    if state == ReceiptState::Overdue {
        line.overdue += 1;
    }
}

/// Text a spreadsheet would read as a formula (or a command) made plain: a leading `=`,
/// `+`, `-`, `@`, tab or carriage return gets a `'` before it.
pub fn spreadsheet_text(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// Fen as yuan, a number for a spreadsheet (amounts there are far below 2^53 fen).
fn yuan_number(fen: i64) -> f64 {
    fen as f64 / 100.0
}

/// A grouped bar chart as an SVG document: one group per category, one bar per series.
fn bar_chart(
    categories: &[String],
    series: &[(String, plotters::style::RGBColor, Vec<f64>)],
    counts: bool,
) -> Result<String, String> {
    use plotters::prelude::*;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 280)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let top = series
            .iter()
            .flat_map(|(_, _, v)| v.iter().copied())
            .fold(0.0_f64, f64::max);
        // Counts get whole-number steps; amounts some headroom for the legend.
        let top = if counts {
            top.ceil().max(1.0) + 1.0
        } else if top > 0.0 {
            top * 1.45
        } else {
            1.0
        };
        let y_labels = if counts {
            (top as usize + 1).min(11)
        } else {
            5
        };
        let n = categories.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..n as f64, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(0)
            .y_labels(y_labels)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| e.to_string())?;
        let groups = series.len().max(1) as f64;
        let width = 0.8 / groups;
        for (k, (name, color, values)) in series.iter().enumerate() {
            let color = *color;
            chart
                .draw_series(values.iter().enumerate().map(move |(i, v)| {
                    let x0 = i as f64 + 0.1 + k as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.92, *v)], color.filled())
                }))
                .map_err(|e| e.to_string())?
                .label(name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|e| e.to_string())?;
        // The categories under their groups (the chart's own labels fall on round values).
        let style = TextStyle::from(("sans-serif", 15).into_font())
            .color(&BLACK)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ));
        for (i, name) in categories.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            root.draw(&Text::new(name.clone(), (x, y + 6), style.clone()))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    // The tables beside hold the same figures for screen readers.
    Ok(svg.replacen("<svg ", "<svg aria-hidden=\"true\" focusable=\"false\" ", 1))
}

/// Colours of the charts' series: the console's blue, green and its warning amber.
const BLUE: plotters::style::RGBColor = plotters::style::RGBColor(0x0b, 0x4f, 0x8a);
const GREEN: plotters::style::RGBColor = plotters::style::RGBColor(0x2f, 0x85, 0x4f);
const AMBER: plotters::style::RGBColor = plotters::style::RGBColor(0xc2, 0x7c, 0x0e);
const GREY: plotters::style::RGBColor = plotters::style::RGBColor(0x9a, 0xa5, 0xb1);

fn visits_chart(lang: Lang, f: &Figures) -> Result<String, String> {
    let names: Vec<String> = f.teams.iter().map(|t| t.team.clone()).collect();
    bar_chart(
        &names,
        &[
            (
                lang.t("money-outcome-accepted"),
                GREEN,
                f.teams.iter().map(|t| t.accepted as f64).collect(),
            ),
            (
                lang.t("money-outcome-quarantined"),
                AMBER,
                f.teams.iter().map(|t| t.quarantined as f64).collect(),
            ),
            (
                lang.t("money-outcome-none"),
                GREY,
                f.teams.iter().map(|t| t.none as f64).collect(),
            ),
        ],
        true,
    )
}

fn receipts_chart(lang: Lang, f: &Figures) -> Result<String, String> {
    // Month and day only under each group: the period is above the chart.
    let days: Vec<String> = f
        .days
        .iter()
        .map(|d| d.day.get(5..).unwrap_or(&d.day).to_owned())
        .collect();
    bar_chart(
        &days,
        &[
            (
                lang.t("money-chart-collected"),
                BLUE,
                f.days
                    .iter()
                    .map(|d| yuan_number(d.collected_fen))
                    .collect(),
            ),
            (
                lang.t("money-chart-deposited"),
                GREEN,
                f.days
                    .iter()
                    .map(|d| yuan_number(d.deposited_fen))
                    .collect(),
            ),
        ],
        false,
    )
}

/// The overdue line as the page shows it.
pub struct OverdueRow {
    serial: String,
    issued: String,
    case_ref: String,
    payer: String,
    amount: String,
    due: String,
    flagged: String,
}

/// A day's line as the page shows it.
pub struct DayRow {
    day: String,
    collected: i64,
    collected_amount: String,
    deposited: i64,
    deposited_amount: String,
    overdue: i64,
}

impl DayRow {
    fn of(line: &DayLine) -> Self {
        Self {
            day: line.day.clone(),
            collected: line.collected,
            collected_amount: yuan(line.collected_fen),
            deposited: line.deposited,
            deposited_amount: yuan(line.deposited_fen),
            overdue: line.overdue,
        }
    }
}

/// A team's line as the page shows it.
pub struct TeamRow {
    team: String,
    accepted: i64,
    quarantined: i64,
    none: i64,
    total: i64,
}

#[derive(Template)]
#[template(path = "console/reports.html")]
struct ReportsPage {
    page: Page,
    banks: Vec<BankOption>,
    from: String,
    to: String,
    period: String,
    period_error: Option<String>,
    teams: Vec<TeamRow>,
    visits_svg: String,
    days: Vec<DayRow>,
    total: DayRow,
    receipts_svg: String,
    overdue: Vec<OverdueRow>,
    downloads: Vec<(String, String)>,
}

/// `GET /reports`: the reports of one of the manager's banks for a period.
pub async fn reports_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    let shown = async {
        let (bank, banks, from, to, zone, valid) = bank_and_period(&state, &user, &query).await?;
        let f = figures(&state, bank, from, to, zone).await?;
        let chart_failed = |e: String| AppError::Internal(format!("report chart: {e}"));
        let visits_svg = if f.teams.is_empty() {
            String::new()
        } else {
            visits_chart(lang, &f).map_err(chart_failed)?
        };
        let receipts_svg = if f.days.is_empty() {
            String::new()
        } else {
            receipts_chart(lang, &f).map_err(chart_failed)?
        };
        let (from_text, to_text) = (
            from.format("%Y-%m-%d").to_string(),
            to.format("%Y-%m-%d").to_string(),
        );
        let params = form_urlencoded::Serializer::new(String::new())
            .append_pair("bank", &bank.to_string())
            .append_pair("from", &from_text)
            .append_pair("to", &to_text)
            .finish();
        let downloads = [
            ("visits.csv", "money-download-visits-csv"),
            ("receipts.csv", "money-download-receipts-csv"),
            ("overdue.csv", "money-download-overdue-csv"),
            ("reports.xlsx", "money-download-xlsx"),
        ]
        .into_iter()
        .map(|(file, id)| (format!("/reports/{file}?{params}"), lang.t(id)))
        .collect();
        Ok::<_, AppError>(ReportsPage {
            page: Page::new(lang, "reports-title", &uri).signed_in(&user, "reports"),
            banks,
            period: lang.t_args(
                "reports-period",
                &[
                    ("bank", f.bank_name.clone().into()),
                    ("from", from_text.clone().into()),
                    ("to", to_text.clone().into()),
                ],
            ),
            from: from_text,
            to: to_text,
            period_error: (!valid).then(|| lang.t("reports-bad-period")),
            teams: f
                .teams
                .iter()
                .map(|t| TeamRow {
                    team: t.team.clone(),
                    accepted: t.accepted,
                    quarantined: t.quarantined,
                    none: t.none,
                    total: t.total(),
                })
                .collect(),
            visits_svg,
            days: f.days.iter().map(DayRow::of).collect(),
            total: DayRow::of(&f.total),
            receipts_svg,
            overdue: f
                .overdue
                .iter()
                .map(|o| OverdueRow {
                    serial: o.serial.clone(),
                    issued: local_time(o.issued_ms, f.zone),
                    case_ref: o.case_ref.clone(),
                    payer: o.payer.clone(),
                    amount: yuan(o.amount_fen),
                    due: due_day(o.due_ms, f.zone),
                    flagged: local_time(o.flagged_ms, f.zone),
                })
                .collect(),
            downloads,
        })
    };
    match shown.await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

/// The three reports as rows of cells.
enum Cell {
    Text(String),
    Int(i64),
    Yuan(i64),
    Day(NaiveDate),
    Time(i64),
}

fn table(lang: Lang, f: &Figures, report: &str) -> Option<(String, Vec<String>, Vec<Vec<Cell>>)> {
    let h = |ids: &[&str]| ids.iter().map(|id| lang.t(id)).collect::<Vec<_>>();
    Some(match report {
        "visits" => (
            lang.t("money-sheet-visits"),
            h(&[
                "money-col-team",
                "money-outcome-accepted",
                "money-outcome-quarantined",
                "money-outcome-none",
                "money-col-visits",
            ]),
            f.teams
                .iter()
                .map(|t| {
                    vec![
                        Cell::Text(t.team.clone()),
                        Cell::Int(t.accepted),
                        Cell::Int(t.quarantined),
                        Cell::Int(t.none),
                        Cell::Int(t.total()),
                    ]
                })
                .collect(),
        ),
        "receipts" => {
            let line = |day: Cell, d: &DayLine| {
                vec![
                    day,
                    Cell::Int(d.collected),
                    Cell::Yuan(d.collected_fen),
                    Cell::Int(d.deposited),
                    Cell::Yuan(d.deposited_fen),
                    Cell::Int(d.overdue),
                ]
            };
            let mut rows: Vec<Vec<Cell>> = f
                .days
                .iter()
                .filter_map(|d| Some(line(Cell::Day(d.day.parse().ok()?), d)))
                .collect();
            rows.push(line(Cell::Text(lang.t("money-row-total")), &f.total));
            (
                lang.t("money-sheet-receipts"),
                h(&[
                    "money-col-day",
                    "money-col-collected-count",
                    "money-col-collected-amount",
                    "money-col-deposited-count",
                    "money-col-deposited-amount",
                    "money-col-overdue-count",
                ]),
                rows,
            )
        }
        "overdue" => (
            lang.t("money-sheet-overdue"),
            h(&[
                "money-col-serial",
                "money-col-issued",
                "col-case",
                "money-col-payer",
                "money-col-amount",
                "money-col-due",
                "money-col-flagged",
            ]),
            f.overdue
                .iter()
                .map(|o| {
                    vec![
                        Cell::Text(o.serial.clone()),
                        Cell::Time(o.issued_ms),
                        Cell::Text(o.case_ref.clone()),
                        Cell::Text(o.payer.clone()),
                        Cell::Yuan(o.amount_fen),
                        due_day(o.due_ms, f.zone)
                            .parse()
                            .map_or_else(|_| Cell::Text(String::new()), Cell::Day),
                        Cell::Time(o.flagged_ms),
                    ]
                })
                .collect(),
        ),
        _ => return None,
    })
}

fn csv_of(f: &Figures, header: &[String], rows: &[Vec<Cell>]) -> Result<Vec<u8>, String> {
    // A byte-order mark: spreadsheet programs then read the Chinese text as UTF-8.
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut w = csv::Writer::from_writer(&mut out);
        let header: Vec<String> = header.iter().map(|t| spreadsheet_text(t)).collect();
        w.write_record(&header).map_err(|e| e.to_string())?;
        for row in rows {
            let record: Vec<String> = row
                .iter()
                .map(|c| match c {
                    Cell::Text(t) => spreadsheet_text(t),
                    Cell::Int(n) => n.to_string(),
                    Cell::Yuan(fen) => {
                        format!(
                            "{}{}.{:02}",
                            if *fen < 0 { "-" } else { "" },
                            fen.unsigned_abs() / 100,
                            fen.unsigned_abs() % 100
                        )
                    }
                    Cell::Day(d) => d.format("%Y-%m-%d").to_string(),
                    Cell::Time(ms) => local_time(*ms, f.zone),
                })
                .collect();
            w.write_record(&record).map_err(|e| e.to_string())?;
        }
        w.flush().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn excel_time(
    at_ms: i64,
    zone: chrono_tz::Tz,
) -> Result<rust_xlsxwriter::ExcelDateTime, rust_xlsxwriter::XlsxError> {
    use chrono::Timelike as _;
    let t = chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.with_timezone(&zone).naive_local())
        .unwrap_or_default();
    let date = excel_day(t.date())?;
    date.and_hms(
        u16::try_from(t.hour()).unwrap_or_default(),
        u8::try_from(t.minute()).unwrap_or_default(),
        t.second(),
    )
}

fn excel_day(day: NaiveDate) -> Result<rust_xlsxwriter::ExcelDateTime, rust_xlsxwriter::XlsxError> {
    rust_xlsxwriter::ExcelDateTime::from_ymd(
        u16::try_from(day.year()).unwrap_or_default(),
        u8::try_from(day.month()).unwrap_or_default(),
        u8::try_from(day.day()).unwrap_or_default(),
    )
}

fn xlsx_of(lang: Lang, f: &Figures) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("¥#,##0.00");
    let day = Format::new().set_num_format("yyyy-mm-dd");
    let time = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    let mut book = Workbook::new();
    for report in ["visits", "receipts", "overdue"] {
        let Some((name, header, rows)) = table(lang, f, report) else {
            continue;
        };
        let sheet = book.add_worksheet();
        sheet.set_name(&name)?;
        for (c, text) in header.iter().enumerate() {
            let c = u16::try_from(c).unwrap_or(u16::MAX);
            sheet.write_string_with_format(0, c, spreadsheet_text(text), &bold)?;
            sheet.set_column_width(c, 18)?;
        }
        for (r, row) in rows.iter().enumerate() {
            let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
            for (c, cell) in row.iter().enumerate() {
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                match cell {
                    // Always a string cell: a name starting with `=` never becomes a formula.
                    Cell::Text(t) => {
                        sheet.write_string(r, c, spreadsheet_text(t))?;
                    }
                    Cell::Int(n) => {
                        sheet.write_number(r, c, *n as f64)?;
                    }
                    Cell::Yuan(fen) => {
                        sheet.write_number_with_format(r, c, yuan_number(*fen), &money)?;
                    }
                    Cell::Day(d) => {
                        sheet.write_datetime_with_format(r, c, excel_day(*d)?, &day)?;
                    }
                    Cell::Time(ms) => {
                        sheet.write_datetime_with_format(r, c, excel_time(*ms, f.zone)?, &time)?;
                    }
                }
            }
        }
    }
    book.save_to_buffer()
}

/// `GET /reports/{file}`: `visits.csv`, `receipts.csv`, `overdue.csv`, or `reports.xlsx`
/// (the three as sheets), for the same bank and period as the page.
pub async fn download(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    Path(file): Path<String>,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    let built = async {
        let (bank, _, from, to, zone, _) = bank_and_period(&state, &user, &query).await?;
        let f = figures(&state, bank, from, to, zone).await?;
        let period = format!("{}_{}", f.from.format("%Y%m%d"), f.to.format("%Y%m%d"));
        let failed = |e: String| AppError::Internal(format!("report download: {e}"));
        if file == "reports.xlsx" {
            let bytes = xlsx_of(lang, &f).map_err(|e| failed(e.to_string()))?;
            return Ok((
                bytes,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                format!("tandem-reports-{period}.xlsx"),
            ));
        }
        let report = file.strip_suffix(".csv").ok_or(AppError::NotFound)?;
        let (_, header, rows) = table(lang, &f, report).ok_or(AppError::NotFound)?;
        let bytes = csv_of(&f, &header, &rows).map_err(failed)?;
        Ok::<_, AppError>((
            bytes,
            "text/csv; charset=utf-8",
            format!("tandem-{report}-{period}.csv"),
        ))
    };
    match built.await {
        Ok((bytes, kind, name)) => {
            let mut response = bytes.into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            secure_page_headers(h);
            response
        }
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_a_spreadsheet_would_run_is_made_plain() {
        for (raw, safe) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+86 138", "'+86 138"),
            ("-1+1", "'-1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("林晓虹", "林晓虹"),
            ("PJ-2026-0001", "PJ-2026-0001"),
        ] {
            assert_eq!(spreadsheet_text(raw), safe);
        }
    }

    #[test]
    fn the_default_period_is_this_month_in_the_banks_zone() {
        let zone = chrono_tz::Asia::Shanghai;
        // 2026-11-30 20:00 UTC is already 2026-12-01 in Shanghai.
        let (first, last) = this_month(1_796_068_800_000, zone);
        assert_eq!(first.to_string(), "2026-12-01");
        assert_eq!(last.to_string(), "2026-12-31");
    }

    #[test]
    fn a_chart_is_svg_without_style_attributes_and_with_escaped_text() {
        let svg = bar_chart(
            &["<b>张三</b> + 李四".to_owned()],
            &[("收款".to_owned(), BLUE, vec![3.0])],
            true,
        )
        .unwrap();
        assert!(svg.starts_with("<svg aria-hidden=\"true\""), "{svg}");
        assert!(
            !svg.contains("style="),
            "inline style is refused by the CSP"
        );
        assert!(!svg.contains("<b>"), "text is escaped");
        assert!(svg.contains("&lt;b&gt;张三"), "{svg}");
    }
}

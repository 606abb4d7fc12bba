//! `passerelle migrate FILE [--dry-run] [--url URL] [--token TOKEN]`: upload the file to a
//! running Passerelle, follow the job with a progress bar, and write the report next to the
//! file (`FILE.report.csv`). It only drives the HTTP API, so it works against a remote server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no admin token: pass --token or set PASSERELLE_ADMIN_TOKEN (or [admin] token)")]
    NoToken,
    #[error("cannot reach {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("the server refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("unexpected answer from the server: {0}")]
    Answer(String),
}

#[derive(Debug, Clone)]
pub struct MigrateArgs {
    pub file: PathBuf,
    pub dry_run: bool,
    /// Passerelle's base URL (`server.public_url` by default).
    pub url: String,
    pub token: Option<String>,
}

/// How the run ended, for the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub status: String,
    pub report: PathBuf,
}

/// `FILE.report.csv`, beside the file.
pub fn report_path(file: &Path) -> PathBuf {
    numbered_report_path(file, 1)
}

/// `FILE.report.csv` for the first, `FILE.report-N.csv` for the N-th.
fn numbered_report_path(file: &Path, n: u32) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    if n <= 1 {
        name.push(".report.csv");
    } else {
        name.push(format!(".report-{n}.csv"));
    }
    file.with_file_name(name)
}

/// Write the report beside the file without replacing an earlier one (the dry run's report
/// is still wanted after the real run): the first free of `FILE.report.csv`,
/// `FILE.report-2.csv`, … created exclusively, so two runs at once cannot share one either.
fn write_new_report(file: &Path, csv: &[u8]) -> Result<PathBuf, CliError> {
    use std::io::Write;
    for n in 1..=999 {
        let path = numbered_report_path(file, n);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut out) => {
                out.write_all(csv).map_err(|source| CliError::Write {
                    path: path.clone(),
                    source,
                })?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(CliError::Write { path, source }),
        }
    }
    let path = numbered_report_path(file, 1);
    Err(CliError::Write {
        path,
        source: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "999 reports already beside the file: move some away",
        ),
    })
}

fn content_type(file: &Path) -> &'static str {
    match file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => "application/json",
        _ => "text/csv",
    }
}

async fn answer(response: reqwest::Response, url: &str) -> Result<Value, CliError> {
    let status = response.status();
    let body = response.text().await.map_err(|e| CliError::Unreachable {
        url: url.into(),
        cause: e.to_string(),
    })?;
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        let message = json["error"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| body.chars().take(300).collect());
        return Err(CliError::Refused {
            status: status.as_u16(),
            message,
        });
    }
    Ok(json)
}

fn counts_line(view: &Value) -> String {
    view["counts"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

pub async fn run(args: MigrateArgs) -> Result<Finished, CliError> {
    let token = args.token.clone().ok_or(CliError::NoToken)?;
    let base = args.url.trim_end_matches('/').to_string();
    let body = std::fs::read(&args.file).map_err(|source| CliError::Read {
        path: args.file.clone(),
        source,
    })?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| CliError::Answer(e.to_string()))?;
    let unreachable = |url: &str| {
        let url = url.to_string();
        move |e: reqwest::Error| CliError::Unreachable {
            url,
            cause: e.to_string(),
        }
    };
    let submit_url = format!(
        "{base}/admin/migrations{}",
        if args.dry_run { "?dry_run=true" } else { "" }
    );
    let accepted = answer(
        http.post(&submit_url)
            .bearer_auth(&token)
            .header(reqwest::header::CONTENT_TYPE, content_type(&args.file))
            .body(body)
            .send()
            .await
            .map_err(unreachable(&submit_url))?,
        &submit_url,
    )
    .await?;
    let id = accepted["id"]
        .as_str()
        .ok_or_else(|| CliError::Answer(format!("no job id in {accepted}")))?
        .to_string();
    let total = accepted["rows"].as_u64().unwrap_or(0);
    eprintln!(
        "{} job {id}: {total} people ({} invalid rows)",
        if args.dry_run { "dry-run" } else { "migration" },
        accepted["invalid_rows"].as_u64().unwrap_or(0)
    );

    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let status_url = format!("{base}/admin/migrations/{id}");
    let view = loop {
        let view = answer(
            http.get(&status_url)
                .bearer_auth(&token)
                .send()
                .await
                .map_err(unreachable(&status_url))?,
            &status_url,
        )
        .await?;
        bar.set_position(view["progress"]["processed"].as_u64().unwrap_or(0));
        let status = view["status"].as_str().unwrap_or("");
        // Before the job starts there is no rate to estimate from: say it is waiting.
        if status == "queued" {
            bar.set_message("waiting to start");
        } else {
            let eta = view["eta"]["text"]
                .as_str()
                .map(|t| format!(" — about {t} left"))
                .unwrap_or_default();
            bar.set_message(format!("{status}{eta}"));
        }
        let finished = matches!(
            view["status"].as_str(),
            Some("done" | "cancelled" | "failed")
        );
        if finished {
            break view;
        }
        tokio::time::sleep(POLL).await;
    };
    bar.finish_and_clear();

    let report_url = format!("{base}/admin/migrations/{id}/report");
    let response = http
        .get(&report_url)
        .bearer_auth(&token)
        .header(reqwest::header::ACCEPT, "text/csv")
        .send()
        .await
        .map_err(unreachable(&report_url))?;
    if !response.status().is_success() {
        answer(response, &report_url).await?;
        return Err(CliError::Answer("the report could not be read".into()));
    }
    let csv = response.bytes().await.map_err(unreachable(&report_url))?;
    let report = write_new_report(&args.file, &csv)?;
    let status = view["status"].as_str().unwrap_or("unknown").to_string();
    println!("{status}: {}", counts_line(&view));
    if let Some(error) = view["error"].as_str() {
        println!("error: {error}");
    }
    println!("report: {}", report.display());
    Ok(Finished { status, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_goes_next_to_the_file() {
        assert_eq!(
            report_path(Path::new("/tmp/export/people.csv")),
            PathBuf::from("/tmp/export/people.csv.report.csv")
        );
        assert_eq!(
            numbered_report_path(Path::new("/tmp/export/people.csv"), 2),
            PathBuf::from("/tmp/export/people.csv.report-2.csv")
        );
        assert_eq!(content_type(Path::new("a.JSON")), "application/json");
        assert_eq!(content_type(Path::new("a.txt")), "text/csv");
    }
}

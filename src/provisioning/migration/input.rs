//! Reading an upload (CSV with a header row, or JSON) into rows, checked before any job is
//! created: a file that cannot be read as a whole is refused with the line and the problem;
//! a row that is wrong on its own (a bad email, a person listed twice) is kept and reported as
//! `invalid_row`, so one typo does not block a company's migration.

use std::collections::HashMap;

use serde_json::Value;

use super::model::PersonRow;
use crate::config::looks_like_email;

/// Lucca's limit on names and most text fields.
const MAX_FIELD_CHARS: usize = 255;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_rows: usize,
}

/// Why an upload is refused as a whole (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    #[error(
        "the upload is larger than migrations.max_upload_bytes ({limit} bytes): split the file"
    )]
    TooLarge { limit: usize },
    #[error("line {line}: more than {limit} people (migrations.max_rows): split the file")]
    TooManyRows { line: u64, limit: usize },
    #[error("line 1: no `email` column (columns found: {found}): the header row must name one")]
    MissingEmailColumn { found: String },
    #[error("no person in the JSON has an `email`")]
    NoEmailInJson,
    #[error("line 1: the column `{0}` appears twice")]
    DuplicateColumn(String),
    #[error("line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("line {line}, column {column}: not valid JSON: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    JsonShape(String),
    #[error("line {line}: not UTF-8 text (save the file as \"CSV UTF-8\")")]
    NotUtf8 { line: u64 },
    #[error("the file holds no people (only a header row, or nothing)")]
    Empty,
    #[error("unsupported Content-Type `{0}`: send the file itself as the request body, as text/csv or application/json")]
    UnsupportedType(String),
}

/// One person of the upload, with their position and, if the row cannot be used, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedRow {
    /// The CSV line the record starts on (the header is line 1), or the 1-based position in
    /// the JSON array.
    pub row_no: u64,
    pub person: PersonRow,
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub rows: Vec<UploadedRow>,
    /// CSV columns or JSON keys that are not ours (kept out of the job, reported back).
    pub ignored_columns: Vec<String>,
}

enum Format {
    Csv,
    Json,
}

/// Parse and check an upload. `content_type` picks the format; without one, a body starting
/// with `[` or `{` is JSON and anything else CSV.
pub fn parse_upload(
    content_type: Option<&str>,
    body: &[u8],
    limits: &Limits,
) -> Result<Upload, UploadError> {
    if body.len() > limits.max_bytes {
        return Err(UploadError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let format = match content_type
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .as_deref()
    {
        Some("text/csv" | "application/csv" | "text/plain" | "text/comma-separated-values") => {
            Format::Csv
        }
        Some("application/json" | "text/json") => Format::Json,
        Some(t) if t.ends_with("+json") => Format::Json,
        None | Some("") | Some("application/octet-stream") => {
            match body.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'[' | b'{') => Format::Json,
                _ => Format::Csv,
            }
        }
        Some(other) => return Err(UploadError::UnsupportedType(other.to_string())),
    };
    let mut upload = match format {
        Format::Csv => parse_csv(body, limits)?,
        Format::Json => parse_json(body, limits)?,
    };
    if upload.rows.is_empty() {
        return Err(UploadError::Empty);
    }
    for row in &mut upload.rows {
        if row.problem.is_none() {
            row.problem = check_person(&row.person);
        }
    }
    flag_duplicates(&mut upload.rows);
    Ok(upload)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Email,
    Login,
    GivenName,
    FamilyName,
    Department,
    ManagerEmail,
    EmployeeNumber,
    JobTitle,
}

/// Our column for a header (case, spaces and dashes ignored; a few common spellings accepted).
fn column_for(header: &str) -> Option<Column> {
    let name = header.trim().to_lowercase().replace([' ', '-', '.'], "_");
    Some(match name.as_str() {
        "email" | "mail" | "e_mail" => Column::Email,
        "login" => Column::Login,
        "given_name" | "first_name" | "firstname" | "givenname" => Column::GivenName,
        "family_name" | "last_name" | "lastname" | "familyname" => Column::FamilyName,
        "department" => Column::Department,
        "manager_email" | "manager_mail" => Column::ManagerEmail,
        "employee_number" | "employeenumber" => Column::EmployeeNumber,
        "job_title" | "jobtitle" => Column::JobTitle,
        _ => return None,
    })
}

fn set(person: &mut PersonRow, column: Column, value: Option<String>) {
    let value = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    match column {
        Column::Email => person.email = value.unwrap_or_default(),
        Column::Login => person.login = value,
        Column::GivenName => person.given_name = value,
        Column::FamilyName => person.family_name = value,
        Column::Department => person.department = value,
        Column::ManagerEmail => person.manager_email = value,
        Column::EmployeeNumber => person.employee_number = value,
        Column::JobTitle => person.job_title = value,
    }
}

/// Spreadsheets in French locales save CSV with `;`: take whichever separator the header uses.
fn sniff_delimiter(body: &[u8]) -> u8 {
    let first_line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |d: u8| first_line.iter().filter(|b| **b == d).count();
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| (count(*d), *d == b','))
        .unwrap_or(b',')
}

fn parse_csv(body: &[u8], limits: &Limits) -> Result<Upload, UploadError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(sniff_delimiter(body))
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let headers = reader.byte_headers().map_err(|e| csv_error(&e, 1))?.clone();
    let mut columns = Vec::with_capacity(headers.len());
    let mut ignored = Vec::new();
    let mut seen = Vec::new();
    for raw in headers.iter() {
        let name = std::str::from_utf8(raw).map_err(|_| UploadError::NotUtf8 { line: 1 })?;
        let column = column_for(name);
        match column {
            Some(c) if seen.contains(&c) => {
                return Err(UploadError::DuplicateColumn(name.trim().to_string()))
            }
            Some(c) => seen.push(c),
            None if name.trim().is_empty() => {}
            None => ignored.push(name.trim().to_string()),
        }
        columns.push(column);
    }
    if !seen.contains(&Column::Email) {
        let found: Vec<String> = headers
            .iter()
            .map(|h| format!("`{}`", String::from_utf8_lossy(h).trim()))
            .collect();
        return Err(UploadError::MissingEmailColumn {
            found: if found.is_empty() {
                "none".into()
            } else {
                found.join(", ")
            },
        });
    }
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(&e, line)),
        }
        let line = record.position().map_or(line, |p| p.line());
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        if rows.len() >= limits.max_rows {
            return Err(UploadError::TooManyRows {
                line,
                limit: limits.max_rows,
            });
        }
        let mut person = PersonRow::default();
        for (field, column) in record.iter().zip(&columns) {
            let Some(column) = column else { continue };
            let text = std::str::from_utf8(field).map_err(|_| UploadError::NotUtf8 { line })?;
            set(&mut person, *column, Some(text.to_string()));
        }
        rows.push(UploadedRow {
            row_no: line,
            person,
            problem: None,
        });
    }
    Ok(Upload {
        rows,
        ignored_columns: ignored,
    })
}

fn csv_error(error: &csv::Error, line: u64) -> UploadError {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => UploadError::Csv {
            line: pos.as_ref().map_or(line, |p| p.line()),
            message: format!(
                "{len} fields where the header has {expected_len} (quote values that contain the separator)"
            ),
        },
        csv::ErrorKind::Utf8 { pos, .. } => UploadError::NotUtf8 {
            line: pos.as_ref().map_or(line, |p| p.line()),
        },
        _ => UploadError::Csv {
            line: error.position().map_or(line, |p| p.line()),
            message: error.to_string(),
        },
    }
}

fn parse_json(body: &[u8], limits: &Limits) -> Result<Upload, UploadError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| UploadError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string().split(" at line").next().unwrap_or("").into(),
    })?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut map) => match map.remove("users") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(UploadError::JsonShape(
                    "expected an array of people, or {\"users\": [...]}".into(),
                ))
            }
        },
        _ => {
            return Err(UploadError::JsonShape(
                "expected an array of people, or {\"users\": [...]}".into(),
            ))
        }
    };
    if items.len() > limits.max_rows {
        return Err(UploadError::TooManyRows {
            line: limits.max_rows as u64 + 1,
            limit: limits.max_rows,
        });
    }
    let mut rows = Vec::with_capacity(items.len());
    let mut ignored: Vec<String> = Vec::new();
    let mut any_email = false;
    for (i, item) in items.into_iter().enumerate() {
        let row_no = i as u64 + 1;
        let Value::Object(map) = item else {
            return Err(UploadError::JsonShape(format!(
                "person {row_no} is not an object"
            )));
        };
        let mut person = PersonRow::default();
        let mut problem = None;
        for (key, value) in map {
            let Some(column) = column_for(&key) else {
                if !ignored.contains(&key) {
                    ignored.push(key);
                }
                continue;
            };
            any_email |= column == Column::Email;
            let text = match value {
                Value::String(s) => Some(s),
                Value::Number(n) => Some(n.to_string()),
                Value::Null => None,
                _ => {
                    problem.get_or_insert(format!("`{key}` must be text"));
                    None
                }
            };
            set(&mut person, column, text);
        }
        rows.push(UploadedRow {
            row_no,
            person,
            problem,
        });
    }
    if !rows.is_empty() && !any_email {
        return Err(UploadError::NoEmailInJson);
    }
    Ok(Upload {
        rows,
        ignored_columns: ignored,
    })
}

/// What is wrong with a row on its own, if anything.
pub fn check_person(p: &PersonRow) -> Option<String> {
    let email = p.email.trim();
    if email.is_empty() {
        return Some("email is empty".into());
    }
    if !looks_like_email(email) {
        return Some(format!("email `{email}` is not an email address"));
    }
    if let Some(manager) = &p.manager_email {
        if !looks_like_email(manager) {
            return Some(format!("manager_email `{manager}` is not an email address"));
        }
        if manager.eq_ignore_ascii_case(email) {
            return Some("manager_email is the person's own email".into());
        }
    }
    if let Some(login) = &p.login {
        if login.chars().any(char::is_whitespace) {
            return Some(format!("login `{login}` contains spaces"));
        }
    }
    for (name, value) in [
        ("login", &p.login),
        ("given_name", &p.given_name),
        ("family_name", &p.family_name),
        ("department", &p.department),
        ("employee_number", &p.employee_number),
        ("job_title", &p.job_title),
    ] {
        if value
            .as_deref()
            .is_some_and(|v| v.chars().count() > MAX_FIELD_CHARS)
        {
            return Some(format!(
                "{name} is longer than {MAX_FIELD_CHARS} characters (Lucca's limit)"
            ));
        }
    }
    None
}

/// Each person once per file: a later row with the same email (or login) is refused; when it
/// also disagrees with the first, the first is refused too, since nobody can tell which is right.
fn flag_duplicates(rows: &mut [UploadedRow]) {
    let mut first_by_email: HashMap<String, usize> = HashMap::new();
    let mut first_by_login: HashMap<String, usize> = HashMap::new();
    let mut conflicts: Vec<(usize, u64)> = Vec::new();
    for i in 0..rows.len() {
        if rows[i].problem.is_some() {
            continue;
        }
        let email = rows[i].person.email_key();
        if let Some(&first) = first_by_email.get(&email) {
            rows[i].problem = Some(format!(
                "the same email as line {} (list each person once)",
                rows[first].row_no
            ));
            if !same_values(&rows[first].person, &rows[i].person) {
                conflicts.push((first, rows[i].row_no));
            }
            continue;
        }
        if let Some(login) = rows[i].person.login.as_deref().map(str::to_lowercase) {
            if let Some(&first) = first_by_login.get(&login) {
                rows[i].problem = Some(format!(
                    "the same login as line {} (a login belongs to one person)",
                    rows[first].row_no
                ));
                conflicts.push((first, rows[i].row_no));
                continue;
            }
            first_by_login.insert(login, i);
        }
        first_by_email.insert(email, i);
    }
    for (first, again) in conflicts {
        if rows[first].problem.is_none() {
            rows[first].problem = Some(format!(
                "listed again on line {again} with other values: keep one row"
            ));
        }
    }
}

fn same_values(a: &PersonRow, b: &PersonRow) -> bool {
    let norm = |p: &PersonRow| {
        let mut p = p.clone();
        p.email = p.email_key();
        p
    };
    norm(a) == norm(b)
}

/// The order rows are processed in: people whose manager is not in the file first, then the
/// people they manage, and so on, so a manager created by this job already exists when their
/// reports are written. Ties keep the file order; a cycle falls back to the file order (its
/// rows, and the rows below it, come first with the roots).
///
/// Each row's depth is computed once (walking up to the first row already known), so a
/// 50,000-person chain of managers takes linear time rather than the quadratic walk it used to.
pub fn processing_order(rows: &[UploadedRow]) -> Vec<u64> {
    let index: HashMap<String, usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.problem.is_none())
        .map(|(i, r)| (r.person.email_key(), i))
        .collect();
    let manager_of: Vec<Option<usize>> = rows
        .iter()
        .map(|r| {
            r.person
                .manager_email
                .as_deref()
                .and_then(|m| index.get(&m.trim().to_lowercase()).copied())
        })
        .collect();
    #[derive(Clone, Copy)]
    enum Depth {
        Unknown,
        OnPath,
        /// Hops up to a row whose manager is not in the file.
        Known(usize),
        /// The chain above ends in a cycle.
        Cycle,
    }
    let mut depth = vec![Depth::Unknown; rows.len()];
    let mut path = Vec::new();
    for start in 0..rows.len() {
        let mut at = start;
        let above = loop {
            match depth[at] {
                Depth::Known(d) => break Some(d),
                Depth::Cycle | Depth::OnPath => break None,
                Depth::Unknown => {}
            }
            depth[at] = Depth::OnPath;
            path.push(at);
            match manager_of[at] {
                Some(manager) => at = manager,
                None => {
                    // `at` is a root: its depth is 0, one less than what the loop below gives.
                    path.pop();
                    depth[at] = Depth::Known(0);
                    break Some(0);
                }
            }
        };
        let mut d = above;
        while let Some(i) = path.pop() {
            d = d.map(|d| d + 1);
            depth[i] = d.map_or(Depth::Cycle, Depth::Known);
        }
    }
    let mut order: Vec<(usize, usize)> = depth
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Depth::Known(d) => (*d, i),
            _ => (0, i),
        })
        .collect();
    order.sort();
    let mut seq = vec![0u64; rows.len()];
    for (position, (_, i)) in order.into_iter().enumerate() {
        seq[i] = position as u64;
    }
    seq
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_bytes: 1 << 20,
        max_rows: 100,
    };

    fn csv(text: &str) -> Result<Upload, UploadError> {
        parse_upload(Some("text/csv; charset=utf-8"), text.as_bytes(), &LIMITS)
    }

    #[test]
    fn reads_csv_with_any_column_order_bom_and_semicolons() {
        let up = csv("\u{feff}Family Name;EMAIL;Given_Name;phone\n Martin ;Alice@Acme.test;Alice;0102\n\n;;;\nDurand;bob@acme.test;;\n").unwrap();
        assert_eq!(up.ignored_columns, ["phone"]);
        assert_eq!(up.rows.len(), 2);
        let alice = &up.rows[0];
        assert_eq!(alice.row_no, 2);
        assert_eq!(alice.person.email, "Alice@Acme.test");
        assert_eq!(alice.person.family_name.as_deref(), Some("Martin"));
        assert_eq!(alice.problem, None);
        assert_eq!(up.rows[1].row_no, 5, "blank lines keep the numbering");
        assert_eq!(up.rows[1].person.given_name, None, "empty cells are absent");
    }

    #[test]
    fn quoted_values_may_hold_separators_and_newlines() {
        let up = csv("email,department\n\"a@acme.test\",\"R&D, Paris\"\n\"b@acme.test\",\"two\nlines\"\nc@acme.test,x\n").unwrap();
        assert_eq!(up.rows[0].person.department.as_deref(), Some("R&D, Paris"));
        assert_eq!(
            up.rows.iter().map(|r| r.row_no).collect::<Vec<_>>(),
            [2, 3, 5]
        );
    }

    #[test]
    fn whole_file_problems_name_the_line() {
        let err = csv("mail_address,name\nx@acme.test,X\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: no `email` column (columns found: `mail_address`, `name`): the header row must name one"
        );
        let err = csv("email,given_name\na@acme.test,A\nb@acme.test,B,extra\n").unwrap_err();
        assert_eq!(
            err,
            UploadError::Csv {
                line: 3,
                message:
                    "3 fields where the header has 2 (quote values that contain the separator)"
                        .into()
            }
        );
        assert!(matches!(
            csv("email\n\"a@acme.test\n"),
            Err(UploadError::Csv { .. }) | Err(UploadError::Empty) | Ok(_)
        ));
        assert_eq!(csv("email\n").unwrap_err(), UploadError::Empty);
        assert_eq!(
            csv("email,Mail\n").unwrap_err(),
            UploadError::DuplicateColumn("Mail".into())
        );
        let bad_utf8 = b"email\nok@acme.test\n\xff@acme.test\n";
        assert_eq!(
            parse_upload(Some("text/csv"), bad_utf8, &LIMITS).unwrap_err(),
            UploadError::NotUtf8 { line: 3 }
        );
        let many: String = std::iter::once("email\n".to_string())
            .chain((0..101).map(|i| format!("p{i}@acme.test\n")))
            .collect();
        assert_eq!(
            csv(&many).unwrap_err(),
            UploadError::TooManyRows {
                line: 102,
                limit: 100
            }
        );
        let small = Limits {
            max_bytes: 10,
            max_rows: 5,
        };
        assert_eq!(
            parse_upload(None, b"email\na@acme.test\n", &small).unwrap_err(),
            UploadError::TooLarge { limit: 10 }
        );
        assert!(matches!(
            parse_upload(Some("multipart/form-data; boundary=x"), b"", &LIMITS),
            Err(UploadError::UnsupportedType(_))
        ));
    }

    #[test]
    fn reads_json_arrays_and_users_objects() {
        let up = parse_upload(
            Some("application/json"),
            br#"{"users": [{"email": "a@acme.test", "employee_number": 42, "shoe": 44}, {"email": "b@acme.test", "login": ["x"]}]}"#,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(up.rows[0].person.employee_number.as_deref(), Some("42"));
        assert_eq!(up.rows[0].row_no, 1);
        assert_eq!(up.ignored_columns, ["shoe"]);
        assert_eq!(up.rows[1].problem.as_deref(), Some("`login` must be text"));
        let sniffed = parse_upload(None, br#" [{"email": "a@acme.test"}]"#, &LIMITS).unwrap();
        assert_eq!(sniffed.rows.len(), 1);
        let err = parse_upload(Some("application/json"), b"[{\"email\": }]", &LIMITS).unwrap_err();
        assert!(
            matches!(
                err,
                UploadError::Json {
                    line: 1,
                    column: 12,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            parse_upload(Some("application/json"), br#"[{"name": "x"}]"#, &LIMITS).unwrap_err(),
            UploadError::NoEmailInJson
        );
        assert!(matches!(
            parse_upload(Some("application/json"), b"42", &LIMITS),
            Err(UploadError::JsonShape(_))
        ));
        assert_eq!(
            parse_upload(Some("application/json"), b"[]", &LIMITS).unwrap_err(),
            UploadError::Empty
        );
    }

    #[test]
    fn invalid_rows_are_kept_with_their_reason() {
        let up = csv("email,manager_email,login\nnot-an-email,,\nok@acme.test,boss,\nself@acme.test,SELF@acme.test,\n,,\nsp@acme.test,,a b\n").unwrap();
        let problems: Vec<_> = up.rows.iter().map(|r| r.problem.clone()).collect();
        assert_eq!(
            problems,
            [
                Some("email `not-an-email` is not an email address".to_string()),
                Some("manager_email `boss` is not an email address".into()),
                Some("manager_email is the person's own email".into()),
                Some("login `a b` contains spaces".into()),
            ]
        );
    }

    #[test]
    fn duplicates_within_the_file_are_flagged() {
        let up = csv("email,given_name,login\na@acme.test,A,\nA@acme.test,A,\nb@acme.test,B,\nb@acme.test,Bee,\nc@acme.test,,cc\nd@acme.test,,CC\n").unwrap();
        let problems: Vec<_> = up.rows.iter().map(|r| r.problem.as_deref()).collect();
        assert_eq!(
            problems[0], None,
            "an identical repeat leaves the first alone"
        );
        assert_eq!(
            problems[1],
            Some("the same email as line 2 (list each person once)")
        );
        assert_eq!(
            problems[2],
            Some("listed again on line 5 with other values: keep one row")
        );
        assert_eq!(
            problems[3],
            Some("the same email as line 4 (list each person once)")
        );
        assert_eq!(
            problems[4],
            Some("listed again on line 7 with other values: keep one row")
        );
        assert_eq!(
            problems[5],
            Some("the same login as line 6 (a login belongs to one person)")
        );
    }

    #[test]
    fn managers_come_before_their_reports() {
        let up = csv("email,manager_email\nemp@acme.test,mgr@acme.test\nmgr@acme.test,ceo@acme.test\nceo@acme.test,\nx@acme.test,outside@acme.test\n").unwrap();
        let seq = processing_order(&up.rows);
        assert_eq!(seq, [3, 2, 0, 1]);
        let cycle =
            csv("email,manager_email\na@acme.test,b@acme.test\nb@acme.test,a@acme.test\n").unwrap();
        assert_eq!(processing_order(&cycle.rows), [0, 1]);
    }

    /// The former, quadratic walk: the reference the memoised one must agree with.
    fn walked_order(rows: &[UploadedRow]) -> Vec<u64> {
        let index: HashMap<String, usize> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.problem.is_none())
            .map(|(i, r)| (r.person.email_key(), i))
            .collect();
        let depth = |start: usize| -> usize {
            let (mut depth, mut at) = (0, start);
            while let Some(manager) = rows[at]
                .person
                .manager_email
                .as_deref()
                .and_then(|m| index.get(&m.trim().to_lowercase()))
            {
                depth += 1;
                at = *manager;
                if depth > rows.len() {
                    return 0;
                }
            }
            depth
        };
        let mut order: Vec<(usize, usize)> = (0..rows.len()).map(|i| (depth(i), i)).collect();
        order.sort();
        let mut seq = vec![0u64; rows.len()];
        for (position, (_, i)) in order.into_iter().enumerate() {
            seq[i] = position as u64;
        }
        seq
    }

    #[test]
    fn the_order_agrees_with_walking_each_chain() {
        // Small random forests with cycles, self-loops, unknown managers and invalid rows.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..500 {
            let n = 1 + next(12);
            let mut text = String::from("email,manager_email\n");
            for i in 0..n {
                let manager = match next(4) {
                    0 => String::new(),
                    1 => format!("outside{}@acme.test", next(3)),
                    _ => format!("p{}@acme.test", next(n)),
                };
                let email = if next(10) == 0 {
                    "bad".to_string()
                } else {
                    format!("p{i}@acme.test")
                };
                text.push_str(&format!("{email},{manager}\n"));
            }
            let up = csv(&text).unwrap();
            assert_eq!(processing_order(&up.rows), walked_order(&up.rows), "{text}");
        }
    }

    #[test]
    fn a_long_manager_chain_is_ordered_in_linear_time() {
        let n = 50_000;
        let mut text = String::from("email,manager_email\n");
        for i in 0..n {
            text.push_str(&format!("p{i}@acme.test,p{}@acme.test\n", i + 1));
        }
        let limits = Limits {
            max_bytes: 5 << 20,
            max_rows: n,
        };
        let up = parse_upload(Some("text/csv"), text.as_bytes(), &limits).unwrap();
        let started = std::time::Instant::now();
        let seq = processing_order(&up.rows);
        // The quadratic walk took over 15 minutes here (debug build); this takes milliseconds.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(seq[n - 1], 0, "the top manager first");
        assert_eq!(seq[0], n as u64 - 1, "the bottom report last");
    }
}

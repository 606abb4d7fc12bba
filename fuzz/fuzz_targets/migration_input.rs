//! The migration upload reader: arbitrary bytes as CSV, as JSON, and sniffed. Whatever it
//! accepts must hold together: bounded rows, a processing order that is a permutation, rows
//! flagged valid that really are, and a CSV report with no formula cell.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle::provisioning::migration::input::{
    check_person, parse_upload, processing_order, Limits,
};
use passerelle::provisioning::migration::report::{report_csv, ReportRow};

const LIMITS: Limits = Limits {
    max_bytes: 1 << 20,
    max_rows: 2000,
};

fuzz_target!(|data: &[u8]| {
    for content_type in [Some("text/csv"), Some("application/json"), None] {
        let upload = match parse_upload(content_type, data, &LIMITS) {
            Ok(upload) => upload,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                continue;
            }
        };
        assert!(!upload.rows.is_empty() && upload.rows.len() <= LIMITS.max_rows);
        let order = processing_order(&upload.rows);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert!(
            sorted.iter().enumerate().all(|(i, s)| *s == i as u64),
            "the processing order is a permutation: {order:?}"
        );
        let rows: Vec<ReportRow> = upload
            .rows
            .iter()
            .map(|r| {
                if r.problem.is_none() {
                    assert_eq!(check_person(&r.person), None);
                }
                ReportRow {
                    row: r.row_no as i64,
                    email: r.person.email.clone(),
                    class: None,
                    done: false,
                    fields: Vec::new(),
                    changes: Vec::new(),
                    lucca_id: None,
                    message: r.problem.clone(),
                    notification: None,
                    input: Some(r.person.clone()),
                    findings: Vec::new(),
                }
            })
            .collect();
        let csv = report_csv(&rows).expect("the report writes");
        let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_slice());
        for record in reader.records() {
            let record = record.expect("the report reads back");
            for cell in record.iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "formula cell {cell:?}"
                );
            }
        }
    }
});

//! The vocabulary of a migration: what a row says, what became of it, where a job stands.

use serde::{Deserialize, Serialize};

/// One person as the uploaded file describes them. Only `email` is required; every other
/// value is written to Lucca only when given (an empty cell never erases anything).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonRow {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
}

impl PersonRow {
    /// Trimmed, lower-cased: how emails are compared everywhere (Lucca ignores case too).
    pub fn email_key(&self) -> String {
        self.email.trim().to_lowercase()
    }
}

/// What happened (or, in a dry run, would happen) to one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The account exists, is active and already carries the row's values.
    Ready,
    WillCreate,
    Created,
    WillUpdate,
    Updated,
    /// The contract has ended: Lucca refuses the sign-in and the account is left alone.
    Leaver,
    /// The contract starts later: SSO works from that day.
    NotStarted,
    /// Several Lucca accounts share the identifier: Lucca refuses the sign-in.
    Duplicate,
    /// The identifier points at an account that does not fit the row (another person's mail
    /// or login): nothing is written until a person decides.
    IdentifierMismatch,
    /// Nobody can sign in as this person: not in the local directory, and no upstream IdP.
    NotInDirectory,
    InvalidRow,
    /// Lucca refused the write (its message is in the report).
    Failed,
}

impl Class {
    pub const ALL: [Class; 12] = [
        Class::Ready,
        Class::WillCreate,
        Class::Created,
        Class::WillUpdate,
        Class::Updated,
        Class::Leaver,
        Class::NotStarted,
        Class::Duplicate,
        Class::IdentifierMismatch,
        Class::NotInDirectory,
        Class::InvalidRow,
        Class::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Ready => "ready",
            Class::WillCreate => "will_create",
            Class::Created => "created",
            Class::WillUpdate => "will_update",
            Class::Updated => "updated",
            Class::Leaver => "leaver",
            Class::NotStarted => "not_started",
            Class::Duplicate => "duplicate",
            Class::IdentifierMismatch => "identifier_mismatch",
            Class::NotInDirectory => "not_in_directory",
            Class::InvalidRow => "invalid_row",
            Class::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// Lucca's own refusal of this person's sign-in ("No user found", "Several users"): the
    /// verdict an admin most needs to see, never hidden behind a directory finding.
    pub fn is_lucca_refusal(self) -> bool {
        matches!(
            self,
            Class::Leaver | Class::NotStarted | Class::Duplicate | Class::IdentifierMismatch
        )
    }

    /// Someone who can sign in through SSO once the job is applied (and may be told so).
    pub fn is_migrated(self) -> bool {
        matches!(self, Class::Ready | Class::Created | Class::Updated)
    }
}

/// One thing found about a row. A row's findings come most important first; the first is its
/// class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub class: Class,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Cancelled,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<JobStatus> {
        [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Cancelled,
            JobStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Cancelled | JobStatus::Failed
        )
    }
}

/// One owned field Passerelle sets (or would set) in Lucca, with the value it replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
}

impl FieldChange {
    pub fn new(field: &str, from: Option<&str>, to: impl Into<String>) -> FieldChange {
        FieldChange {
            field: field.into(),
            from: from.map(str::to_owned),
            to: to.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for class in Class::ALL {
            assert_eq!(Class::parse(class.as_str()), Some(class));
            assert_eq!(
                serde_json::to_value(class).unwrap(),
                serde_json::json!(class.as_str())
            );
        }
        assert_eq!(JobStatus::parse("cancelled"), Some(JobStatus::Cancelled));
        assert!(JobStatus::Failed.is_finished() && !JobStatus::Running.is_finished());
    }
}

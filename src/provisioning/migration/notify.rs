//! The optional "you now sign in to Lucca through SSO" email, sent through `[smtp]` once a
//! person is migrated. The text is `templates/migration_email.txt` (read from
//! `server.templates_dir` when a job starts sending, so it can be reworded without rebuilding or
//! restarting); its first
//! line, `Subject: …`, is the subject.

use std::path::Path;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;

use crate::config::SmtpConfig;

pub const TEMPLATE_NAME: &str = "migration_email.txt";
const BUILTIN_TEMPLATE: &str = include_str!("../../../templates/migration_email.txt");
const DEFAULT_SUBJECT: &str = "Sign in to Lucca with your company account";

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("smtp.host is not configured")]
    NotConfigured,
    #[error("smtp: {0}")]
    Config(String),
    #[error("the email template {TEMPLATE_NAME} does not render: {0}")]
    Template(String),
    #[error("`{0}` is not an address an email can be sent to")]
    Recipient(String),
    #[error("the SMTP relay refused the message: {0}")]
    Send(String),
}

/// What the template can use.
#[derive(Debug, Clone, Serialize)]
pub struct EmailContext {
    pub email: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// `created`, `updated` or `ready`.
    pub outcome: &'static str,
    /// The Lucca tenant (`lucca.base_url`).
    pub lucca_url: Option<String>,
    /// Passerelle's sign-in page.
    pub signin_url: Option<String>,
}

/// The `[smtp]` relay and sender: built once at start, so a relay that cannot be set up stops
/// the start instead of failing the first job that sends.
#[derive(Clone)]
pub struct SmtpRelay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpRelay {
    /// The relay `[smtp]` describes; [`NotifyError::NotConfigured`] without a host.
    pub fn from_config(smtp: &SmtpConfig) -> Result<SmtpRelay, NotifyError> {
        let host = smtp
            .host
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or(NotifyError::NotConfigured)?;
        let from: Mailbox = smtp
            .from
            .as_deref()
            .ok_or_else(|| NotifyError::Config("smtp.from is required".into()))?
            .parse()
            .map_err(|e| NotifyError::Config(format!("smtp.from: {e}")))?;
        let builder = if smtp.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| NotifyError::Config(format!("smtp.host: {e}")))?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        };
        let mut builder = builder.port(smtp.port).timeout(Some(smtp.timeout));
        if let Some(user) = &smtp.username {
            let password = smtp
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(SmtpRelay {
            transport: builder.build(),
            from,
        })
    }
}

/// The relay with the email text of one job.
pub struct Mailer {
    relay: SmtpRelay,
    template: String,
}

impl Mailer {
    /// The template is read from `templates_dir` (or is the built-in one) each time a job starts
    /// sending, so it can be reworded without a restart.
    pub fn new(relay: &SmtpRelay, templates_dir: &Path) -> Mailer {
        let template = std::fs::read_to_string(templates_dir.join(TEMPLATE_NAME))
            .unwrap_or_else(|_| BUILTIN_TEMPLATE.to_string());
        Mailer {
            relay: relay.clone(),
            template,
        }
    }

    pub async fn send(&self, context: &EmailContext) -> Result<(), NotifyError> {
        let (subject, body) = render(&self.template, context)?;
        let to: Mailbox = context
            .email
            .parse()
            .map_err(|_| NotifyError::Recipient(context.email.clone()))?;
        let message = Message::builder()
            .from(self.relay.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| NotifyError::Send(e.to_string()))?;
        self.relay
            .transport
            .send(message)
            .await
            .map_err(|e| NotifyError::Send(e.to_string()))?;
        Ok(())
    }
}

/// The subject and body of the email for `context`.
pub fn render(template: &str, context: &EmailContext) -> Result<(String, String), NotifyError> {
    let env = minijinja::Environment::new();
    let text = env
        .render_str(template, context)
        .map_err(|e| NotifyError::Template(e.to_string()))?;
    let text = text.trim_start_matches(['\r', '\n']);
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    Ok(match first.strip_prefix("Subject:") {
        Some(subject) => (
            subject.trim().to_string(),
            rest.trim_start_matches(['\r', '\n']).to_string(),
        ),
        None => (DEFAULT_SUBJECT.to_string(), text.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(outcome: &'static str) -> EmailContext {
        EmailContext {
            email: "alice@acme.test".into(),
            given_name: Some("Alice".into()),
            family_name: None,
            outcome,
            lucca_url: Some("https://acme.ilucca.net".into()),
            signin_url: Some("https://sso.acme.test/login".into()),
        }
    }

    #[test]
    fn the_builtin_template_renders_a_subject_and_a_body() {
        let (subject, body) = render(BUILTIN_TEMPLATE, &context("created")).unwrap();
        assert_eq!(subject, DEFAULT_SUBJECT);
        assert!(body.starts_with("Hello Alice,"), "{body}");
        assert!(body.contains("https://acme.ilucca.net"), "{body}");
        assert!(body.contains("has just been created"), "{body}");
        let (_, body) = render(BUILTIN_TEMPLATE, &context("ready")).unwrap();
        assert!(!body.contains("created"), "{body}");
    }

    #[test]
    fn a_template_without_subject_line_gets_the_default_one() {
        let (subject, body) = render("Hi {{ email }}", &context("ready")).unwrap();
        assert_eq!(
            (subject.as_str(), body.as_str()),
            (DEFAULT_SUBJECT, "Hi alice@acme.test")
        );
        assert!(matches!(
            render("{% if %}", &context("ready")),
            Err(NotifyError::Template(_))
        ));
    }

    #[test]
    fn a_relay_needs_a_host_and_a_sender() {
        let mut smtp = SmtpConfig::default();
        assert!(matches!(
            SmtpRelay::from_config(&smtp),
            Err(NotifyError::NotConfigured)
        ));
        smtp.host = Some("127.0.0.1".into());
        assert!(matches!(
            SmtpRelay::from_config(&smtp),
            Err(NotifyError::Config(_))
        ));
        smtp.from = Some("IT <it@acme.test>".into());
        smtp.starttls = false;
        let relay = SmtpRelay::from_config(&smtp).unwrap();
        let mailer = Mailer::new(&relay, Path::new("/nonexistent"));
        assert_eq!(mailer.template, BUILTIN_TEMPLATE);
    }
}

//! Templates a person sees, read at run time from `server.templates_dir` so an admin can
//! rebrand them without rebuilding; a built-in copy serves any file that is not there. Every
//! template gets `lang` (the request's language), `t(key, **args)` (a message from the
//! catalogues in that language), `csp_nonce` and `request_id`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::Kwargs;
use minijinja::{Environment, State};

use super::i18n::{current_lang, Catalogues, Lang, Message};

pub struct Templates {
    env: Environment<'static>,
    catalogues: Arc<Catalogues>,
}

/// The built-in copies: the same files as the repository's `templates/`.
const BUILTIN: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("message.html", include_str!("../../templates/message.html")),
    ("waiting.html", include_str!("../../templates/waiting.html")),
    ("logout.html", include_str!("../../templates/logout.html")),
    (
        "form_post.html",
        include_str!("../../templates/form_post.html"),
    ),
    ("landing.html", include_str!("../../templates/landing.html")),
    (
        "demo_callback.html",
        include_str!("../../templates/demo_callback.html"),
    ),
    // The admin console (src/admin/).
    (
        "admin/layout.html",
        include_str!("../../templates/admin/layout.html"),
    ),
    (
        "admin/forbidden.html",
        include_str!("../../templates/admin/forbidden.html"),
    ),
    (
        "admin/status.html",
        include_str!("../../templates/admin/status.html"),
    ),
    (
        "admin/migrations.html",
        include_str!("../../templates/admin/migrations.html"),
    ),
    (
        "admin/migration.html",
        include_str!("../../templates/admin/migration.html"),
    ),
    (
        "admin/people.html",
        include_str!("../../templates/admin/people.html"),
    ),
    (
        "admin/audit.html",
        include_str!("../../templates/admin/audit.html"),
    ),
    (
        "admin/connections.html",
        include_str!("../../templates/admin/connections.html"),
    ),
    (
        "admin/keys.html",
        include_str!("../../templates/admin/keys.html"),
    ),
];

/// For the one page written without a template (the template failed).
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Templates {
    pub fn new(dir: &Path) -> Templates {
        let (catalogues, problems) = Catalogues::load(dir);
        for problem in problems {
            tracing::error!(%problem, "message catalogue not used (the built-in messages are)");
        }
        let catalogues = Arc::new(catalogues);
        let dir: PathBuf = dir.to_path_buf();
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_loader(move |name| {
            if name.contains("..") || name.starts_with('/') {
                return Ok(None);
            }
            match std::fs::read_to_string(dir.join(name)) {
                Ok(text) => Ok(Some(text)),
                Err(_) => Ok(BUILTIN
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, t)| t.to_string())),
            }
        });
        let c = catalogues.clone();
        env.add_function(
            "t",
            move |state: &State, key: &str, kwargs: Kwargs| -> Result<String, minijinja::Error> {
                let lang = state
                    .lookup("lang")
                    .and_then(|l| l.as_str().and_then(Lang::from_tag))
                    .unwrap_or_default();
                let mut args = Vec::new();
                for name in kwargs.args() {
                    let value: minijinja::Value = kwargs.get(name)?;
                    args.push((name, value.to_string()));
                }
                Ok(c.text(lang, key, &args))
            },
        );
        Templates { env, catalogues }
    }

    /// Adds a value every template sees (e.g. `lucca_url`, the way back to Lucca).
    pub fn with_global(mut self, name: &'static str, value: minijinja::Value) -> Templates {
        self.env.add_global(name, value);
        self
    }

    /// The catalogues the templates use (built-in, with the admin's overrides).
    pub fn catalogues(&self) -> &Catalogues {
        &self.catalogues
    }

    /// A message in the language of the request being answered.
    pub fn message(&self, message: &Message) -> String {
        message.render(&self.catalogues)
    }

    /// Render a page. A broken custom template falls back to a plain message instead of a 500.
    /// Added to the context: `csp_nonce`, the nonce of the response being answered, for
    /// `<script nonce>` and `<style nonce>` (inline code without it does not run); `lang`, the
    /// request's language; `request_id`, the reference a person quotes to support.
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> String {
        let ctx = minijinja::context! {
            csp_nonce => super::current_nonce(),
            lang => current_lang().code(),
            request_id => super::current_request_id(),
            ..ctx
        };
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => html,
            Err(err) => {
                tracing::error!(template = name, error = %err, "template failed to render");
                let lang = current_lang();
                format!(
                    "<!doctype html><html lang=\"{}\"><title>Passerelle</title><p>{}</p>",
                    lang.code(),
                    html_escape(&self.catalogues.text(lang, "error.template", &[]))
                )
            }
        }
    }
}

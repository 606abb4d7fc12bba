//! Templates a person sees, read at run time from `server.templates_dir` so an admin can
//! rebrand them without rebuilding; a built-in copy serves any file that is not there.

use std::path::{Path, PathBuf};

use minijinja::Environment;

pub struct Templates {
    env: Environment<'static>,
}

/// The built-in copies: the same files as the repository's `templates/`.
const BUILTIN: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("message.html", include_str!("../../templates/message.html")),
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

impl Templates {
    pub fn new(dir: &Path) -> Templates {
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
        Templates { env }
    }

    /// Render a page. A broken custom template falls back to a plain message instead of a 500.
    /// `csp_nonce` is added to the context: the nonce of the response being answered, for
    /// `<script nonce>` and `<style nonce>` (inline code without it does not run).
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> String {
        let ctx = minijinja::context! { csp_nonce => super::current_nonce(), ..ctx };
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => html,
            Err(err) => {
                tracing::error!(template = name, error = %err, "template failed to render");
                "<!doctype html><title>Passerelle</title><p>This page could not be displayed (template error, see the server log).</p>".to_string()
            }
        }
    }
}

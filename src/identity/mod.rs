//! Who a person is ([`Identity`], from the local directory or an upstream IdP) and what is sent
//! about them ([`Claims`]), joined by one pure function: [`map_claims`], the group→role table.
//! Only the pipeline (`crate::pipeline`) calls it, once per sign-in; both protocol front ends
//! release what it computed, so OIDC and SAML always agree.
//!
//! May import `config/` only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{ClaimsConfig, RoleMappingRow, UnmappedGroups};

/// Where an identity was authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Local,
    Upstream {
        name: String,
        issuer: String,
        subject: String,
    },
}

/// A person as authenticated, before any mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Stable, never reassigned: the `sub` claim and the link to the Lucca account.
    pub subject: String,
    pub email: String,
    pub email_verified: bool,
    pub login: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub employee_number: Option<String>,
    pub department: Option<String>,
    pub manager_email: Option<String>,
    pub job_title: Option<String>,
    pub groups: Vec<String>,
    pub source: Source,
}

/// What is released about a person: normalised values and the mapped roles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub subject: String,
    /// Trimmed and lower-cased.
    pub email: String,
    pub email_verified: bool,
    pub login: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub employee_number: Option<String>,
    pub department: Option<String>,
    pub manager_email: Option<String>,
    pub job_title: Option<String>,
    /// Default roles, then mapped roles in table order, then (if configured) unmapped groups;
    /// no duplicates. Sent as the `groups` claim / attribute.
    pub roles: Vec<String>,
    /// The mapped roles of rows that name a module, per module.
    pub roles_by_module: BTreeMap<String, Vec<String>>,
    /// Roles left out because the list exceeded `claims.max_roles`.
    pub roles_dropped: usize,
}

/// Why each group of the identity did or did not become a role (for the preview).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupTrace {
    pub group: String,
    /// The table rows (by index) that matched, with the role each gave.
    pub rows: Vec<MatchedRow>,
    pub outcome: GroupOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedRow {
    pub row: usize,
    pub role: String,
    pub module: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupOutcome {
    Mapped,
    PassedThrough,
    DroppedUnmapped,
}

/// The result of mapping: the claims and the trace that explains them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapped {
    pub claims: Claims,
    pub trace: Vec<GroupTrace>,
}

/// The one place where an identity becomes claims.
pub fn map_claims(
    identity: &Identity,
    table: &[RoleMappingRow],
    settings: &ClaimsConfig,
) -> Mapped {
    let mut roles: Vec<String> = Vec::new();
    let push = |roles: &mut Vec<String>, role: &str| {
        let role = role.trim();
        if !role.is_empty() && !roles.iter().any(|r| r == role) {
            roles.push(role.to_string());
        }
    };
    for role in &settings.default_roles {
        push(&mut roles, role);
    }
    let mut by_module: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut trace = Vec::new();
    let mut passthrough = Vec::new();
    let groups = normalise_list(&identity.groups);
    for group in &groups {
        let rows: Vec<MatchedRow> = table
            .iter()
            .enumerate()
            .filter(|(_, row)| row.group.trim() == group)
            .map(|(i, row)| MatchedRow {
                row: i,
                role: row.role.trim().to_string(),
                module: row.module.as_ref().map(|m| m.trim().to_string()),
            })
            .collect();
        let outcome = if !rows.is_empty() {
            GroupOutcome::Mapped
        } else if settings.unmapped_groups == UnmappedGroups::PassThrough {
            passthrough.push(group.clone());
            GroupOutcome::PassedThrough
        } else {
            GroupOutcome::DroppedUnmapped
        };
        trace.push(GroupTrace {
            group: group.clone(),
            rows,
            outcome,
        });
    }
    // Table order, not group order, decides the order of roles: the admin controls it.
    for (i, row) in table.iter().enumerate() {
        if trace.iter().any(|t| t.rows.iter().any(|m| m.row == i)) {
            push(&mut roles, &row.role);
            if let Some(module) = row
                .module
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
            {
                let list = by_module.entry(module.to_string()).or_default();
                let role = row.role.trim();
                if !list.iter().any(|r| r == role) {
                    list.push(role.to_string());
                }
            }
        }
    }
    for group in &passthrough {
        push(&mut roles, group);
    }
    let roles_dropped = roles.len().saturating_sub(settings.max_roles);
    roles.truncate(settings.max_roles);

    let claims = Claims {
        subject: identity.subject.clone(),
        email: identity.email.trim().to_lowercase(),
        email_verified: identity.email_verified,
        login: clean(&identity.login),
        given_name: clean(&identity.given_name),
        family_name: clean(&identity.family_name),
        employee_number: clean(&identity.employee_number),
        department: clean(&identity.department),
        manager_email: clean(&identity.manager_email).map(|m| m.to_lowercase()),
        job_title: clean(&identity.job_title),
        roles,
        roles_by_module: by_module,
        roles_dropped,
    };
    Mapped { claims, trace }
}

fn clean(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn normalise_list(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let v = v.trim();
        if !v.is_empty() && !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(groups: &[&str]) -> Identity {
        Identity {
            subject: "alice".into(),
            email: "  Alice@ACME.test ".into(),
            email_verified: true,
            login: None,
            given_name: Some(" Alice ".into()),
            family_name: Some("Martin".into()),
            employee_number: Some("".into()),
            department: None,
            manager_email: Some("Bob@Acme.test".into()),
            job_title: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            source: Source::Local,
        }
    }

    fn row(group: &str, role: &str, module: Option<&str>) -> RoleMappingRow {
        RoleMappingRow {
            group: group.into(),
            role: role.into(),
            module: module.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn mapping_table_cases() {
        let figgo = vec![
            row("corp-managers", "validateur_n1", Some("figgo")),
            row("corp-hr", "administrateur_rh", Some("figgo")),
            row("corp-employees", "collaborateur", Some("figgo")),
            row("corp-hr", "view_bulletins", Some("pagga")),
            row("corp-managers", "collaborateur", None),
        ];
        struct Case {
            name: &'static str,
            groups: &'static [&'static str],
            unmapped: UnmappedGroups,
            defaults: &'static [&'static str],
            max: usize,
            roles: &'static [&'static str],
            dropped: usize,
        }
        let cases = [
            Case {
                name: "no groups",
                groups: &[],
                unmapped: UnmappedGroups::Drop,
                defaults: &[],
                max: 100,
                roles: &[],
                dropped: 0,
            },
            Case {
                name: "one group",
                groups: &["corp-hr"],
                unmapped: UnmappedGroups::Drop,
                defaults: &[],
                max: 100,
                roles: &["administrateur_rh", "view_bulletins"],
                dropped: 0,
            },
            Case {
                name: "union without duplicates, table order",
                groups: &["corp-employees", "corp-managers"],
                unmapped: UnmappedGroups::Drop,
                defaults: &[],
                max: 100,
                roles: &["validateur_n1", "collaborateur"],
                dropped: 0,
            },
            Case {
                name: "unmapped dropped",
                groups: &["corp-hr", "nobody-maps-me"],
                unmapped: UnmappedGroups::Drop,
                defaults: &[],
                max: 100,
                roles: &["administrateur_rh", "view_bulletins"],
                dropped: 0,
            },
            Case {
                name: "unmapped passed through after mapped",
                groups: &["nobody-maps-me", "corp-hr"],
                unmapped: UnmappedGroups::PassThrough,
                defaults: &[],
                max: 100,
                roles: &["administrateur_rh", "view_bulletins", "nobody-maps-me"],
                dropped: 0,
            },
            Case {
                name: "defaults first, not duplicated",
                groups: &["corp-employees"],
                unmapped: UnmappedGroups::Drop,
                defaults: &["collaborateur", "everyone"],
                max: 100,
                roles: &["collaborateur", "everyone"],
                dropped: 0,
            },
            Case {
                name: "whitespace and duplicate groups",
                groups: &[" corp-hr ", "corp-hr", ""],
                unmapped: UnmappedGroups::Drop,
                defaults: &[],
                max: 100,
                roles: &["administrateur_rh", "view_bulletins"],
                dropped: 0,
            },
            Case {
                name: "cap",
                groups: &["corp-hr", "corp-managers"],
                unmapped: UnmappedGroups::Drop,
                defaults: &[],
                max: 2,
                roles: &["validateur_n1", "administrateur_rh"],
                dropped: 2,
            },
        ];
        for c in cases {
            let settings = ClaimsConfig {
                unmapped_groups: c.unmapped,
                default_roles: c.defaults.iter().map(|s| s.to_string()).collect(),
                max_roles: c.max,
                module_roles_claim: None,
            };
            let mapped = map_claims(&identity(c.groups), &figgo, &settings);
            assert_eq!(mapped.claims.roles, c.roles, "{}", c.name);
            assert_eq!(mapped.claims.roles_dropped, c.dropped, "{}", c.name);
        }
    }

    #[test]
    fn modules_and_trace() {
        let table = vec![
            row("corp-hr", "administrateur_rh", Some("figgo")),
            row("corp-hr", "view_bulletins", Some("pagga")),
        ];
        let mapped = map_claims(
            &identity(&["corp-hr", "other"]),
            &table,
            &ClaimsConfig::default(),
        );
        assert_eq!(
            mapped.claims.roles_by_module["figgo"],
            vec!["administrateur_rh"]
        );
        assert_eq!(
            mapped.claims.roles_by_module["pagga"],
            vec!["view_bulletins"]
        );
        assert_eq!(mapped.trace.len(), 2);
        assert_eq!(mapped.trace[0].outcome, GroupOutcome::Mapped);
        assert_eq!(mapped.trace[0].rows.len(), 2);
        assert_eq!(mapped.trace[1].outcome, GroupOutcome::DroppedUnmapped);
    }

    #[test]
    fn values_are_normalised() {
        let mapped = map_claims(&identity(&[]), &[], &ClaimsConfig::default());
        assert_eq!(mapped.claims.email, "alice@acme.test");
        assert_eq!(mapped.claims.given_name.as_deref(), Some("Alice"));
        assert_eq!(mapped.claims.employee_number, None);
        assert_eq!(
            mapped.claims.manager_email.as_deref(),
            Some("bob@acme.test")
        );
    }
}

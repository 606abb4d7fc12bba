//! Roles applied in Lucca (`[lucca] apply_roles`): the `[[role_mapping]]` rows that name a
//! Lucca role (`lucca_role_id`, or `lucca_role` resolved by name through `GET /api/v3/roles`)
//! become the person's `habilitedRoles`, written with `PUT /api/v3/users/{id}`. What to write is
//! [`decision::habilited_roles_change`]'s; JIT (at sign-in) and the sync call [`RoleApplier`].

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::json;
use tokio::time::Instant;

use super::decision::{self, LuccaRoleRow, RoleChange};
use crate::config::RoleMappingRow;
use crate::identity::Claims;
use crate::login::Live;
use crate::lucca::{LuccaClient, LuccaError, UserChanges};
use crate::store::{AuditEvent, AuditLog, Store};

/// Role names change rarely; re-reading them at every sign-in would waste the budget.
const ROLE_NAMES_TTL: Duration = Duration::from_secs(15 * 60);

/// The table's Lucca roles, resolved.
#[derive(Debug, Clone, Default)]
pub struct ResolvedTable {
    pub rows: Vec<LuccaRoleRow>,
    /// Every role some row names: the only ones Passerelle adds or removes.
    pub managed: BTreeSet<i64>,
    /// `lucca_role` names Lucca has no (single) role for.
    pub unresolved: Vec<String>,
}

pub struct RoleApplier {
    live: Arc<ArcSwap<Live>>,
    audit: Arc<dyn AuditLog>,
    names: Mutex<Option<(Instant, Arc<Vec<crate::lucca::Department>>)>>,
}

impl std::fmt::Debug for RoleApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleApplier").finish_non_exhaustive()
    }
}

/// Resolve the rows that name a Lucca role against Lucca's roles (`id`, `name`).
pub fn resolve(table: &[RoleMappingRow], roles: &[crate::lucca::Department]) -> ResolvedTable {
    let mut out = ResolvedTable::default();
    for row in table {
        let id = match (&row.lucca_role_id, &row.lucca_role) {
            (Some(id), _) => Some(*id),
            (None, Some(name)) => {
                let mut found = roles
                    .iter()
                    .filter(|r| r.name.trim().eq_ignore_ascii_case(name.trim()));
                match (found.next(), found.next()) {
                    (Some(role), None) => Some(role.id),
                    _ => {
                        out.unresolved.push(name.clone());
                        None
                    }
                }
            }
            (None, None) => None,
        };
        if let Some(id) = id {
            out.managed.insert(id);
            out.rows.push(LuccaRoleRow {
                role: row.role.trim().to_string(),
                module: row.module.clone(),
                lucca_role_id: id,
            });
        }
    }
    out
}

impl RoleApplier {
    /// `None` unless `apply_roles` is on and some row names a Lucca role.
    pub fn from_config(
        config: &crate::config::Config,
        store: &Store,
        live: Arc<ArcSwap<Live>>,
    ) -> Option<Arc<RoleApplier>> {
        let names_a_role = config
            .role_mapping
            .iter()
            .any(|r| r.lucca_role_id.is_some() || r.lucca_role.is_some());
        (config.lucca.apply_roles && names_a_role).then(|| {
            Arc::new(RoleApplier {
                live,
                audit: store.audit().clone(),
                names: Mutex::new(None),
            })
        })
    }

    /// The live table (a reload changes it), names resolved through Lucca when some row uses one.
    pub async fn table(&self, client: &LuccaClient) -> Result<ResolvedTable, LuccaError> {
        let rows = self.live.load().role_mapping.clone();
        let roles = if rows
            .iter()
            .any(|r| r.lucca_role_id.is_none() && r.lucca_role.is_some())
        {
            self.role_names(client).await?
        } else {
            Arc::new(Vec::new())
        };
        let table = resolve(&rows, &roles);
        for name in &table.unresolved {
            tracing::warn!(lucca_role = %name, "no single Lucca role has this name: the row grants no Lucca role");
        }
        Ok(table)
    }

    async fn role_names(
        &self,
        client: &LuccaClient,
    ) -> Result<Arc<Vec<crate::lucca::Department>>, LuccaError> {
        if let Some((at, names)) = self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            if at.elapsed() < ROLE_NAMES_TTL {
                return Ok(names.clone());
            }
        }
        let names = Arc::new(client.roles().await?);
        *self.names.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), names.clone()));
        Ok(names)
    }

    /// The change the table asks for this person, without writing it (the preview).
    pub async fn plan(
        &self,
        client: &LuccaClient,
        lucca_id: i64,
        current: Option<Vec<i64>>,
        claims: &Claims,
    ) -> Result<Option<RoleChange>, LuccaError> {
        let table = self.table(client).await?;
        let current = match current {
            Some(current) => current,
            None => client.habilited_roles(lucca_id).await?,
        };
        let granted = decision::lucca_roles_granted(&table.rows, claims);
        Ok(decision::habilited_roles_change(
            &current,
            &granted,
            &table.managed,
        ))
    }

    /// Write the change the table asks for, audited. `current`: the roles Lucca holds when
    /// the caller just read them (else they are read now). Returns whether anything changed.
    pub async fn apply(
        &self,
        client: &LuccaClient,
        lucca_id: i64,
        current: Option<Vec<i64>>,
        claims: &Claims,
        source: &'static str,
    ) -> Result<bool, LuccaError> {
        let Some(change) = self.plan(client, lucca_id, current, claims).await? else {
            return Ok(false);
        };
        let mut changes = UserChanges::default();
        changes.extra.insert(
            "habilitedRoles".into(),
            json!(change
                .result
                .iter()
                .map(|id| json!({"id": id}))
                .collect::<Vec<_>>()),
        );
        client.update_user(lucca_id, &changes).await?;
        metrics::counter!("passerelle_lucca_roles_changed_total", "source" => source).increment(1);
        let entry = AuditEvent {
            event: "lucca_roles",
            outcome: "changed",
            subject: Some(&claims.subject),
            detail: Some(
                json!({"source": source, "lucca_id": lucca_id, "add": change.add, "remove": change.remove, "result": change.result}),
            ),
            ..Default::default()
        };
        if let Err(e) = self.audit.record(entry).await {
            tracing::warn!(error = %e, "could not write the audit log");
        }
        Ok(true)
    }

    /// The claims the table maps for a person of the local directory (how the sync, which has
    /// no sign-in at hand, knows their groups); `None` when they are not in it.
    pub fn directory_claims(&self, name: &str) -> Option<Claims> {
        let live = self.live.load();
        let identity = live.directory.by_name(name)?;
        Some(crate::identity::map_claims(&identity, &live.role_mapping, &live.claims).claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lucca::Department;

    #[test]
    fn names_resolve_exactly_once_or_are_reported() {
        let roles = vec![
            Department {
                id: 55,
                name: "User".into(),
            },
            Department {
                id: 59,
                name: "Employee +".into(),
            },
            Department {
                id: 70,
                name: "Twin".into(),
            },
            Department {
                id: 71,
                name: "twin".into(),
            },
        ];
        let row = |role: &str, id: Option<i64>, name: Option<&str>| RoleMappingRow {
            group: "g".into(),
            role: role.into(),
            lucca_role_id: id,
            lucca_role: name.map(Into::into),
            ..Default::default()
        };
        let table = resolve(
            &[
                row("a", Some(60), None),
                row("b", None, Some(" employee + ")),
                row("c", None, Some("Twin")),
                row("d", None, Some("Nobody")),
                row("e", None, None),
            ],
            &roles,
        );
        assert_eq!(table.managed, [59, 60].into_iter().collect());
        assert_eq!(table.unresolved, ["Twin", "Nobody"]);
        assert_eq!(table.rows.len(), 2);
    }
}

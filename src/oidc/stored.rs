//! What a code and a grant remember about the person: the identity and the claims released at
//! sign-in (the ones JIT acted on), so the token, refresh and userinfo endpoints answer with
//! exactly those, whatever reload happened since.
//!
//! Kept in the row's `identity` text as `{"identity": …, "claims": …}`. Rows written before
//! claims were stored hold the identity alone; they are mapped once, with the table running
//! when they are read.

use serde::{Deserialize, Serialize};

use crate::identity::{Claims, Identity};
use crate::pipeline::Pipeline;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRelease {
    pub identity: Identity,
    pub claims: Claims,
}

// Read once per request and dropped: the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Release(StoredRelease),
    IdentityOnly(Identity),
}

impl StoredRelease {
    pub fn encode(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn decode(text: &str, pipeline: &Pipeline) -> Result<StoredRelease, serde_json::Error> {
        Ok(match serde_json::from_str(text)? {
            Stored::Release(release) => release,
            Stored::IdentityOnly(identity) => StoredRelease {
                claims: pipeline.map(&identity).claims,
                identity,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arc_swap::ArcSwap;

    use super::*;
    use crate::config::{ClaimsConfig, RoleMappingRow};
    use crate::identity::Source;
    use crate::login::Directory;
    use crate::login::Live;

    fn alice() -> Identity {
        Identity {
            subject: "alice".into(),
            email: "alice@acme.test".into(),
            email_verified: true,
            login: None,
            given_name: None,
            family_name: None,
            employee_number: None,
            department: None,
            manager_email: None,
            job_title: None,
            groups: vec!["corp-hr".into()],
            source: Source::Local,
        }
    }

    fn pipeline(role: &str) -> Pipeline {
        Pipeline::new(
            Arc::new(ArcSwap::from_pointee(Live {
                directory: Arc::new(Directory::new(&[]).unwrap()),
                role_mapping: vec![RoleMappingRow {
                    group: "corp-hr".into(),
                    role: role.into(),
                    module: None,
                    ..Default::default()
                }],
                claims: ClaimsConfig::default(),
            })),
            None,
        )
    }

    #[test]
    fn stored_claims_come_back_as_they_were() {
        let released = StoredRelease {
            identity: alice(),
            claims: pipeline("administrateur_rh").map(&alice()).claims,
        };
        let text = released.encode().unwrap();
        let back = StoredRelease::decode(&text, &pipeline("something_else")).unwrap();
        assert_eq!(back, released);
        assert_eq!(back.claims.roles, ["administrateur_rh"]);
    }

    #[test]
    fn an_identity_only_row_is_mapped_with_the_running_table() {
        let text = serde_json::to_string(&alice()).unwrap();
        let back = StoredRelease::decode(&text, &pipeline("rh")).unwrap();
        assert_eq!(back.identity, alice());
        assert_eq!(back.claims.roles, ["rh"]);
        assert!(StoredRelease::decode("{\"subject\": 1}", &pipeline("rh")).is_err());
    }
}

//! What a configuration reload replaces, read by sign-in, the pipeline and migrations alike:
//! the local directory, the group→role table and the claim settings.

use std::sync::Arc;

use crate::config::{ClaimsConfig, RoleMappingRow};
use crate::login::Directory;

/// What a config reload replaces; everything else needs a restart.
pub struct Live {
    pub directory: Arc<Directory>,
    pub role_mapping: Vec<RoleMappingRow>,
    pub claims: ClaimsConfig,
}

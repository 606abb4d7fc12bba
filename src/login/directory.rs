//! The local directory: `[[directory.users]]` with argon2id password hashes.

use std::collections::HashMap;
use std::sync::Arc;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

use crate::config::DirectoryUser;
use crate::identity::{Identity, Source};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Deliberately vague: the person sees "wrong email or password" either way.
    #[error("wrong email or password")]
    BadCredentials,
    #[error("account disabled")]
    Disabled,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

struct Entry {
    user: DirectoryUser,
    hash: String,
}

/// The users of `[[directory.users]]`, looked up by lower-cased email or login.
pub struct Directory {
    users: Vec<Entry>,
    by_name: HashMap<String, usize>,
    by_subject: HashMap<String, usize>,
    /// Verified against when the name is unknown, so that unknown and known names take as long.
    dummy_hash: String,
}

/// An argon2id hash of `password` with a fresh salt and the crate's default (OWASP) parameters.
pub fn hash_password(password: &str) -> Result<String, LoginError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| LoginError::Internal(e.to_string()))
}

impl Directory {
    /// Build the directory; plain `password`s are hashed here so every check costs the same.
    pub fn new(users: &[DirectoryUser]) -> Result<Directory, LoginError> {
        let mut entries = Vec::with_capacity(users.len());
        let mut by_name = HashMap::new();
        let mut by_subject = HashMap::new();
        for user in users {
            let hash = match (&user.password_hash, &user.password) {
                (Some(hash), _) => hash.clone(),
                (None, Some(plain)) => hash_password(plain.expose())?,
                // A disabled user without a password: nothing verifies against a random hash.
                (None, None) => {
                    hash_password(&hex::encode(openssl::sha::sha256(user.email.as_bytes())))?
                }
            };
            let i = entries.len();
            let email = user.email.trim().to_lowercase();
            by_name.insert(email.clone(), i);
            if let Some(login) = &user.login {
                by_name.entry(login.trim().to_lowercase()).or_insert(i);
            }
            by_subject.insert(subject_of(user), i);
            entries.push(Entry {
                user: user.clone(),
                hash,
            });
        }
        Ok(Directory {
            users: entries,
            by_name,
            by_subject,
            dummy_hash: hash_password("passerelle-dummy-password")?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// The throttle's key for a typed name: the account's, whether its email or its login was
    /// typed, or the name's own when no account has it (so probing unknown names is throttled
    /// too, and looks the same from outside).
    pub fn throttle_key(&self, username: &str) -> super::throttle::AccountKey {
        match self.by_name.get(&username.trim().to_lowercase()) {
            Some(&i) => super::throttle::AccountKey::account(&subject_of(&self.users[i].user)),
            None => super::throttle::AccountKey::unknown_name(username),
        }
    }

    /// Verify a password. Runs argon2 on a blocking thread.
    pub async fn authenticate(
        self: &Arc<Self>,
        username: &str,
        password: &str,
    ) -> Result<Identity, LoginError> {
        let name = username.trim().to_lowercase();
        let index = self.by_name.get(&name).copied();
        let hash = index
            .map(|i| self.users[i].hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify(&hash, &password))
            .await
            .map_err(|e| LoginError::Internal(e.to_string()))?;
        match index {
            Some(i) if ok => {
                let user = &self.users[i].user;
                if user.disabled {
                    return Err(LoginError::Disabled);
                }
                Ok(identity_of(user))
            }
            _ => Err(LoginError::BadCredentials),
        }
    }

    /// The current identity of a local subject (after a config reload it may have changed or gone).
    pub fn by_subject(&self, subject: &str) -> Option<Identity> {
        let user = &self.users[*self.by_subject.get(subject)?].user;
        (!user.disabled).then(|| identity_of(user))
    }

    /// Look a person up by email or login.
    pub fn by_name(&self, name: &str) -> Option<Identity> {
        let user = &self.users[*self.by_name.get(&name.trim().to_lowercase())?].user;
        Some(identity_of(user))
    }

    /// The people whose email, login or name contains `fragment` (case-insensitively), in
    /// directory order, at most `limit`: the console's search.
    pub fn matching(&self, fragment: &str, limit: usize) -> Vec<Identity> {
        let needle = fragment.trim().to_lowercase();
        if needle.is_empty() {
            return Vec::new();
        }
        self.users
            .iter()
            .map(|e| &e.user)
            .filter(|u| {
                let name = format!(
                    "{} {}",
                    u.given_name.as_deref().unwrap_or_default(),
                    u.family_name.as_deref().unwrap_or_default()
                );
                [
                    u.email.as_str(),
                    u.login.as_deref().unwrap_or_default(),
                    &name,
                ]
                .iter()
                .any(|field| field.to_lowercase().contains(&needle))
            })
            .take(limit)
            .map(identity_of)
            .collect()
    }
}

fn verify(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

fn subject_of(user: &DirectoryUser) -> String {
    user.subject
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| user.email.trim().to_lowercase())
}

fn identity_of(user: &DirectoryUser) -> Identity {
    Identity {
        subject: subject_of(user),
        email: user.email.trim().to_lowercase(),
        email_verified: true,
        login: user.login.clone(),
        given_name: user.given_name.clone(),
        family_name: user.family_name.clone(),
        employee_number: user.employee_number.clone(),
        department: user.department.clone(),
        manager_email: user.manager_email.clone(),
        job_title: user.job_title.clone(),
        groups: user.groups.clone(),
        source: Source::Local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::check_password_hash;
    use crate::config::Secret;

    fn user(email: &str, password: &str) -> DirectoryUser {
        DirectoryUser {
            email: email.into(),
            login: Some("amartin".into()),
            password: Some(Secret::new(password)),
            groups: vec!["corp-employees".into()],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn authenticates_by_email_or_login_and_refuses_wrong_passwords() {
        let dir = Arc::new(Directory::new(&[user("Alice@Acme.test", "correct horse")]).unwrap());
        let id = dir
            .authenticate("alice@acme.test", "correct horse")
            .await
            .unwrap();
        assert_eq!(id.subject, "alice@acme.test");
        assert_eq!(id.groups, vec!["corp-employees"]);
        assert!(dir.authenticate(" AMARTIN ", "correct horse").await.is_ok());
        assert!(matches!(
            dir.authenticate("alice@acme.test", "wrong").await,
            Err(LoginError::BadCredentials)
        ));
        assert!(matches!(
            dir.authenticate("nobody@acme.test", "correct horse").await,
            Err(LoginError::BadCredentials)
        ));
    }

    #[tokio::test]
    async fn hashed_passwords_verify_and_disabled_users_are_refused() {
        let mut u = user("bob@acme.test", "x");
        u.password = None;
        u.password_hash = Some(hash_password("s3cret").unwrap());
        check_password_hash(u.password_hash.as_deref().unwrap()).unwrap();
        let mut disabled = user("carol@acme.test", "pw");
        disabled.login = None;
        disabled.disabled = true;
        let dir = Arc::new(Directory::new(&[u, disabled]).unwrap());
        assert!(dir.authenticate("bob@acme.test", "s3cret").await.is_ok());
        assert!(matches!(
            dir.authenticate("carol@acme.test", "pw").await,
            Err(LoginError::Disabled)
        ));
        assert!(dir.by_subject("carol@acme.test").is_none());
    }

    #[test]
    fn rejects_non_argon2_hashes() {
        assert!(check_password_hash("plain").is_err());
        assert!(check_password_hash("$2b$12$abcdefghijklmnopqrstuu").is_err());
    }
}

//! Which key signs and which keys are published at a given moment.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::store::KeyringFile;
use super::SigningKey;

pub(super) enum KeyState {
    Signing,
    Next,
    Retiring { until: DateTime<Utc> },
    Retired,
}

/// The loaded keys with the keyring file they came from (to notice changes on reload and to
/// append to on rotation); no file for the ring kept in the store.
pub(super) struct Ring {
    /// Ascending `signs_from`; never empty.
    keys: Vec<Arc<SigningKey>>,
    pub file: Option<KeyringFile>,
}

/// `t + d`, saturating: a huge configured duration means "never", not an overflow.
pub(super) fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Ring {
    pub fn new(mut keys: Vec<Arc<SigningKey>>, file: Option<KeyringFile>) -> Option<Ring> {
        if keys.is_empty() {
            return None;
        }
        keys.sort_by_key(|k| (k.signs_from, k.created_at));
        Some(Ring { keys, file })
    }

    pub fn keys(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }

    /// The key with the latest `signs_from <= now`; the oldest key if the clock is before all
    /// of them, since some key must always sign.
    fn signing_index(&self, now: DateTime<Utc>) -> usize {
        self.keys
            .iter()
            .rposition(|k| k.signs_from <= now)
            .unwrap_or(0)
    }

    pub fn signer(&self, now: DateTime<Utc>) -> &Arc<SigningKey> {
        &self.keys[self.signing_index(now)]
    }

    pub fn staged(&self, now: DateTime<Utc>) -> Option<&Arc<SigningKey>> {
        self.keys.get(self.signing_index(now) + 1)
    }

    pub fn state(&self, index: usize, now: DateTime<Utc>, retire_after: Duration) -> KeyState {
        let signing = self.signing_index(now);
        if index == signing {
            return KeyState::Signing;
        }
        if index > signing {
            return KeyState::Next;
        }
        // A key stops signing when its successor starts; it stays published long enough for
        // everything it signed to expire.
        let until = later(self.keys[index + 1].signs_from, retire_after);
        if now < until {
            KeyState::Retiring { until }
        } else {
            KeyState::Retired
        }
    }

    /// The signing key first, then staged keys, then retiring keys (most recent first).
    pub fn published(&self, now: DateTime<Utc>, retire_after: Duration) -> Vec<Arc<SigningKey>> {
        let signing = self.signing_index(now);
        let retiring = (0..signing)
            .rev()
            .filter(|&i| matches!(self.state(i, now, retire_after), KeyState::Retiring { .. }));
        std::iter::once(signing)
            .chain(signing + 1..self.keys.len())
            .chain(retiring)
            .map(|i| Arc::clone(&self.keys[i]))
            .collect()
    }
}

//! The store conformance suite: what every backend must do, asserted through the ports only.
//!
//! Each check takes a freshly opened, empty [`Store`] and panics on the first behaviour that
//! differs. A backend runs all of them with [`store_conformance_suite!`], which writes one test
//! per check, so the list below is the one list both backends are held to (the way Dex's
//! `storage/conformance` works). Checks use the wall clock the store uses ([`now`]); where an
//! expiry matters they store times in the past rather than wait, except the audit retention,
//! whose port takes only a duration.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinSet;
use tower_sessions::cookie::time::{Duration as CookieDuration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::SessionStore;

use super::audit::{MAX_DETAIL_BYTES, MAX_FIELD_BYTES};
use super::login_requests::MAX_PENDING_PAYLOAD_BYTES;
use super::saml_request_ids::MAX_SAML_REQUEST_ID_BYTES;
use super::upstream_identities::MAX_UPSTREAM_IDENTITY_BYTES;
use super::{
    now, token_hash, AuditEvent, CodeRecord, ConsumedCode, FailureKey, MigrationRowOutcome,
    NewGrant, NewMigrationRow, SendRule, SendSlot, Store, StoreError, TokenOwner, UpstreamIdentity,
};

/// One `#[tokio::test]` per check, each on a store from `$open`: an async fn returning
/// `(Store, guard)`, the guard kept alive for the test (a temp dir, a throwaway database).
/// `optional $open`: `$open` returns `Option<(Store, guard)>`, and `None` (a backend that is not
/// available here, which its opener has said on stderr) skips the check.
#[macro_export]
#[doc(hidden)]
macro_rules! store_conformance_suite {
    ($open:path) => {
        $crate::store_conformance_suite!(@list required $open);
    };
    (optional $open:path) => {
        $crate::store_conformance_suite!(@list optional $open);
    };
    (@list $mode:ident $open:path) => {
        $crate::store_conformance_suite!(@each $mode $open;
            login_requests_round_trip,
            login_requests_expire_and_are_purged,
            oversized_values_are_refused_not_stored,
            saml_request_id_is_claimed_once,
            saml_request_id_is_claimed_once_under_concurrency,
            expired_saml_request_ids_are_forgotten,
            code_is_consumed_once,
            concurrent_double_spend_has_one_winner,
            replay_before_the_grant_stops_the_grant,
            replay_after_the_grant_names_the_grant,
            a_peeked_code_is_unspent_and_carries_its_revocation,
            concurrent_redemptions_store_one_grant,
            a_redeemed_code_replayed_names_its_grant,
            grant_and_tokens_are_issued_and_looked_up,
            expired_access_tokens_give_no_grant,
            revoking_a_grant_revokes_its_tokens,
            grant_activity_lists_live_grants_with_their_last_use,
            revoking_one_access_token_leaves_the_others,
            refresh_rotation_keeps_the_grace_answer,
            a_rotated_refresh_token_cannot_rotate_again,
            concurrent_rotation_has_one_winner,
            expired_oauth_rows_are_purged,
            session_store_round_trip,
            expired_sessions_are_deleted,
            lucca_links_are_upserted_and_found,
            sync_state_round_trips_and_cuts_long_errors,
            a_job_lease_has_one_holder_until_it_expires_or_is_released,
            person_revocations_never_move_back_and_find_people_by_email,
            a_session_is_saved_back_only_while_it_exists,
            live_tokens_count_only_what_still_works,
            upstream_identities_are_upserted_and_found_by_email,
            outbox_coalesces_retries_backs_off_and_delivers_once,
            outbox_delivers_oldest_due_first,
            outbox_gives_up_and_purges_finished_rows,
            migration_job_lifecycle,
            a_cancelled_job_stays_cancelled,
            migration_jobs_listed_newest_first_taken_oldest_first,
            audit_is_newest_first_and_filtered,
            an_audit_batch_of_any_size_is_stored_whole_and_in_order,
            audit_query_filters_and_pages,
            audit_fields_are_capped,
            audit_retention_purges_old_entries,
            ping_answers,
            a_named_lease_has_one_holder,
            an_expired_lease_goes_to_the_next_node,
            the_lucca_window_takes_its_budget_then_says_when,
            batch_sends_leave_the_sign_in_reserve_free,
            a_lucca_block_holds_every_send_and_never_shortens,
            concurrent_sends_never_pass_the_budget,
            failed_sign_ins_are_counted_per_key_until_released,
            concurrent_sign_in_attempts_never_pass_the_budget,
            old_sign_in_failures_are_purged,
            signing_keys_are_added_once_staged_once_and_resealed_by_compare_and_set,
            concurrent_first_signing_keys_have_one_winner,
        );
    };
    (@each required $open:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (store, _guard) = $open().await;
                $crate::store::conformance::$check(store).await;
            }
        )*
    };
    (@each optional $open:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some((store, _guard)) = $open().await else {
                    return;
                };
                $crate::store::conformance::$check(store).await;
            }
        )*
    };
}

// --- the shared signing key ring -----------------------------------------------------------

fn stored_key(kid: &str, signs_from: i64) -> super::StoredSigningKey {
    super::StoredSigningKey {
        kid: kid.into(),
        certificate: format!("-----BEGIN CERTIFICATE-----\n{kid}\n"),
        kek_id: "kek-1".into(),
        sealed_key: format!("v1.sealed-{kid}"),
        created_at: signs_from - 10,
        signs_from,
    }
}

pub async fn signing_keys_are_added_once_staged_once_and_resealed_by_compare_and_set(store: Store) {
    let ring = store.signing_keys();
    let t = now();
    assert!(ring.signing_keys().await.unwrap().is_empty());
    let (a, b) = (stored_key("a", t - 100), stored_key("b", t - 50));
    assert!(ring
        .add_first_signing_keys(&[b.clone(), a.clone()])
        .await
        .unwrap());
    assert!(!ring
        .add_first_signing_keys(&[stored_key("c", t)])
        .await
        .unwrap());
    assert_eq!(
        ring.signing_keys().await.unwrap(),
        [a.clone(), b.clone()],
        "by signs_from"
    );

    let staged = stored_key("d", t + 3600);
    assert!(ring.add_staged_signing_key(&staged, t).await.unwrap());
    assert!(
        !ring
            .add_staged_signing_key(&stored_key("e", t + 7200), t)
            .await
            .unwrap(),
        "one staged key at a time"
    );
    // Once d signs, the next rotation may stage again.
    assert!(ring
        .add_staged_signing_key(&stored_key("f", t + 9000), t + 3600)
        .await
        .unwrap());
    let kids: Vec<String> = ring
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["a", "b", "d", "f"]);

    assert!(ring
        .reseal_signing_key("a", &a.sealed_key, "kek-2", "v1.new")
        .await
        .unwrap());
    assert!(
        !ring
            .reseal_signing_key("a", &a.sealed_key, "kek-3", "v1.newer")
            .await
            .unwrap(),
        "the sealed value changed since it was read"
    );
    assert!(!ring
        .reseal_signing_key("zz", "x", "kek-2", "v1.x")
        .await
        .unwrap());
    let a_now = ring.signing_keys().await.unwrap().remove(0);
    assert_eq!(
        (a_now.kek_id.as_str(), a_now.sealed_key.as_str()),
        ("kek-2", "v1.new")
    );
}

pub async fn concurrent_first_signing_keys_have_one_winner(store: Store) {
    let mut set = JoinSet::new();
    for i in 0..6 {
        let ring = store.signing_keys().clone();
        set.spawn(async move {
            ring.add_first_signing_keys(&[stored_key(&format!("k{i}"), now())])
                .await
                .unwrap()
        });
    }
    let won = set.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(won, 1);
    assert_eq!(store.signing_keys().signing_keys().await.unwrap().len(), 1);
}

// --- pending sign-ins -----------------------------------------------------------------------

pub async fn login_requests_round_trip(store: Store) {
    let requests = store.login_requests();
    let before = now();
    requests.put("r1", "oidc", r#"{"a":1}"#, 600).await.unwrap();
    let found = requests.get("r1").await.unwrap().expect("stored");
    assert_eq!(
        (found.protocol.as_str(), found.payload.as_str()),
        ("oidc", r#"{"a":1}"#)
    );
    assert!((before..=now()).contains(&found.created_at), "{found:?}");
    assert!(
        requests.put("r1", "saml", "{}", 600).await.is_err(),
        "an id is never reused"
    );
    assert_eq!(requests.get("r1").await.unwrap(), Some(found));
    assert_eq!(requests.get("r2").await.unwrap(), None);
    requests.delete("r1").await.unwrap();
    assert_eq!(requests.get("r1").await.unwrap(), None);
    requests.delete("r1").await.unwrap();
}

pub async fn login_requests_expire_and_are_purged(store: Store) {
    let requests = store.login_requests();
    requests.put("gone", "oidc", "{}", -1).await.unwrap();
    requests.put("live", "saml", "{}", 600).await.unwrap();
    assert_eq!(requests.get("gone").await.unwrap(), None, "expired");
    assert!(store.housekeeping().purge_expired().await.unwrap() >= 1);
    // Purged, not merely hidden: the id can be stored again.
    requests.put("gone", "oidc", "{}", 600).await.unwrap();
    assert!(requests.get("gone").await.unwrap().is_some());
    assert!(requests.get("live").await.unwrap().is_some());
}

pub async fn oversized_values_are_refused_not_stored(store: Store) {
    let huge = "x".repeat(900_000);
    assert!(matches!(
        store.login_requests().put("id", "oidc", &huge, 60).await,
        Err(StoreError::TooLarge {
            limit: MAX_PENDING_PAYLOAD_BYTES,
            ..
        })
    ));
    assert!(matches!(
        store
            .login_requests()
            .put(&"i".repeat(129), "oidc", "{}", 60)
            .await,
        Err(StoreError::TooLarge { .. })
    ));
    assert_eq!(store.login_requests().get("id").await.unwrap(), None);
    assert!(matches!(
        store
            .saml_request_ids()
            .claim("https://sp.example", &huge, 60)
            .await,
        Err(StoreError::TooLarge {
            limit: MAX_SAML_REQUEST_ID_BYTES,
            ..
        })
    ));
    assert!(matches!(
        store
            .saml_request_ids()
            .claim(&format!("https://{huge}"), "_a1b2c3", 60)
            .await,
        Err(StoreError::TooLarge { .. })
    ));
    assert!(matches!(
        store
            .upstream_identities()
            .put("up-1", "a@acme.test", "corp", &huge, false)
            .await,
        Err(StoreError::TooLarge {
            limit: MAX_UPSTREAM_IDENTITY_BYTES,
            ..
        })
    ));
    assert_eq!(
        store
            .upstream_identities()
            .by_email("a@acme.test")
            .await
            .unwrap(),
        None
    );
    // Values of legitimate size pass.
    store
        .login_requests()
        .put("id", "oidc", &"p".repeat(MAX_PENDING_PAYLOAD_BYTES), 60)
        .await
        .unwrap();
    assert!(store
        .saml_request_ids()
        .claim(
            "https://sp.example",
            &"s".repeat(MAX_SAML_REQUEST_ID_BYTES),
            60
        )
        .await
        .unwrap());
}

// --- SAML request ids -----------------------------------------------------------------------

pub async fn saml_request_id_is_claimed_once(store: Store) {
    let ids = store.saml_request_ids();
    assert!(ids.claim("https://sp.example", "_r1", 600).await.unwrap());
    assert!(!ids.claim("https://sp.example", "_r1", 600).await.unwrap());
    assert!(
        ids.claim("https://other.example", "_r1", 600)
            .await
            .unwrap(),
        "ids are per SP"
    );
    assert!(ids.claim("https://sp.example", "_r2", 600).await.unwrap());
}

pub async fn saml_request_id_is_claimed_once_under_concurrency(store: Store) {
    let mut set = JoinSet::new();
    for _ in 0..16 {
        let ids = store.saml_request_ids().clone();
        set.spawn(async move { ids.claim("https://sp.example", "_race", 600).await });
    }
    let won = set
        .join_all()
        .await
        .into_iter()
        .map(|claimed| claimed.unwrap())
        .filter(|&won| won)
        .count();
    assert_eq!(won, 1, "exactly one of 16 concurrent claims wins");
}

pub async fn expired_saml_request_ids_are_forgotten(store: Store) {
    let ids = store.saml_request_ids();
    assert!(ids.claim("https://sp.example", "_old", -10).await.unwrap());
    assert!(ids.claim("https://sp.example", "_live", 600).await.unwrap());
    store.housekeeping().purge_expired().await.unwrap();
    assert!(ids.claim("https://sp.example", "_old", 600).await.unwrap());
    assert!(!ids.claim("https://sp.example", "_live", 600).await.unwrap());
}

// --- OAuth: codes, grants, tokens -----------------------------------------------------------

fn code_record(client_id: &str, expires_at: i64) -> CodeRecord {
    CodeRecord {
        client_id: client_id.into(),
        redirect_uri: "https://rp.example/cb".into(),
        code_challenge: Some("challenge".into()),
        nonce: Some("n-1".into()),
        scope: "openid email".into(),
        subject: "alice".into(),
        session_id: Some("sid-1".into()),
        auth_time: 1_700_000_000,
        amr: "pwd".into(),
        identity: r#"{"subject":"alice"}"#.into(),
        expires_at,
    }
}

fn new_grant(id: &str, expires_at: i64) -> NewGrant<'_> {
    NewGrant {
        id,
        client_id: "rp",
        subject: "alice",
        scope: "openid email",
        identity: r#"{"subject":"alice"}"#,
        auth_time: 1_700_000_000,
        amr: "pwd",
        session_id: Some("sid-1"),
        expires_at,
    }
}

/// A grant `id` issued from no code, with access token `at-<id>` and refresh token `rt-<id>`.
async fn issue(store: &Store, id: &str, access_expires: i64, refresh_expires: Option<i64>) {
    let access = token_hash(&format!("at-{id}"));
    let refresh = refresh_expires.map(|at| (token_hash(&format!("rt-{id}")), at));
    let stored = store
        .oauth()
        .create_grant(
            &new_grant(id, now() + 86_400),
            None,
            (&access, access_expires),
            refresh.as_ref().map(|(h, at)| (h.as_str(), *at)),
        )
        .await
        .unwrap();
    assert!(stored);
}

pub async fn code_is_consumed_once(store: Store) {
    let oauth = store.oauth();
    let hash = token_hash("code-1");
    let record = code_record("rp", now() + 60);
    oauth.put_code(&hash, &record).await.unwrap();
    assert_eq!(
        oauth.consume_code(&hash).await.unwrap(),
        ConsumedCode::Fresh(record)
    );
    assert_eq!(
        oauth.consume_code(&hash).await.unwrap(),
        ConsumedCode::Replayed {
            client_id: "rp".into(),
            grant_id: None
        }
    );
    assert_eq!(
        oauth
            .consume_code(&token_hash("never issued"))
            .await
            .unwrap(),
        ConsumedCode::Unknown
    );
    assert!(
        oauth
            .put_code(&hash, &code_record("rp", now() + 60))
            .await
            .is_err(),
        "a code hash is stored once"
    );
}

pub async fn concurrent_double_spend_has_one_winner(store: Store) {
    let hash = token_hash("contested code");
    store
        .oauth()
        .put_code(&hash, &code_record("rp", now() + 60))
        .await
        .unwrap();
    let mut set = JoinSet::new();
    for _ in 0..16 {
        let oauth = store.oauth().clone();
        let hash = hash.clone();
        set.spawn(async move { oauth.consume_code(&hash).await });
    }
    let outcomes: Vec<ConsumedCode> = set
        .join_all()
        .await
        .into_iter()
        .map(|c| c.unwrap())
        .collect();
    let fresh = outcomes
        .iter()
        .filter(|c| matches!(c, ConsumedCode::Fresh(_)))
        .count();
    assert_eq!(fresh, 1, "exactly one of 16 concurrent exchanges wins");
    for outcome in &outcomes {
        match outcome {
            ConsumedCode::Fresh(record) => assert_eq!(record.client_id, "rp"),
            replay => assert_eq!(
                replay,
                &ConsumedCode::Replayed {
                    client_id: "rp".into(),
                    grant_id: None
                }
            ),
        }
    }
}

pub async fn replay_before_the_grant_stops_the_grant(store: Store) {
    let oauth = store.oauth();
    let hash = token_hash("code-2");
    oauth
        .put_code(&hash, &code_record("rp", now() + 60))
        .await
        .unwrap();
    assert!(matches!(
        oauth.consume_code(&hash).await.unwrap(),
        ConsumedCode::Fresh(_)
    ));
    // The replay lands while the first exchange is still minting its tokens.
    assert!(matches!(
        oauth.consume_code(&hash).await.unwrap(),
        ConsumedCode::Replayed { grant_id: None, .. }
    ));
    let access = token_hash("at-g2");
    let stored = oauth
        .create_grant(
            &new_grant("g2", now() + 86_400),
            Some(&hash),
            (&access, now() + 300),
            Some((&token_hash("rt-g2"), now() + 86_400)),
        )
        .await
        .unwrap();
    assert!(!stored, "no grant for a replayed code");
    assert_eq!(oauth.grant_for_access_token(&access).await.unwrap(), None);
    assert_eq!(oauth.access_token_owner(&access).await.unwrap(), None);
    assert_eq!(
        oauth.lookup_refresh(&token_hash("rt-g2")).await.unwrap(),
        None
    );
    assert!(oauth.grants_of_subject("alice").await.unwrap().is_empty());
}

pub async fn replay_after_the_grant_names_the_grant(store: Store) {
    let oauth = store.oauth();
    let hash = token_hash("code-3");
    oauth
        .put_code(&hash, &code_record("rp", now() + 60))
        .await
        .unwrap();
    assert!(matches!(
        oauth.consume_code(&hash).await.unwrap(),
        ConsumedCode::Fresh(_)
    ));
    assert!(oauth
        .create_grant(
            &new_grant("g3", now() + 86_400),
            Some(&hash),
            (&token_hash("at-g3"), now() + 300),
            None,
        )
        .await
        .unwrap());
    assert_eq!(
        oauth.consume_code(&hash).await.unwrap(),
        ConsumedCode::Replayed {
            client_id: "rp".into(),
            grant_id: Some("g3".into())
        }
    );
}

pub async fn a_peeked_code_is_unspent_and_carries_its_revocation(store: Store) {
    let oauth = store.oauth();
    let hash = token_hash("code-peek");
    assert_eq!(oauth.peek_code(&hash).await.unwrap(), None);
    oauth
        .put_code(&hash, &code_record("rp", now() + 60))
        .await
        .unwrap();
    let peeked = oauth.peek_code(&hash).await.unwrap().expect("stored");
    assert_eq!(peeked.record, code_record("rp", peeked.record.expires_at));
    assert!(!peeked.used);
    assert_eq!(peeked.subject_revoked_at, None);
    // Peeking twice spends nothing.
    assert!(!oauth.peek_code(&hash).await.unwrap().unwrap().used);
    store
        .person_revocations()
        .revoke_sessions("alice", 1_700_000_123_456)
        .await
        .unwrap();
    assert!(matches!(
        oauth.consume_code(&hash).await.unwrap(),
        ConsumedCode::Fresh(_)
    ));
    let peeked = oauth.peek_code(&hash).await.unwrap().unwrap();
    assert!(peeked.used);
    assert_eq!(peeked.subject_revoked_at, Some(1_700_000_123_456));
}

pub async fn concurrent_redemptions_store_one_grant(store: Store) {
    let hash = token_hash("contested redemption");
    store
        .oauth()
        .put_code(&hash, &code_record("rp", now() + 60))
        .await
        .unwrap();
    let mut set = JoinSet::new();
    for i in 0..16 {
        let oauth = store.oauth().clone();
        let hash = hash.clone();
        set.spawn(async move {
            let id = format!("g-{i}");
            let (access, refresh) = (
                token_hash(&format!("at-{i}")),
                token_hash(&format!("rt-{i}")),
            );
            let stored = oauth
                .redeem_code(
                    &hash,
                    &new_grant(&id, now() + 86_400),
                    (&access, now() + 300),
                    Some((&refresh, now() + 86_400)),
                )
                .await
                .unwrap();
            (i, stored)
        });
    }
    let outcomes = set.join_all().await;
    let winners: Vec<usize> = outcomes
        .iter()
        .filter(|(_, stored)| *stored)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 16 concurrent redemptions: {outcomes:?}"
    );
    let oauth = store.oauth();
    for (i, _) in &outcomes {
        let access = token_hash(&format!("at-{i}"));
        let refresh = token_hash(&format!("rt-{i}"));
        if *i == winners[0] {
            let grant = oauth
                .grant_for_access_token(&access)
                .await
                .unwrap()
                .expect("live");
            assert_eq!(grant.id, format!("g-{i}"));
            assert!(oauth.lookup_refresh(&refresh).await.unwrap().is_some());
        } else {
            assert_eq!(oauth.access_token_owner(&access).await.unwrap(), None);
            assert_eq!(oauth.lookup_refresh(&refresh).await.unwrap(), None);
        }
    }
    assert_eq!(oauth.grants_of_subject("alice").await.unwrap().len(), 1);
    assert!(oauth.peek_code(&hash).await.unwrap().unwrap().used);
}

pub async fn a_redeemed_code_replayed_names_its_grant(store: Store) {
    let oauth = store.oauth();
    let hash = token_hash("code-redeemed");
    oauth
        .put_code(&hash, &code_record("rp", now() + 60))
        .await
        .unwrap();
    // Without a refresh token: the access token alone.
    assert!(oauth
        .redeem_code(
            &hash,
            &new_grant("g-r", now() + 300),
            (&token_hash("at-g-r"), now() + 300),
            None,
        )
        .await
        .unwrap());
    assert!(oauth
        .grant_for_access_token(&token_hash("at-g-r"))
        .await
        .unwrap()
        .is_some());
    assert!(!oauth
        .redeem_code(
            &hash,
            &new_grant("g-again", now() + 300),
            (&token_hash("at-g-again"), now() + 300),
            None,
        )
        .await
        .unwrap());
    assert_eq!(
        oauth.consume_code(&hash).await.unwrap(),
        ConsumedCode::Replayed {
            client_id: "rp".into(),
            grant_id: Some("g-r".into())
        }
    );
    // A code replayed before its redemption is never redeemed.
    let early = token_hash("code-replayed-early");
    oauth
        .put_code(&early, &code_record("rp", now() + 60))
        .await
        .unwrap();
    oauth.consume_code(&early).await.unwrap();
    oauth.consume_code(&early).await.unwrap();
    assert!(!oauth
        .redeem_code(
            &early,
            &new_grant("g-early", now() + 300),
            (&token_hash("at-g-early"), now() + 300),
            None,
        )
        .await
        .unwrap());
    assert!(oauth
        .grants_of_subject("alice")
        .await
        .unwrap()
        .iter()
        .all(|g| g.id == "g-r"));
}

pub async fn grant_and_tokens_are_issued_and_looked_up(store: Store) {
    let oauth = store.oauth();
    let grant_expires = now() + 86_400;
    let access = token_hash("at-g");
    let refresh = token_hash("rt-g");
    assert!(oauth
        .create_grant(
            &new_grant("g", grant_expires),
            None,
            (&access, now() + 300),
            Some((&refresh, now() + 3600)),
        )
        .await
        .unwrap());
    let grant = oauth
        .grant_for_access_token(&access)
        .await
        .unwrap()
        .expect("live");
    assert_eq!(
        (
            grant.id.as_str(),
            grant.client_id.as_str(),
            grant.subject.as_str(),
            grant.scope.as_str(),
            grant.identity.as_str(),
            grant.auth_time,
            grant.amr.as_str(),
            grant.session_id.as_deref(),
            grant.expires_at,
            grant.revoked_at,
        ),
        (
            "g",
            "rp",
            "alice",
            "openid email",
            r#"{"subject":"alice"}"#,
            1_700_000_000,
            "pwd",
            Some("sid-1"),
            grant_expires,
            None
        )
    );
    assert_eq!(
        oauth.access_token_owner(&access).await.unwrap(),
        Some(TokenOwner {
            grant_id: "g".into(),
            client_id: "rp".into()
        })
    );
    let found = oauth
        .lookup_refresh(&refresh)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(found.grant, grant);
    assert_eq!(
        (found.rotated_at, found.grace_response.as_deref()),
        (None, None)
    );
    assert!(found.expires_at > now());
    assert_eq!(oauth.grants_of_subject("alice").await.unwrap(), [grant]);
    assert!(oauth.grants_of_subject("bob").await.unwrap().is_empty());
    assert_eq!(
        oauth
            .grant_for_access_token(&token_hash("forged"))
            .await
            .unwrap(),
        None
    );
}

pub async fn expired_access_tokens_give_no_grant(store: Store) {
    issue(&store, "g", now() - 1, None).await;
    let access = token_hash("at-g");
    assert_eq!(
        store.oauth().grant_for_access_token(&access).await.unwrap(),
        None
    );
    assert!(
        store
            .oauth()
            .access_token_owner(&access)
            .await
            .unwrap()
            .is_some(),
        "still known, for revocation"
    );
}

pub async fn grant_activity_lists_live_grants_with_their_last_use(store: Store) {
    let before = now();
    issue(&store, "g", now() + 300, Some(now() + 3600)).await;
    issue(&store, "gone", now() + 300, Some(now() + 3600)).await;
    assert!(store.oauth().revoke_grant("gone", "logout").await.unwrap());
    let live = store
        .grant_activity()
        .grant_activity("alice")
        .await
        .unwrap();
    assert_eq!(live.len(), 1, "revoked grants are not listed: {live:?}");
    let g = &live[0];
    assert_eq!(
        (g.grant_id.as_str(), g.client_id.as_str(), g.scope.as_str()),
        ("g", "rp", "openid email")
    );
    assert!((before..=now()).contains(&g.created_at), "{g:?}");
    assert!(g.last_used_at >= g.created_at, "{g:?}");
    // A refresh is a use.
    assert!(store
        .oauth()
        .rotate_refresh(
            &token_hash("rt-g"),
            "g",
            b"answer",
            (&token_hash("at-g2"), now() + 300),
            (&token_hash("rt-g2"), now() + 3600)
        )
        .await
        .unwrap());
    let after = &store
        .grant_activity()
        .grant_activity("alice")
        .await
        .unwrap()[0];
    assert!(
        after.last_used_at >= g.last_used_at && after.last_used_at <= now(),
        "{after:?}"
    );
    assert!(store
        .grant_activity()
        .grant_activity("bob")
        .await
        .unwrap()
        .is_empty());
}

pub async fn revoking_a_grant_revokes_its_tokens(store: Store) {
    issue(&store, "g", now() + 300, Some(now() + 3600)).await;
    issue(&store, "other", now() + 300, Some(now() + 3600)).await;
    let oauth = store.oauth();
    assert!(oauth.revoke_grant("g", "logout").await.unwrap());
    assert!(
        !oauth.revoke_grant("g", "logout").await.unwrap(),
        "already revoked"
    );
    assert_eq!(
        oauth
            .grant_for_access_token(&token_hash("at-g"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        oauth.lookup_refresh(&token_hash("rt-g")).await.unwrap(),
        None,
        "refresh tokens go with the grant"
    );
    assert!(oauth
        .access_token_owner(&token_hash("at-g"))
        .await
        .unwrap()
        .is_some());
    let live: Vec<String> = oauth
        .grants_of_subject("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(live, ["other"]);
    assert!(oauth
        .grant_for_access_token(&token_hash("at-other"))
        .await
        .unwrap()
        .is_some());
    assert!(!oauth.revoke_grant("unknown", "x").await.unwrap());
}

pub async fn revoking_one_access_token_leaves_the_others(store: Store) {
    issue(&store, "g", now() + 300, Some(now() + 3600)).await;
    let oauth = store.oauth();
    let second = token_hash("at-2");
    assert!(oauth
        .rotate_refresh(
            &token_hash("rt-g"),
            "g",
            b"sealed",
            (&second, now() + 300),
            (&token_hash("rt-2"), now() + 3600),
        )
        .await
        .unwrap());
    oauth
        .revoke_access_token(&token_hash("at-g"))
        .await
        .unwrap();
    assert_eq!(
        oauth
            .grant_for_access_token(&token_hash("at-g"))
            .await
            .unwrap(),
        None
    );
    assert!(oauth
        .grant_for_access_token(&second)
        .await
        .unwrap()
        .is_some());
    assert!(oauth
        .lookup_refresh(&token_hash("rt-2"))
        .await
        .unwrap()
        .is_some());
}

pub async fn refresh_rotation_keeps_the_grace_answer(store: Store) {
    issue(&store, "g", now() + 300, Some(now() + 3600)).await;
    let oauth = store.oauth();
    let old = token_hash("rt-g");
    let new = token_hash("rt-new");
    let access = token_hash("at-new");
    let before = now();
    assert!(oauth
        .rotate_refresh(
            &old,
            "g",
            b"the sealed answer",
            (&access, now() + 300),
            (&new, now() + 3600)
        )
        .await
        .unwrap());
    // The rotated token is still found, with what the grace window needs: when, and the answer.
    let rotated = oauth.lookup_refresh(&old).await.unwrap().expect("kept");
    let at = rotated.rotated_at.expect("marked rotated");
    assert!((before..=now()).contains(&at), "{at}");
    assert_eq!(
        rotated.grace_response.as_deref(),
        Some(&b"the sealed answer"[..])
    );
    let fresh = oauth.lookup_refresh(&new).await.unwrap().expect("stored");
    assert_eq!(
        (
            fresh.grant.id.as_str(),
            fresh.rotated_at,
            fresh.grace_response
        ),
        ("g", None, None)
    );
    assert_eq!(
        oauth
            .grant_for_access_token(&access)
            .await
            .unwrap()
            .map(|g| g.id),
        Some("g".into())
    );
}

pub async fn a_rotated_refresh_token_cannot_rotate_again(store: Store) {
    issue(&store, "g", now() + 300, Some(now() + 3600)).await;
    let oauth = store.oauth();
    let old = token_hash("rt-g");
    assert!(oauth
        .rotate_refresh(
            &old,
            "g",
            b"first",
            (&token_hash("at-1"), now() + 300),
            (&token_hash("rt-1"), now() + 3600)
        )
        .await
        .unwrap());
    // A reuse: refused, and nothing of it written.
    assert!(!oauth
        .rotate_refresh(
            &old,
            "g",
            b"second",
            (&token_hash("at-2"), now() + 300),
            (&token_hash("rt-2"), now() + 3600)
        )
        .await
        .unwrap());
    assert_eq!(
        oauth
            .lookup_refresh(&old)
            .await
            .unwrap()
            .unwrap()
            .grace_response,
        Some(b"first".to_vec()),
        "the first answer stays"
    );
    assert_eq!(
        oauth.lookup_refresh(&token_hash("rt-2")).await.unwrap(),
        None
    );
    assert_eq!(
        oauth.access_token_owner(&token_hash("at-2")).await.unwrap(),
        None
    );
    // Reuse detection: the caller revokes the family, and every token of it goes.
    assert!(oauth
        .revoke_grant("g", "refresh token reused")
        .await
        .unwrap());
    for refresh in ["rt-g", "rt-1"] {
        assert_eq!(
            oauth.lookup_refresh(&token_hash(refresh)).await.unwrap(),
            None
        );
    }
    assert_eq!(
        oauth
            .grant_for_access_token(&token_hash("at-1"))
            .await
            .unwrap(),
        None
    );
}

pub async fn concurrent_rotation_has_one_winner(store: Store) {
    issue(&store, "g", now() + 300, Some(now() + 3600)).await;
    let mut set = JoinSet::new();
    for i in 0..8 {
        let oauth = store.oauth().clone();
        set.spawn(async move {
            let rotated = oauth
                .rotate_refresh(
                    &token_hash("rt-g"),
                    "g",
                    format!("answer {i}").as_bytes(),
                    (&token_hash(&format!("at-{i}")), now() + 300),
                    (&token_hash(&format!("rt-{i}")), now() + 3600),
                )
                .await
                .unwrap();
            (i, rotated)
        });
    }
    let winners: Vec<i32> = set
        .join_all()
        .await
        .into_iter()
        .filter_map(|(i, won)| won.then_some(i))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one of 8 concurrent rotations");
    let oauth = store.oauth();
    for i in 0..8 {
        let stored = oauth
            .lookup_refresh(&token_hash(&format!("rt-{i}")))
            .await
            .unwrap()
            .is_some();
        assert_eq!(stored, winners == [i], "rotation {i}");
    }
    assert_eq!(
        oauth
            .lookup_refresh(&token_hash("rt-g"))
            .await
            .unwrap()
            .unwrap()
            .grace_response,
        Some(format!("answer {}", winners[0]).into_bytes())
    );
}

pub async fn expired_oauth_rows_are_purged(store: Store) {
    let oauth = store.oauth();
    let long_expired = token_hash("long expired code");
    let just_expired = token_hash("just expired code");
    oauth
        .put_code(&long_expired, &code_record("rp", now() - 3601 - 5))
        .await
        .unwrap();
    oauth
        .put_code(&just_expired, &code_record("rp", now() - 10))
        .await
        .unwrap();
    // Expired tokens, in a grant that has expired too: all of it goes.
    oauth
        .create_grant(
            &new_grant("dead", now() - 10),
            None,
            (&token_hash("at-dead"), now() - 10),
            Some((&token_hash("rt-dead"), now() - 10)),
        )
        .await
        .unwrap();
    // An expired grant whose access token still lives stays, with its token.
    oauth
        .create_grant(
            &new_grant("lingering", now() - 10),
            None,
            (&token_hash("at-lingering"), now() + 300),
            None,
        )
        .await
        .unwrap();
    issue(&store, "live", now() + 300, Some(now() + 3600)).await;

    assert!(store.housekeeping().purge_expired().await.unwrap() >= 4);
    assert_eq!(
        oauth.consume_code(&long_expired).await.unwrap(),
        ConsumedCode::Unknown
    );
    assert!(
        matches!(
            oauth.consume_code(&just_expired).await.unwrap(),
            ConsumedCode::Fresh(_)
        ),
        "kept an hour past expiry, so that a late replay is recognised"
    );
    assert_eq!(
        oauth
            .access_token_owner(&token_hash("at-dead"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        oauth.lookup_refresh(&token_hash("rt-dead")).await.unwrap(),
        None
    );
    let mut grants: Vec<String> = oauth
        .grants_of_subject("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    grants.sort();
    assert_eq!(grants, ["lingering", "live"]);
    assert!(oauth
        .lookup_refresh(&token_hash("rt-live"))
        .await
        .unwrap()
        .is_some());
}

// --- sessions -------------------------------------------------------------------------------

fn session(expires_in: CookieDuration) -> Record {
    Record {
        id: Id::default(),
        data: HashMap::from([("signed_in".to_string(), json!({"subject": "alice"}))]),
        expiry_date: OffsetDateTime::now_utc() + expires_in,
    }
}

pub async fn session_store_round_trip(store: Store) {
    let sessions = store.sessions().session_store();
    let mut record = session(CookieDuration::hours(1));
    let id = record.id;
    sessions.create(&mut record).await.unwrap();
    assert_eq!(record.id, id, "a fresh id is kept");
    let loaded = sessions.load(&id).await.unwrap().expect("stored");
    assert_eq!(loaded.data, record.data);

    record.data.insert("csrf".into(), json!("token"));
    sessions.save(&record).await.unwrap();
    let loaded = sessions.load(&id).await.unwrap().expect("saved");
    assert_eq!(loaded.data.get("csrf"), Some(&json!("token")));

    sessions.delete(&id).await.unwrap();
    assert_eq!(sessions.load(&id).await.unwrap(), None);

    let mut expired = session(-CookieDuration::minutes(1));
    sessions.create(&mut expired).await.unwrap();
    assert_eq!(
        sessions.load(&expired.id).await.unwrap(),
        None,
        "an expired session is never loaded"
    );
}

pub async fn expired_sessions_are_deleted(store: Store) {
    let sessions = store.sessions().session_store();
    let mut first = session(-CookieDuration::hours(1));
    let mut second = session(-CookieDuration::hours(1));
    let mut live = session(CookieDuration::hours(1));
    for record in [&mut first, &mut second, &mut live] {
        sessions.create(record).await.unwrap();
    }
    // The probe: creating a session under an id still stored gives it another id. While the
    // expired row is there, that is what happens...
    let mut probe = session(CookieDuration::hours(1));
    probe.id = first.id;
    sessions.create(&mut probe).await.unwrap();
    assert_ne!(probe.id, first.id, "the expired row is still stored");

    store.housekeeping().purge_expired().await.unwrap();
    // ...and once it is deleted, its id is free.
    let mut probe = session(CookieDuration::hours(1));
    probe.id = second.id;
    sessions.create(&mut probe).await.unwrap();
    assert_eq!(probe.id, second.id, "the expired row was deleted");
    assert!(sessions.load(&live.id).await.unwrap().is_some());

    // The same through the sessions port directly.
    let mut third = session(-CookieDuration::hours(1));
    sessions.create(&mut third).await.unwrap();
    store.sessions().delete_expired().await.unwrap();
    let mut probe = session(CookieDuration::hours(1));
    probe.id = third.id;
    sessions.create(&mut probe).await.unwrap();
    assert_eq!(probe.id, third.id);
    assert!(sessions.load(&live.id).await.unwrap().is_some());
}

// --- Lucca links and upstream identities ----------------------------------------------------

pub async fn lucca_links_are_upserted_and_found(store: Store) {
    let links = store.lucca_links();
    let before = now();
    links
        .put("alice", 2, Some("alice@acme.test"), "active")
        .await
        .unwrap();
    links.put("alice", 2, None, "ended").await.unwrap();
    links
        .put("bob", 3, Some("bob@acme.test"), "not_started")
        .await
        .unwrap();
    let link = links.get("alice").await.unwrap().expect("stored");
    assert_eq!(
        (
            link.subject.as_str(),
            link.lucca_id,
            link.email.as_deref(),
            link.status.as_str()
        ),
        ("alice", 2, None, "ended")
    );
    assert!((before..=now()).contains(&link.checked_at));
    assert_eq!(links.by_lucca_id(2).await.unwrap(), Some(link));
    assert_eq!(
        links.by_lucca_id(3).await.unwrap().map(|l| l.subject),
        Some("bob".into())
    );
    assert_eq!(links.get("carol").await.unwrap(), None);
    assert_eq!(links.by_lucca_id(99).await.unwrap(), None);

    links
        .put("alice-upstream", 2, Some("alice@acme.test"), "active")
        .await
        .unwrap();
    let both: Vec<String> = links
        .with_lucca_id(2)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.subject)
        .collect();
    assert_eq!(both, ["alice", "alice-upstream"]);
    assert!(links.with_lucca_id(99).await.unwrap().is_empty());
    let first = links.page(None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|l| l.subject.as_str()).collect::<Vec<_>>(),
        ["alice", "alice-upstream"]
    );
    let rest = links.page(Some("alice-upstream"), 2).await.unwrap();
    assert_eq!(
        rest.iter().map(|l| l.subject.as_str()).collect::<Vec<_>>(),
        ["bob"]
    );
    assert!(links.page(Some("bob"), 2).await.unwrap().is_empty());
}

// --- jobs that follow Lucca: state and lease ------------------------------------------------

pub async fn sync_state_round_trips_and_cuts_long_errors(store: Store) {
    let sync = store.sync_state();
    assert_eq!(sync.sync_state("directory").await.unwrap(), None);
    let mut state = super::SyncStateRecord {
        run_started_at: Some(1_700_000_000),
        run_since: Some(1_699_999_000),
        run_full: true,
        cursor: 2000,
        run_counts: Some(r#"{"seen":2000}"#.into()),
        last_error: Some("é".repeat(super::sync_state::MAX_SYNC_ERROR_BYTES)),
        last_error_at: Some(1_699_000_000),
        ..Default::default()
    };
    sync.save_sync_state("directory", &state).await.unwrap();
    let stored = sync.sync_state("directory").await.unwrap().unwrap();
    let error = stored.last_error.clone().unwrap();
    assert!(error.len() <= super::sync_state::MAX_SYNC_ERROR_BYTES + "…".len());
    assert!(error.ends_with('…'));
    assert_eq!(
        (
            stored.run_started_at,
            stored.run_since,
            stored.run_full,
            stored.cursor
        ),
        (Some(1_700_000_000), Some(1_699_999_000), true, 2000)
    );
    state.last_error = None;
    state.last_started_at = state.run_started_at.take();
    state.last_full_at = state.last_started_at;
    state.last_finished_at = Some(1_700_000_100);
    state.last_counts = state.run_counts.take();
    state.run_full = false;
    state.cursor = 0;
    sync.save_sync_state("directory", &state).await.unwrap();
    assert_eq!(sync.sync_state("directory").await.unwrap(), Some(state));
    assert_eq!(sync.sync_state("other").await.unwrap(), None);
}

pub async fn a_job_lease_has_one_holder_until_it_expires_or_is_released(store: Store) {
    let sync = store.sync_state();
    assert!(sync.try_lease("directory", "node-a", 60).await.unwrap());
    assert!(
        sync.try_lease("directory", "node-a", 60).await.unwrap(),
        "renewed by its holder"
    );
    assert!(!sync.try_lease("directory", "node-b", 60).await.unwrap());
    assert!(
        sync.try_lease("webhooks", "node-b", 60).await.unwrap(),
        "one lease per job"
    );
    sync.release_lease("directory", "node-b").await.unwrap();
    assert!(
        !sync.try_lease("directory", "node-b", 60).await.unwrap(),
        "only the holder releases"
    );
    sync.release_lease("directory", "node-a").await.unwrap();
    assert!(sync.try_lease("directory", "node-b", 1).await.unwrap());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        sync.try_lease("directory", "node-c", 60).await.unwrap(),
        "an expired lease is taken over"
    );
    assert!(!sync.try_lease("directory", "node-b", 60).await.unwrap());

    // Many nodes at once: exactly one wins.
    let mut set = JoinSet::new();
    for i in 0..8 {
        let sync = sync.clone();
        set.spawn(async move { sync.try_lease("race", &format!("n{i}"), 60).await.unwrap() });
    }
    let mut winners = 0;
    while let Some(won) = set.join_next().await {
        winners += usize::from(won.unwrap());
    }
    assert_eq!(winners, 1);
}

pub async fn upstream_identities_are_upserted_and_found_by_email(store: Store) {
    let upstream = store.upstream_identities();
    upstream
        .put("up-1", "alice@acme.test", "corp", r#"{"v":1}"#, false)
        .await
        .unwrap();
    upstream
        .put("up-1", "alice@acme.test", "corp", r#"{"v":2}"#, true)
        .await
        .unwrap();
    assert_eq!(
        upstream.by_email("  Alice@ACME.test ").await.unwrap(),
        Some(UpstreamIdentity {
            identity: r#"{"v":2}"#.into(),
            groups_overage: true
        })
    );
    assert_eq!(upstream.by_email("bob@acme.test").await.unwrap(), None);
    // Changing email moves the person.
    upstream
        .put("up-1", "alice@new.test", "corp", r#"{"v":3}"#, false)
        .await
        .unwrap();
    assert_eq!(upstream.by_email("alice@acme.test").await.unwrap(), None);
    assert_eq!(
        upstream.by_email("alice@new.test").await.unwrap(),
        Some(UpstreamIdentity {
            identity: r#"{"v":3}"#.into(),
            groups_overage: false
        })
    );
}

// --- the Lucca outbox -----------------------------------------------------------------------

pub async fn outbox_coalesces_retries_backs_off_and_delivers_once(store: Store) {
    let outbox = store.outbox();
    outbox
        .enqueue("alice", 2, r#"{"job_title":"A"}"#)
        .await
        .unwrap();
    let due = outbox.due(now(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let first = due[0].clone();
    assert_eq!(
        (
            first.status.as_str(),
            first.version,
            first.attempts,
            first.last_error.as_deref()
        ),
        ("pending", 1, 0, None)
    );

    // A newer sign-in replaces the payload while the first one is being delivered.
    outbox
        .enqueue("alice", 2, r#"{"job_title":"B"}"#)
        .await
        .unwrap();
    assert!(!outbox
        .mark_delivered(first.id, first.version)
        .await
        .unwrap());
    outbox
        .schedule_retry(first.id, first.version, now() + 3600, "boom")
        .await
        .unwrap();
    let due = outbox.due(now(), 10).await.unwrap();
    assert_eq!(due.len(), 1, "the newer payload stays due, in the same row");
    let second = &due[0];
    assert_eq!(
        (
            second.id,
            second.payload.as_str(),
            second.version,
            second.attempts
        ),
        (first.id, r#"{"job_title":"B"}"#, 2, 1)
    );

    outbox
        .schedule_retry(second.id, second.version, now() + 3600, "boom again")
        .await
        .unwrap();
    assert!(
        outbox.due(now(), 10).await.unwrap().is_empty(),
        "backed off"
    );
    let next = outbox.next_due_at().await.unwrap().unwrap();
    assert!(next >= now() + 3599, "backed off: {next}");
    let later = outbox.due(now() + 3601, 10).await.unwrap();
    assert_eq!(later[0].last_error.as_deref(), Some("boom again"));
    assert!(outbox
        .mark_delivered(later[0].id, later[0].version)
        .await
        .unwrap());
    assert!(
        !outbox
            .mark_delivered(later[0].id, later[0].version)
            .await
            .unwrap(),
        "delivered once"
    );
    assert_eq!(outbox.next_due_at().await.unwrap(), None);
    let rows = outbox.recent(Some("alice"), 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].status.as_str(),
            rows[0].attempts,
            rows[0].last_error.as_deref()
        ),
        ("done", 3, None)
    );
    // A sign-in after delivery queues a new row rather than reopening the delivered one.
    outbox
        .enqueue("alice", 2, r#"{"job_title":"C"}"#)
        .await
        .unwrap();
    let rows = outbox.recent(Some("alice"), 10).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        ["pending", "done"]
    );
}

pub async fn outbox_delivers_oldest_due_first(store: Store) {
    let outbox = store.outbox();
    for (subject, lucca_id) in [("a", 1), ("b", 2), ("c", 3)] {
        outbox.enqueue(subject, lucca_id, "{}").await.unwrap();
    }
    let due = outbox.due(now(), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|r| r.subject.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"],
        "queued order among rows due at the same time"
    );
    let a = &due[0];
    outbox
        .schedule_retry(a.id, a.version, now() + 60, "later")
        .await
        .unwrap();
    let due = outbox.due(now() + 120, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|r| r.subject.as_str()).collect::<Vec<_>>(),
        ["b", "c", "a"],
        "earliest due first"
    );
    assert_eq!(outbox.due(now() + 120, 2).await.unwrap().len(), 2);
    assert_eq!(
        outbox.due(now() + 120, 0).await.unwrap().len(),
        1,
        "at least one"
    );
    assert_eq!(
        outbox.next_due_at().await.unwrap(),
        Some(due[0].next_attempt_at)
    );
    let recent = outbox.recent(None, 2).await.unwrap();
    assert_eq!(
        recent
            .iter()
            .map(|r| r.subject.as_str())
            .collect::<Vec<_>>(),
        ["c", "b"],
        "newest first"
    );
}

pub async fn outbox_gives_up_and_purges_finished_rows(store: Store) {
    let outbox = store.outbox();
    outbox.enqueue("a", 1, r#"{"v":1}"#).await.unwrap();
    outbox.enqueue("b", 2, "{}").await.unwrap();
    outbox.enqueue("c", 3, "{}").await.unwrap();
    let due = outbox.due(now(), 10).await.unwrap();
    let (a, b) = (&due[0], &due[1]);

    // A newer payload arrived before the give-up: it is still tried.
    outbox.enqueue("a", 1, r#"{"v":2}"#).await.unwrap();
    outbox.mark_failed(a.id, a.version, "gone").await.unwrap();
    let row = &outbox.recent(Some("a"), 1).await.unwrap()[0];
    assert_eq!(
        (row.status.as_str(), row.attempts, row.last_error.as_deref()),
        ("pending", 1, Some("gone"))
    );
    outbox.mark_failed(a.id, row.version, "gone").await.unwrap();
    assert!(outbox.mark_delivered(b.id, b.version).await.unwrap());
    let row = &outbox.recent(Some("a"), 1).await.unwrap()[0];
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 2));
    assert!(
        !outbox.mark_delivered(a.id, row.version).await.unwrap(),
        "a failed row is not delivered later"
    );

    assert_eq!(
        outbox.purge_finished(now() - 60).await.unwrap(),
        0,
        "recent ones are kept"
    );
    assert_eq!(outbox.purge_finished(now() + 1).await.unwrap(), 2);
    let left = outbox.recent(None, 10).await.unwrap();
    assert_eq!(
        left.iter()
            .map(|r| (r.subject.as_str(), r.status.as_str()))
            .collect::<Vec<_>>(),
        [("c", "pending")],
        "pending rows stay, whatever their age"
    );
}

// --- migration jobs -------------------------------------------------------------------------

fn migration_row(row_no: i64, seq: i64) -> NewMigrationRow {
    NewMigrationRow {
        row_no,
        seq,
        email: format!("p{row_no}@acme.test"),
        input: format!(r#"{{"row":{row_no}}}"#),
        class: None,
        message: None,
        done: false,
    }
}

fn outcome(row_no: i64, class: &str, done: bool) -> MigrationRowOutcome {
    MigrationRowOutcome {
        row_no,
        class: class.into(),
        fields: Some(r#"[{"field":"job_title","from":null,"to":"Lead"}]"#.into()),
        lucca_id: Some(row_no * 10),
        message: Some(format!("row {row_no}")),
        done,
        findings: Some(format!(
            r#"[{{"class":"{class}","message":"row {row_no}"}},{{"class":"not_in_directory","message":"x"}}]"#
        )),
    }
}

pub async fn migration_job_lifecycle(store: Store) {
    let jobs = store.migration_jobs();
    let refused = NewMigrationRow {
        class: Some("invalid_row".into()),
        message: Some("no email".into()),
        done: true,
        ..migration_row(4, 2)
    };
    let before = now();
    jobs.create_job(
        "j1",
        true,
        true,
        &[migration_row(2, 1), migration_row(3, 0), refused],
    )
    .await
    .unwrap();
    let job = jobs.job("j1").await.unwrap().expect("created");
    assert_eq!(
        (
            job.id.as_str(),
            job.dry_run,
            job.notify,
            job.status.as_str(),
            job.total,
            job.started_at,
            job.finished_at,
            job.error
        ),
        ("j1", true, true, "queued", 3, None, None, None)
    );
    assert!((before..=now()).contains(&job.created_at));
    assert_eq!(jobs.next_job().await.unwrap().as_deref(), Some("j1"));

    assert!(jobs.start_job("j1").await.unwrap());
    let started = jobs.job("j1").await.unwrap().unwrap().started_at.unwrap();
    assert!(
        jobs.start_job("j1").await.unwrap(),
        "running again after a restart"
    );
    assert_eq!(
        jobs.job("j1").await.unwrap().unwrap().started_at,
        Some(started),
        "the first start is kept"
    );
    let pending = jobs.rows("j1", true).await.unwrap();
    assert_eq!(
        pending.iter().map(|r| r.row_no).collect::<Vec<_>>(),
        [3, 2],
        "processing order, refused rows left out"
    );
    assert_eq!(
        jobs.rows("j1", false)
            .await
            .unwrap()
            .iter()
            .map(|r| r.row_no)
            .collect::<Vec<_>>(),
        [3, 2, 4]
    );

    jobs.record_outcomes(
        "j1",
        &[outcome(3, "ready", true), outcome(2, "create", false)],
    )
    .await
    .unwrap();
    jobs.record_outcomes("j1", &[]).await.unwrap();
    jobs.mark_write_started("j1", 3).await.unwrap();
    let first_write = jobs.rows("j1", false).await.unwrap()[0]
        .write_started_at
        .unwrap();
    jobs.mark_write_started("j1", 3).await.unwrap();
    jobs.set_notice("j1", 3, "sent").await.unwrap();
    let pending = jobs.rows("j1", true).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].row_no,
            pending[0].class.as_deref(),
            pending[0].done
        ),
        (2, Some("create"), false),
        "a planned class on a row still to do"
    );

    let report = jobs.report_rows("j1").await.unwrap();
    assert_eq!(
        report.iter().map(|r| r.row_no).collect::<Vec<_>>(),
        [2, 3, 4],
        "upload order"
    );
    let done = &report[1];
    assert_eq!(
        (
            done.email.as_str(),
            done.input.as_str(),
            done.class.as_deref(),
            done.fields.as_deref(),
            done.lucca_id,
            done.message.as_deref(),
            done.done,
            done.write_started_at,
            done.notice.as_deref(),
            done.findings.as_deref(),
        ),
        (
            "p3@acme.test",
            r#"{"row":3}"#,
            Some("ready"),
            Some(r#"[{"field":"job_title","from":null,"to":"Lead"}]"#),
            Some(30),
            Some("row 3"),
            true,
            Some(first_write),
            Some("sent"),
            Some(
                r#"[{"class":"ready","message":"row 3"},{"class":"not_in_directory","message":"x"}]"#
            ),
        )
    );
    assert_eq!(
        report[2].findings, None,
        "refused at upload: class and message only"
    );
    assert_eq!(
        (report[2].class.as_deref(), report[2].message.as_deref()),
        (Some("invalid_row"), Some("no email"))
    );

    let mut counts: Vec<(Option<String>, bool, i64)> = jobs
        .counts("j1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.class, c.done, c.count))
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            (Some("create".into()), false, 1),
            (Some("invalid_row".into()), true, 1),
            (Some("ready".into()), true, 1)
        ]
    );

    jobs.finish_job("j1", "failed", Some("Lucca said no"))
        .await
        .unwrap();
    let job = jobs.job("j1").await.unwrap().unwrap();
    assert_eq!(
        (job.status.as_str(), job.error.as_deref()),
        ("failed", Some("Lucca said no"))
    );
    assert!(job.finished_at.is_some());
    assert_eq!(jobs.next_job().await.unwrap(), None);
    assert!(
        !jobs.start_job("j1").await.unwrap(),
        "an ended job stays ended"
    );
    // An ended job cannot be cancelled or finished again.
    let after = jobs.cancel_job("j1").await.unwrap().unwrap();
    assert_eq!(after.status, "failed");
    jobs.finish_job("j1", "done", None).await.unwrap();
    assert_eq!(
        jobs.job_status("j1").await.unwrap().as_deref(),
        Some("failed")
    );
    assert_eq!(jobs.cancel_job("nope").await.unwrap(), None);
    assert_eq!(jobs.job("nope").await.unwrap(), None);
    assert_eq!(jobs.job_status("nope").await.unwrap(), None);
}

pub async fn a_cancelled_job_stays_cancelled(store: Store) {
    let jobs = store.migration_jobs();
    jobs.create_job("j2", false, false, &[migration_row(2, 0)])
        .await
        .unwrap();
    jobs.start_job("j2").await.unwrap();
    let cancelled = jobs.cancel_job("j2").await.unwrap().unwrap();
    assert_eq!(cancelled.status, "cancelled");
    assert!(cancelled.finished_at.is_some());
    jobs.finish_job("j2", "done", None).await.unwrap();
    assert_eq!(
        jobs.job_status("j2").await.unwrap().as_deref(),
        Some("cancelled")
    );
    assert!(!jobs.start_job("j2").await.unwrap());
    assert_eq!(jobs.next_job().await.unwrap(), None);

    jobs.create_job("j3", false, false, &[]).await.unwrap();
    assert_eq!(
        jobs.cancel_job("j3").await.unwrap().unwrap().status,
        "cancelled",
        "a queued job can be cancelled too"
    );
}

pub async fn migration_jobs_listed_newest_first_taken_oldest_first(store: Store) {
    let jobs = store.migration_jobs();
    // Created within the same second or two: the creation order still decides.
    for id in ["first", "second", "third"] {
        jobs.create_job(id, false, false, &[migration_row(2, 0)])
            .await
            .unwrap();
    }
    let listed = |jobs: Vec<crate::store::MigrationJobRecord>| {
        jobs.into_iter().map(|j| j.id).collect::<Vec<_>>()
    };
    assert_eq!(
        listed(jobs.list_jobs(10).await.unwrap()),
        ["third", "second", "first"]
    );
    assert_eq!(
        listed(jobs.list_jobs(2).await.unwrap()),
        ["third", "second"]
    );
    assert_eq!(listed(jobs.list_jobs(0).await.unwrap()), ["third"]);
    assert_eq!(jobs.next_job().await.unwrap().as_deref(), Some("first"));
    assert!(jobs.start_job("second").await.unwrap());
    assert_eq!(
        jobs.next_job().await.unwrap().as_deref(),
        Some("second"),
        "a job interrupted while running comes first"
    );
    jobs.finish_job("second", "done", None).await.unwrap();
    assert_eq!(jobs.next_job().await.unwrap().as_deref(), Some("first"));
}

// --- the audit log --------------------------------------------------------------------------

fn event<'a>(event: &'a str, subject: Option<&'a str>) -> AuditEvent<'a> {
    AuditEvent {
        event,
        outcome: "ok",
        subject,
        client: Some("rp"),
        ip: Some("192.0.2.1"),
        detail: Some(json!({"n": event})),
    }
}

pub async fn audit_is_newest_first_and_filtered(store: Store) {
    let audit = store.audit();
    let before = now();
    for (name, subject) in [
        ("one", Some("alice")),
        ("two", Some("bob")),
        ("three", None),
        ("four", Some("alice")),
    ] {
        audit.record(event(name, subject)).await.unwrap();
    }
    let all = audit.recent(10, None).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["four", "three", "two", "one"]
    );
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "ids grow");
    let four = &all[0];
    assert_eq!(
        (
            four.outcome.as_str(),
            four.subject.as_deref(),
            four.client.as_deref(),
            four.ip.as_deref(),
            four.detail.as_deref()
        ),
        (
            "ok",
            Some("alice"),
            Some("rp"),
            Some("192.0.2.1"),
            Some(r#"{"n":"four"}"#)
        )
    );
    assert!((before..=now()).contains(&four.at));
    assert_eq!(
        audit
            .recent(10, Some("alice"))
            .await
            .unwrap()
            .iter()
            .map(|e| e.event.as_str())
            .collect::<Vec<_>>(),
        ["four", "one"]
    );
    assert!(audit.recent(10, Some("carol")).await.unwrap().is_empty());
    assert_eq!(audit.recent(2, None).await.unwrap().len(), 2);
    assert_eq!(
        audit.recent(0, None).await.unwrap().len(),
        1,
        "at least one"
    );
}

/// 101 rows in one batch (stored as INSERTs of 64, 32, 4 and 1 rows): every row, each field
/// in its place, in the order given.
pub async fn an_audit_batch_of_any_size_is_stored_whole_and_in_order(store: Store) {
    let audit = store.audit();
    let names: Vec<String> = (0..101).map(|i| format!("row-{i}")).collect();
    let rows = names
        .iter()
        .map(|name| super::TimedAuditEvent::new(now(), event(name, Some(name))))
        .collect();
    audit.record_batch(rows).await.unwrap();
    let stored = audit.recent(200, None).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .rev()
            .map(|e| e.event.as_str())
            .collect::<Vec<_>>(),
        names.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(stored.windows(2).all(|w| w[0].id > w[1].id), "ids grow");
    for e in &stored {
        assert_eq!(e.subject.as_deref(), Some(e.event.as_str()));
        assert_eq!(
            e.detail.as_deref(),
            Some(format!(r#"{{"n":"{}"}}"#, e.event).as_str())
        );
        assert_eq!(
            (e.client.as_deref(), e.ip.as_deref()),
            (Some("rp"), Some("192.0.2.1"))
        );
    }
    audit.record_batch(Vec::new()).await.unwrap();
    assert_eq!(audit.recent(200, None).await.unwrap().len(), 101);
}

pub async fn audit_query_filters_and_pages(store: Store) {
    use super::AuditFilter;
    let audit = store.audit();
    let before = now();
    for (name, outcome, subject, client) in [
        ("login", "success", Some("alice"), None),
        ("login", "failure", Some("bob"), None),
        ("token", "issued", Some("alice"), Some("rp")),
        ("login", "success", Some("alice"), Some("rp")),
        ("revoked", "admin", Some("bob"), None),
    ] {
        audit
            .record(AuditEvent {
                event: name,
                outcome,
                subject,
                client,
                ip: None,
                detail: None,
            })
            .await
            .unwrap();
    }
    let query = |f: AuditFilter| {
        let store = store.clone();
        async move { store.audit_query().query(&f).await.unwrap() }
    };
    let names = |page: &super::AuditPage| {
        page.entries
            .iter()
            .map(|e| format!("{}/{}", e.event, e.outcome))
            .collect::<Vec<_>>()
    };
    let all = query(AuditFilter {
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(
        names(&all),
        [
            "revoked/admin",
            "login/success",
            "token/issued",
            "login/failure",
            "login/success"
        ]
    );
    assert_eq!(all.next_before, None, "everything fits: no next page");
    let logins = query(AuditFilter {
        event: Some("login".into()),
        outcome: Some("success".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(names(&logins), ["login/success", "login/success"]);
    let alice_rp = query(AuditFilter {
        subject: Some("alice".into()),
        client: Some("rp".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(names(&alice_rp), ["login/success", "token/issued"]);
    // Paging: two at a time, each page's cursor leading to the next, nothing seen twice.
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..5 {
        let page = query(AuditFilter {
            before: cursor,
            limit: 2,
            ..Default::default()
        })
        .await;
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.iter().map(|e| e.id));
        cursor = page.next_before;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, all.entries.iter().map(|e| e.id).collect::<Vec<_>>());
    // Time range, inclusive at both ends.
    let in_range = query(AuditFilter {
        since: Some(before),
        until: Some(now()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(in_range.entries.len(), 5);
    for f in [
        AuditFilter {
            since: Some(now() + 100),
            limit: 10,
            ..Default::default()
        },
        AuditFilter {
            until: Some(before - 100),
            limit: 10,
            ..Default::default()
        },
        AuditFilter {
            subject: Some("carol".into()),
            limit: 10,
            ..Default::default()
        },
    ] {
        assert!(query(f.clone()).await.entries.is_empty(), "{f:?}");
    }
    // The limit is clamped, never refused, at the port.
    assert_eq!(
        query(AuditFilter {
            limit: 0,
            ..Default::default()
        })
        .await
        .entries
        .len(),
        1
    );
}

pub async fn audit_fields_are_capped(store: Store) {
    let huge = "x".repeat(900_000);
    store
        .audit()
        .record(AuditEvent {
            event: "login",
            outcome: "bad_credentials",
            subject: Some(&huge),
            client: Some(&huge),
            ip: Some(&huge),
            detail: Some(json!({ "reason": huge, "groups": vec![&huge[..1000]; 100] })),
        })
        .await
        .unwrap();
    let entry = store.audit().recent(1, None).await.unwrap().remove(0);
    let marker = format!("…[cut {} bytes]", 900_000 - MAX_FIELD_BYTES);
    for field in [&entry.subject, &entry.client, &entry.ip] {
        let field = field.as_deref().unwrap();
        assert_eq!(field.len(), MAX_FIELD_BYTES + marker.len());
        assert!(field.ends_with(&marker));
    }
    let detail = entry.detail.unwrap();
    assert!(detail.len() <= MAX_DETAIL_BYTES, "{}", detail.len());
    assert!(detail.contains("…[cut "), "{detail}");
}

pub async fn audit_retention_purges_old_entries(store: Store) {
    let audit = store.audit();
    audit.record(event("old", None)).await.unwrap();
    audit.record(event("old", None)).await.unwrap();
    let old_at = audit.recent(1, None).await.unwrap()[0].at;
    // The port takes a retention, not a date: let the old entries age three seconds, then
    // keep two.
    while now() < old_at + 3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    audit.record(event("new", None)).await.unwrap();
    assert_eq!(
        audit.purge_older_than(Duration::ZERO).await.unwrap(),
        0,
        "a zero retention keeps everything"
    );
    assert_eq!(audit.recent(10, None).await.unwrap().len(), 3);
    assert_eq!(
        audit
            .purge_older_than(Duration::from_secs(2))
            .await
            .unwrap(),
        2
    );
    let kept: Vec<String> = audit
        .recent(10, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(kept, ["new"]);
    assert_eq!(
        audit
            .purge_older_than(Duration::from_secs(2))
            .await
            .unwrap(),
        0
    );
}

// --- health ---------------------------------------------------------------------------------

pub async fn ping_answers(store: Store) {
    store.health().ping().await.unwrap();
}

// --- leases ---------------------------------------------------------------------------------

pub async fn a_named_lease_has_one_holder(store: Store) {
    let leases = store.leases();
    let ttl = Duration::from_secs(60);
    assert!(leases.try_acquire("sync", "a", ttl).await.unwrap());
    assert!(!leases.try_acquire("sync", "b", ttl).await.unwrap());
    assert!(leases.try_acquire("sync", "a", ttl).await.unwrap(), "own");
    assert!(leases.try_acquire("other", "b", ttl).await.unwrap());
    assert!(!leases.renew("sync", "b", ttl).await.unwrap());
    assert!(leases.renew("sync", "a", ttl).await.unwrap());
    leases.release("sync", "b").await.unwrap();
    assert!(
        !leases.try_acquire("sync", "b", ttl).await.unwrap(),
        "not b's"
    );
    leases.release("sync", "a").await.unwrap();
    assert!(leases.try_acquire("sync", "b", ttl).await.unwrap());

    // Many at once: one winner.
    let mut set = JoinSet::new();
    for i in 0..8 {
        let leases = leases.clone();
        set.spawn(async move {
            leases
                .try_acquire("race", &format!("n{i}"), Duration::from_secs(60))
                .await
                .unwrap()
        });
    }
    let mut won = 0;
    while let Some(r) = set.join_next().await {
        won += usize::from(r.unwrap());
    }
    assert_eq!(won, 1);
}

pub async fn an_expired_lease_goes_to_the_next_node(store: Store) {
    let leases = store.leases();
    assert!(leases
        .try_acquire("sync", "a", Duration::from_secs(1))
        .await
        .unwrap());
    assert!(!leases
        .try_acquire("sync", "b", Duration::from_secs(60))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(leases
        .try_acquire("sync", "b", Duration::from_secs(60))
        .await
        .unwrap());
    assert!(!leases
        .renew("sync", "a", Duration::from_secs(60))
        .await
        .unwrap());
}

// --- two nodes on one store -----------------------------------------------------------------
// Each check takes two stores opened as two nodes on the same data, with a one-second lease.

/// One `#[tokio::test]` per two-node check; `$open` returns `Option<(Store, Store, guard)>`
/// (`None`: the backend is not available here, the check is skipped).
#[macro_export]
#[doc(hidden)]
macro_rules! store_two_node_suite {
    ($open:path) => {
        $crate::store_two_node_suite!(@each $open;
            outbox_rows_are_claimed_by_one_node,
            outbox_rows_of_a_stalled_node_go_to_another,
            outbox_enqueues_from_two_nodes_make_one_pending_row,
            concurrent_claims_take_disjoint_rows,
            a_migration_job_runs_on_one_node_and_resumes_on_another,
            a_sync_lease_is_held_by_one_node_until_it_expires,
            two_nodes_share_one_lucca_window,
            two_nodes_count_the_same_sign_in_failures,
        );
    };
    (@each $open:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some((a, b, _guard)) = $open().await else {
                    return;
                };
                $crate::store::conformance::$check(a, b).await;
            }
        )*
    };
}

/// The lease the two-node checks open their nodes with.
pub const SHORT_LEASE: Duration = Duration::from_secs(1);

async fn past_the_lease() {
    // Leases are in whole seconds: one second and a bit past the deadline.
    tokio::time::sleep(SHORT_LEASE * 2 + Duration::from_millis(100)).await;
}

pub async fn outbox_rows_are_claimed_by_one_node(a: Store, b: Store) {
    assert_ne!(a.node_id(), b.node_id());
    a.outbox().enqueue("alice", 2, "{}").await.unwrap();
    let claimed = a.outbox().due(now(), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(b.outbox().due(now(), 10).await.unwrap().is_empty(), "a's");
    assert!(
        a.outbox().due(now(), 10).await.unwrap().len() == 1,
        "a node sees its own claims again"
    );
    let row = &claimed[0];
    assert!(
        !b.outbox()
            .mark_delivered(row.id, row.version)
            .await
            .unwrap(),
        "fenced to the holder"
    );
    b.outbox()
        .mark_failed(row.id, row.version, "not b's")
        .await
        .unwrap();
    assert_eq!(
        a.outbox().recent(None, 1).await.unwrap()[0].status,
        "pending"
    );
    assert!(a
        .outbox()
        .mark_delivered(row.id, row.version)
        .await
        .unwrap());
    assert_eq!(b.outbox().next_due_at().await.unwrap(), None);
}

pub async fn outbox_rows_of_a_stalled_node_go_to_another(a: Store, b: Store) {
    a.outbox().enqueue("alice", 2, "{}").await.unwrap();
    let row = a.outbox().due(now(), 10).await.unwrap().remove(0);
    let wake = b.outbox().next_due_at().await.unwrap().unwrap();
    assert!(wake > now() - 1, "b waits for a's lease: {wake}");
    past_the_lease().await;
    let taken = b.outbox().due(now(), 10).await.unwrap();
    assert_eq!(taken.len(), 1, "a stalled past its lease");
    assert!(
        !a.outbox()
            .mark_delivered(row.id, row.version)
            .await
            .unwrap(),
        "a woke up too late: b holds the row"
    );
    assert!(b
        .outbox()
        .mark_delivered(row.id, row.version)
        .await
        .unwrap());
    let rows = a.outbox().recent(None, 10).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.status.as_str(), r.attempts))
            .collect::<Vec<_>>(),
        [("done", 1)],
        "delivered once"
    );
}

pub async fn outbox_enqueues_from_two_nodes_make_one_pending_row(a: Store, b: Store) {
    let mut set = JoinSet::new();
    for i in 0..10 {
        for store in [a.clone(), b.clone()] {
            set.spawn(async move {
                store
                    .outbox()
                    .enqueue("alice", 2, &format!(r#"{{"v":{i}}}"#))
                    .await
                    .unwrap()
            });
        }
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let rows = a.outbox().recent(None, 100).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!((rows[0].status.as_str(), rows[0].version), ("pending", 20));
}

pub async fn concurrent_claims_take_disjoint_rows(a: Store, b: Store) {
    for i in 0..30 {
        a.outbox().enqueue(&format!("p{i}"), i, "{}").await.unwrap();
    }
    let (x, y) = tokio::join!(a.outbox().due(now(), 20), b.outbox().due(now(), 20));
    let (x, y) = (x.unwrap(), y.unwrap());
    let mut ids: Vec<i64> = x.iter().chain(&y).map(|r| r.id).collect();
    ids.sort();
    let claimed = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), claimed, "no row claimed twice");
    assert_eq!(claimed, 30, "{} + {}", x.len(), y.len());
}

pub async fn a_migration_job_runs_on_one_node_and_resumes_on_another(a: Store, b: Store) {
    a.migration_jobs()
        .create_job(
            "j1",
            false,
            false,
            &[migration_row(2, 0), migration_row(3, 1)],
        )
        .await
        .unwrap();
    let (ja, jb) = (a.migration_jobs(), b.migration_jobs());
    assert!(ja.start_job("j1").await.unwrap());
    assert!(!jb.start_job("j1").await.unwrap(), "a holds it");
    assert_eq!(jb.next_job().await.unwrap(), None);
    assert!(matches!(
        jb.record_outcomes("j1", &[outcome(2, "updated", true)])
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        jb.mark_write_started("j1", 2).await,
        Err(StoreError::LeaseLost { .. })
    ));
    ja.mark_write_started("j1", 2).await.unwrap();
    ja.record_outcomes("j1", &[outcome(2, "updated", true)])
        .await
        .unwrap();
    assert!(ja.renew_job_lease("j1").await.unwrap());

    // a stalls past its lease; b resumes the job where a stopped.
    past_the_lease().await;
    assert_eq!(jb.next_job().await.unwrap().as_deref(), Some("j1"));
    assert!(jb.start_job("j1").await.unwrap());
    assert!(!ja.renew_job_lease("j1").await.unwrap(), "lost");
    assert!(matches!(
        ja.record_outcomes("j1", &[outcome(3, "updated", true)])
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        ja.mark_write_started("j1", 3).await,
        Err(StoreError::LeaseLost { .. })
    ));
    ja.finish_job("j1", "failed", Some("a gave up"))
        .await
        .unwrap();
    let pending = jb.rows("j1", true).await.unwrap();
    assert_eq!(
        pending.iter().map(|r| r.row_no).collect::<Vec<_>>(),
        [3],
        "b sees a's outcome and resumes after it"
    );
    jb.record_outcomes("j1", &[outcome(3, "updated", true)])
        .await
        .unwrap();
    jb.finish_job("j1", "done", None).await.unwrap();
    let job = ja.job("j1").await.unwrap().unwrap();
    assert_eq!((job.status.as_str(), job.error), ("done", None));
}

/// The directory sync's own lease (`SyncState::try_lease`) across two nodes: both racing, one
/// wins; the other gets it only once the winner's lease has run out.
pub async fn a_sync_lease_is_held_by_one_node_until_it_expires(a: Store, b: Store) {
    let (x, y) = tokio::join!(
        a.sync_state().try_lease("directory", a.node_id(), 1),
        b.sync_state().try_lease("directory", b.node_id(), 1)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(x ^ y, "exactly one node holds it: a {x}, b {y}");
    let (winner, loser) = if x { (&a, &b) } else { (&b, &a) };
    assert!(!loser
        .sync_state()
        .try_lease("directory", loser.node_id(), 1)
        .await
        .unwrap());
    past_the_lease().await;
    assert!(loser
        .sync_state()
        .try_lease("directory", loser.node_id(), 60)
        .await
        .unwrap());
    assert!(!winner
        .sync_state()
        .try_lease("directory", winner.node_id(), 60)
        .await
        .unwrap());
}

/// A request that read a session, then saves it after a logout deleted it, must not sign the
/// person back in; a session that exists is saved and loads back as saved.
pub async fn a_session_is_saved_back_only_while_it_exists(store: Store) {
    use tower_sessions::session::{Id, Record};
    use tower_sessions::SessionStore;
    let sessions = store.sessions().session_store();
    let expiry = tower_sessions::cookie::time::OffsetDateTime::now_utc()
        + std::time::Duration::from_secs(3600);
    let mut record = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: expiry,
    };
    record.data.insert("k".into(), serde_json::json!("v1"));
    sessions.create(&mut record).await.unwrap();
    record.data.insert("k".into(), serde_json::json!("v2"));
    sessions.save(&record).await.unwrap();
    let loaded = sessions.load(&record.id).await.unwrap().unwrap();
    assert_eq!(loaded.data["k"], "v2");
    sessions.delete(&record.id).await.unwrap();
    sessions.save(&record).await.unwrap();
    assert!(
        sessions.load(&record.id).await.unwrap().is_none(),
        "a logout stays a logout"
    );
}

pub async fn person_revocations_never_move_back_and_find_people_by_email(store: Store) {
    let people = store.person_revocations();
    assert_eq!(people.revoked_at("alice").await.unwrap(), None);
    assert!(
        !people.revoke_sessions("nobody", 100).await.unwrap(),
        "nobody had signed in"
    );
    people
        .record_sign_in("alice", "Alice@ACME.test", 50)
        .await
        .unwrap();
    people
        .record_sign_in("alice-upstream", "alice@acme.test", 60)
        .await
        .unwrap();
    assert_eq!(
        people.subjects_with_email("ALICE@acme.TEST").await.unwrap(),
        ["alice", "alice-upstream"]
    );
    assert!(people
        .subjects_with_email("bob@acme.test")
        .await
        .unwrap()
        .is_empty());
    // The console's search: part of an email, any case, each email once, wildcards literal.
    people
        .record_sign_in("bob", "bob_smith@acme.test", 70)
        .await
        .unwrap();
    people
        .record_sign_in("bobby", "bobxsmith@acme.test", 70)
        .await
        .unwrap();
    assert_eq!(
        people.emails_containing("ACME", 10).await.unwrap(),
        [
            "alice@acme.test",
            "bob_smith@acme.test",
            "bobxsmith@acme.test"
        ]
    );
    assert_eq!(
        people.emails_containing("b_s", 10).await.unwrap(),
        ["bob_smith@acme.test"],
        "`_` is not a wildcard"
    );
    assert!(people.emails_containing("%", 10).await.unwrap().is_empty());
    assert_eq!(people.emails_containing("acme", 1).await.unwrap().len(), 1);
    assert!(people.revoke_sessions("alice", 100).await.unwrap());
    assert!(
        !people.revoke_sessions("alice", 90).await.unwrap(),
        "no sign-in since the last revocation"
    );
    assert_eq!(
        people.revoked_at("alice").await.unwrap(),
        Some(100),
        "an older revocation does not move it back"
    );
    // A sign-in after the revocation keeps it, and the next revocation counts it.
    people
        .record_sign_in("alice", "alice@acme.test", 120)
        .await
        .unwrap();
    assert_eq!(people.revoked_at("alice").await.unwrap(), Some(100));
    assert!(people.revoke_sessions("alice", 130).await.unwrap());
    assert_eq!(people.revoked_at("alice").await.unwrap(), Some(130));
    let long = "x".repeat(super::person_revocations::MAX_PERSON_FIELD_BYTES + 1);
    assert!(matches!(
        people.record_sign_in(&long, "a@b.c", 1).await,
        Err(StoreError::TooLarge { .. })
    ));
}

pub async fn live_tokens_count_only_what_still_works(store: Store) {
    issue(&store, "g1", now() + 300, Some(now() + 3600)).await;
    issue(&store, "g2", now() - 1, None).await;
    issue(&store, "g3", now() + 300, Some(now() + 3600)).await;
    store.oauth().revoke_grant("g3", "test").await.unwrap();
    let live = store
        .person_revocations()
        .live_tokens("alice")
        .await
        .unwrap();
    assert_eq!(
        (live.access_tokens, live.refresh_tokens),
        (1, 1),
        "an expired access token and a revoked grant's tokens do not count"
    );
    assert_eq!(
        store.person_revocations().live_tokens("bob").await.unwrap(),
        super::LiveTokens::default()
    );
}

// --- the shared Lucca budget ----------------------------------------------------------------

fn rule(budget: u32, window: Duration, kept_free: u32) -> SendRule {
    SendRule {
        budget,
        window,
        kept_free,
        spread: false,
    }
}

pub async fn the_lucca_window_takes_its_budget_then_says_when(store: Store) {
    let budget = store.lucca_budget();
    let window = Duration::from_millis(900);
    let r = rule(3, window, 0);
    for _ in 0..3 {
        assert_eq!(
            budget.take_send("https://a.test:443", &r).await.unwrap(),
            SendSlot::Taken
        );
    }
    let Ok(SendSlot::Full { retry_in }) = budget.take_send("https://a.test:443", &r).await else {
        panic!("a fourth send in the window is refused");
    };
    assert!(
        retry_in > Duration::ZERO && retry_in <= window,
        "{retry_in:?}"
    );
    // Another tenant has its own window.
    assert_eq!(
        budget.take_send("https://b.test:443", &r).await.unwrap(),
        SendSlot::Taken
    );
    // The window slides: once the first sends leave it, sending resumes.
    tokio::time::sleep(retry_in + Duration::from_millis(50)).await;
    assert_eq!(
        budget.take_send("https://a.test:443", &r).await.unwrap(),
        SendSlot::Taken
    );
    let long = "t".repeat(super::lucca_budget::MAX_TENANT_BYTES + 1);
    assert!(matches!(
        budget.take_send(&long, &r).await,
        Err(StoreError::TooLarge { .. })
    ));
}

pub async fn batch_sends_leave_the_sign_in_reserve_free(store: Store) {
    let budget = store.lucca_budget();
    let window = Duration::from_secs(30);
    let batch = rule(5, window, 2);
    let sign_in = rule(5, window, 0);
    for _ in 0..3 {
        assert_eq!(
            budget.take_send("t", &batch).await.unwrap(),
            SendSlot::Taken
        );
    }
    assert!(
        matches!(budget.take_send("t", &batch).await.unwrap(), SendSlot::Full { retry_in } if retry_in > Duration::from_secs(25)),
        "batch work stops at budget - reserve"
    );
    for _ in 0..2 {
        assert_eq!(
            budget.take_send("t", &sign_in).await.unwrap(),
            SendSlot::Taken,
            "the reserve is there for sign-ins"
        );
    }
    assert!(matches!(
        budget.take_send("t", &sign_in).await.unwrap(),
        SendSlot::Full { .. }
    ));
    // A reserve as large as the budget still lets batch work send one request per window.
    let other = rule(2, window, 5);
    assert_eq!(other.limit(), 1);
    assert_eq!(
        budget.take_send("u", &other).await.unwrap(),
        SendSlot::Taken
    );
    assert!(matches!(
        budget.take_send("u", &other).await.unwrap(),
        SendSlot::Full { .. }
    ));
}

pub async fn a_lucca_block_holds_every_send_and_never_shortens(store: Store) {
    let budget = store.lucca_budget();
    let r = rule(100, Duration::from_secs(60), 0);
    budget
        .block_sends("t", Duration::from_millis(1200))
        .await
        .unwrap();
    budget
        .block_sends("t", Duration::from_millis(100))
        .await
        .unwrap();
    let Ok(SendSlot::Blocked { retry_in }) = budget.take_send("t", &r).await else {
        panic!("a blocked tenant sends nothing");
    };
    assert!(
        retry_in > Duration::from_millis(900) && retry_in <= Duration::from_millis(1200),
        "the longer block stays: {retry_in:?}"
    );
    assert_eq!(
        budget.take_send("other", &r).await.unwrap(),
        SendSlot::Taken
    );
    tokio::time::sleep(retry_in + Duration::from_millis(50)).await;
    assert_eq!(budget.take_send("t", &r).await.unwrap(), SendSlot::Taken);
}

pub async fn concurrent_sends_never_pass_the_budget(store: Store) {
    let r = rule(5, Duration::from_secs(30), 0);
    let mut tasks = JoinSet::new();
    for _ in 0..24 {
        let budget = store.lucca_budget().clone();
        tasks.spawn(async move { budget.take_send("t", &r).await.unwrap() });
    }
    let mut taken = 0;
    while let Some(slot) = tasks.join_next().await {
        if slot.unwrap() == SendSlot::Taken {
            taken += 1;
        }
    }
    assert_eq!(taken, 5);
}

pub async fn two_nodes_share_one_lucca_window(a: Store, b: Store) {
    let r = rule(6, Duration::from_secs(30), 0);
    let mut tasks = JoinSet::new();
    for i in 0..30 {
        let budget = if i % 2 == 0 { &a } else { &b }.lucca_budget().clone();
        tasks.spawn(async move { budget.take_send("t", &r).await.unwrap() });
    }
    let mut taken = 0;
    while let Some(slot) = tasks.join_next().await {
        if slot.unwrap() == SendSlot::Taken {
            taken += 1;
        }
    }
    assert_eq!(taken, 6, "one budget for both nodes");
    // A 429 seen by A holds B's sends too.
    a.lucca_budget()
        .block_sends("u", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(
        b.lucca_budget().take_send("u", &r).await.unwrap(),
        SendSlot::Blocked { .. }
    ));
}

// --- the shared sign-in throttle ------------------------------------------------------------

const ACCOUNT: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const NETWORK: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";

fn keys(account: &str, network: &str, max: u32) -> [FailureKey<'static>; 2] {
    // Leaked: a handful of short strings per test.
    let account: &'static str = Box::leak(account.to_string().into_boxed_str());
    let network: &'static str = Box::leak(network.to_string().into_boxed_str());
    [
        FailureKey { key: account, max },
        FailureKey {
            key: network,
            max: max * 2,
        },
    ]
}

pub async fn failed_sign_ins_are_counted_per_key_until_released(store: Store) {
    let f = store.login_failures();
    let window = Duration::from_secs(60);
    let k = keys(ACCOUNT, NETWORK, 2);
    f.reserve_attempt(&k, "x1", window).await.unwrap().unwrap();
    f.reserve_attempt(&k, "x2", window).await.unwrap().unwrap();
    let wait = f
        .reserve_attempt(&k, "x3", window)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        wait > Duration::from_secs(55) && wait <= window,
        "until the oldest leaves: {wait:?}"
    );
    // A refused attempt counted nothing; a released one gives its slot back.
    f.release_attempt("x2", &[ACCOUNT, NETWORK]).await.unwrap();
    f.reserve_attempt(&k, "x4", window).await.unwrap().unwrap();
    // The network (max 4) carries x1 and x4; another account from it fits twice more.
    let other = keys("c3", NETWORK, 2);
    f.reserve_attempt(&other, "y1", window)
        .await
        .unwrap()
        .unwrap();
    f.reserve_attempt(&other, "y2", window)
        .await
        .unwrap()
        .unwrap();
    let third = keys("d4", NETWORK, 2);
    assert!(
        f.reserve_attempt(&third, "z1", window)
            .await
            .unwrap()
            .is_err(),
        "the network's budget is spent across names"
    );
    // Forgetting the account (a right password) leaves the network's count.
    f.forget_failures(ACCOUNT).await.unwrap();
    let elsewhere = keys(ACCOUNT, "e5", 2);
    f.reserve_attempt(&elsewhere, "w1", window)
        .await
        .unwrap()
        .unwrap();
    f.reserve_attempt(&elsewhere, "w2", window)
        .await
        .unwrap()
        .unwrap();
    assert!(f
        .reserve_attempt(&third, "z2", window)
        .await
        .unwrap()
        .is_err());
    assert!(matches!(
        f.reserve_attempt(&k, &"i".repeat(500), window).await,
        Err(StoreError::TooLarge { .. })
    ));
}

pub async fn concurrent_sign_in_attempts_never_pass_the_budget(store: Store) {
    let window = Duration::from_secs(60);
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let f = store.login_failures().clone();
        tasks.spawn(async move {
            let k = keys(ACCOUNT, &format!("net-{i}"), 3);
            f.reserve_attempt(&k, &format!("a{i}"), window)
                .await
                .unwrap()
        });
    }
    let mut passed = 0;
    while let Some(r) = tasks.join_next().await {
        if r.unwrap().is_ok() {
            passed += 1;
        }
    }
    assert_eq!(passed, 3);
}

pub async fn old_sign_in_failures_are_purged(store: Store) {
    let f = store.login_failures();
    let short = Duration::from_millis(300);
    for i in 0..5 {
        let k = keys(&format!("name-{i}"), NETWORK, 10);
        f.reserve_attempt(&k, &format!("p{i}"), Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        f.purge_failures(short).await.unwrap(),
        0,
        "nothing is old yet"
    );
    tokio::time::sleep(short + Duration::from_millis(50)).await;
    // Five names and five rows of the network.
    assert_eq!(f.purge_failures(short).await.unwrap(), 10);
    // A key's own old rows go when it is next counted, whatever the purge.
    let k = keys(ACCOUNT, NETWORK, 1);
    f.reserve_attempt(&k, "q1", short).await.unwrap().unwrap();
    tokio::time::sleep(short + Duration::from_millis(50)).await;
    f.reserve_attempt(&k, "q2", short).await.unwrap().unwrap();
}

pub async fn two_nodes_count_the_same_sign_in_failures(a: Store, b: Store) {
    let window = Duration::from_secs(60);
    let mut tasks = JoinSet::new();
    for i in 0..16 {
        let f = if i % 2 == 0 { &a } else { &b }.login_failures().clone();
        tasks.spawn(async move {
            let k = keys(ACCOUNT, &format!("net-{i}"), 4);
            f.reserve_attempt(&k, &format!("a{i}"), window)
                .await
                .unwrap()
        });
    }
    let mut passed = 0;
    while let Some(r) = tasks.join_next().await {
        if r.unwrap().is_ok() {
            passed += 1;
        }
    }
    assert_eq!(passed, 4, "one count for both nodes");
}

//! ID-token signing throughput: the RSA signature dominates the code exchange, so this is the
//! ceiling for tokens per second per core.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use passerelle::config::KeysConfig;
use passerelle::keys::Keys;
use serde_json::json;

fn id_token_signing(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = Keys::load_or_generate(dir.path(), &KeysConfig::default()).expect("keys");
    let claims = json!({
        "iss": "https://sso.acme.example", "sub": "alice@acme.test", "aud": "lucca", "azp": "lucca",
        "iat": 1_700_000_000, "exp": 1_700_003_600, "auth_time": 1_700_000_000, "nonce": "n-0S6_WzA2Mj",
        "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "amr": ["pwd"], "sid": "aBcDeFgHiJkLmNoP",
        "email": "alice@acme.test", "email_verified": true, "given_name": "Alice", "family_name": "Martin",
        "employee_number": "00042", "department": "Engineering", "manager_email": "bob@acme.test",
        "groups": ["validateur_n1", "collaborateur"],
    });
    let mut group = c.benchmark_group("id_token");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign_rs256", |b| {
        b.iter(|| keys.signer().sign_jwt(&claims).expect("sign"));
    });
    group.finish();
}

criterion_group!(benches, id_token_signing);
criterion_main!(benches);
